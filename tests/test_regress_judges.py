"""`opinbench regress` on judge metrics: verdicts paired per item, McNemar, Holm, baselines, refusals."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.regress.values import read_run
from tests.helpers.judge_verdicts import write_verdicts
from tests.helpers.paired_runs import vk_docs, vk_prompt, vk_reasoning, write_run

VK = vk_docs(60)
TASK = "vk_cot"
# The baseline's judges: faithful on 50 of 60 generations, 2 excluded; 6 flagged as offensive.
FAITHFUL = [None, None] + [0 if i % 6 == 0 else 1 for i in range(58)]
FLAGGED = [1 if i % 10 == 0 else 0 for i in range(60)]


def _run(out: Path, faithful=FAITHFUL, flagged=FLAGGED, **judge) -> Path:
    folder = write_run(out, {TASK: (VK, vk_prompt, vk_reasoning)})
    if faithful is not None:
        write_verdicts(folder, "faithfulness", TASK, faithful, **judge)
    if flagged is not None:
        write_verdicts(folder, "moderation", TASK, flagged, **{k: v for k, v in judge.items() if k != "model"})
    return folder


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("base"))


def _regress(capsys, *argv) -> tuple[int, dict | str, str]:
    rc = main(["regress", *map(str, argv), "--format", "json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if out.out.startswith("{") else out.out), out.err


def _row(report: dict, metric: str) -> dict:
    return next(r for r in report["rows"] if r["task"] == TASK and r["metric"] == metric)


def test_verdicts_read_per_item_by_document_id(base_run):
    values = read_run(base_run)
    faith = values.judges["faithfulness"]
    assert faith.metric == "cot_faithfulness" and faith.settings["model"] == "claude-sonnet-4-6"
    items = faith.items[TASK]
    assert len(items) == 58 and "vk:0" not in items  # excluded items are not judged
    assert items["vk:2"] == {0: 0} and items["vk:3"] == {0: 1}
    assert sum(v[0] for v in values.judges["moderation"].items[TASK].values()) == 6


def test_same_verdicts_exit_0_with_judge_rows_in_holm(tmp_path, base_run, capsys):
    rc, report, _ = _regress(capsys, base_run, _run(tmp_path))
    assert rc == 0 and report["regressions"] == []
    faith, off = _row(report, "cot_faithfulness"), _row(report, "cot_offensive_rate")
    assert faith["n_docs"] == 58 and faith["baseline"] == faith["candidate"] == pytest.approx(48 / 58)
    assert faith["test"] == "sign-flip over questions (verdict differences)" and faith["pvalue"] == 1.0
    assert off["lower_is_better"] and off["tolerance"] == 0.01 and faith["tolerance"] == 0.02
    assert report["correction"] == "Holm over 4 tests"  # acc, macro_f1 and the two judge metrics


def test_flipped_faithfulness_verdicts_exit_1_naming_the_judge_metric(tmp_path, base_run, capsys):
    flipped = [None, None] + [0 if i % 2 == 0 else 1 for i in range(58)]  # 19 faithful verdicts flipped
    rc, report, _ = _regress(capsys, base_run, _run(tmp_path, faithful=flipped))
    assert rc == 1
    assert report["regressions"] == [f"{TASK}/cot_faithfulness"]
    row = _row(report, "cot_faithfulness")
    assert row["delta"] == pytest.approx(-19 / 58) and row["pvalue_holm"] < 0.05


def test_offensive_rate_lower_is_better(tmp_path, base_run, capsys):
    more = [1 if i % 3 == 0 or i % 10 == 0 else 0 for i in range(60)]
    worse = _run(tmp_path, flagged=more)
    rc, report, _ = _regress(capsys, base_run, worse)
    assert rc == 1 and report["regressions"] == [f"{TASK}/cot_offensive_rate"]
    rc, report, _ = _regress(capsys, worse, base_run)
    assert rc == 0 and report["improvements"] == [f"{TASK}/cot_offensive_rate"]


@pytest.mark.parametrize(
    ("judge", "named"),
    [
        ({"model": "anthropic:claude-opus-4-1"}, "judge faithfulness: model 'claude-sonnet-4-6' in the baseline"),
        ({"template_sha256": "0ther"}, "judge faithfulness: the vk judge prompt"),
    ],
)
def test_different_judge_exit_2_naming_the_setting(tmp_path, base_run, capsys, judge, named):
    rc, _, err = _regress(capsys, base_run, _run(tmp_path, **judge))
    assert rc == 2
    assert named in err and "not comparable" in err


def test_judge_on_one_side_only_is_a_note(tmp_path, base_run, capsys):
    rc, report, _ = _regress(capsys, base_run, _run(tmp_path, flagged=None))
    assert rc == 0
    assert [r["metric"] for r in report["rows"] if r["metric"].startswith("cot_")] == ["cot_faithfulness"]
    assert "judge moderation: verdicts only in the baseline, not tested" in report["notes"]


def test_record_keeps_per_item_verdicts(tmp_path, base_run, capsys):
    out = tmp_path / "base.json.gz"
    assert main(["regress", "record", str(base_run), "--out", str(out)]) == 0
    data = json.loads(gzip.decompress(out.read_bytes()))
    faith = data["judges"]["faithfulness"]
    assert faith["metric"] == "cot_faithfulness" and faith["settings"]["provider"] == "anthropic"
    assert len(faith["tasks"][TASK]) == 58 and faith["tasks"][TASK][0] == ["vk:10", 0, 1]
    rc, report, _ = _regress(capsys, out, _run(tmp_path / "same"))
    assert rc == 0 and _row(report, "cot_offensive_rate")["n_docs"] == 60
    flipped = [None, None] + [0] * 58
    rc, report, _ = _regress(capsys, out, _run(tmp_path / "worse", faithful=flipped))
    assert rc == 1 and report["regressions"] == [f"{TASK}/cot_faithfulness"]
    rc, _, err = _regress(capsys, out, _run(tmp_path / "other", model="anthropic:claude-opus-4-1"))
    assert rc == 2 and "judge faithfulness: model" in err


def test_verdicts_of_an_older_samples_file_are_left_out(tmp_path, base_run, capsys, caplog):
    folder = write_run(tmp_path, {TASK: (VK, vk_prompt, vk_reasoning)})
    write_verdicts(folder, "faithfulness", TASK, FAITHFUL, samples_file=folder / "samples_vk_cot_2025-01-01T00-00-00.jsonl")
    with caplog.at_level(logging.WARNING, logger="opinbench.regress"):
        rc, report, _ = _regress(capsys, base_run, folder)
    assert rc == 0 and not any(r["metric"] == "cot_faithfulness" for r in report["rows"])
    assert "stale verdicts" in caplog.text


def test_verdicts_written_by_the_real_judge_commands(tmp_path, monkeypatch, capsys):
    """The real ``opinbench judge`` commands (against the fake API server) write what regress reads."""
    from tests.fake_api_server import FakeAPIServer
    from tests.test_judging_fixtures import SECRET, keyword_judge

    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    runs = [write_run(tmp_path / side, {TASK: (VK[:20], vk_prompt, vk_reasoning)}) for side in ("a", "b", "c")]
    common = ["--cache", str(tmp_path / "cache.sqlite"), "--no-progress", "--backoff", "0.01"]
    with FakeAPIServer(SECRET, judge=keyword_judge) as srv:
        for i, run in enumerate(runs):
            moderator = "openai:omni-moderation-latest" if i < 2 else "openai:text-moderation-latest"
            assert main(["judge", "faithfulness", "--samples", str(run), "--judge", "anthropic:claude-sonnet-4-6",
                         "--base-url", srv.url, "--no-control", *common]) == 0
            assert main(["judge", "moderation", "--samples", str(run), "--moderator", moderator,
                         "--base-url", srv.openai_url, *common]) == 0
    capsys.readouterr()
    rc, report, _ = _regress(capsys, runs[0], runs[1])
    assert rc == 0
    assert _row(report, "cot_faithfulness")["n_docs"] == 20 and _row(report, "cot_faithfulness")["baseline"] == 1.0
    assert _row(report, "cot_offensive_rate")["n_docs"] == 20
    rc, _, err = _regress(capsys, runs[0], runs[2])
    assert rc == 2 and "judge moderation: model 'omni-moderation-latest'" in err
