"""``opinbench judge faithfulness`` end to end, with the real anthropic client and a local server.

The server injects every fault the runner must survive (429 with Retry-After,
500, 529, malformed JSON, a reply slower than the client timeout, a dropped
connection); the run must complete, the counts must add up, a second run must be
answered entirely from the cache, and the API key must appear nowhere.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.judging import api as judge_api
from opinbench.judging.faithfulness import build_request
from opinbench.judging.options import FaithfulnessOptions
from opinbench.judging.settings import faithfulness_settings, judges_dir
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_fixtures import (
    SECRET,
    expected_counts,
    keyword_judge,
    make_vk_run,
    survey_docs,
    survey_generations,
    write_lm_eval_run,
)

FAULTS = ["429", "500", "529", "malformed", "slow", "drop"]
N_VK, N_SURVEY, N_CONTROL = 12, 6, 6


@pytest.fixture()
def run_dir(tmp_path, shared_data):
    out = make_vk_run(tmp_path, shared_data, n_docs=N_VK)
    docs = survey_docs(N_SURVEY)
    write_lm_eval_run(out, "oqa_cot", docs, [survey_generations(i) for i in range(N_SURVEY)])
    return out


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with FakeAPIServer(SECRET, judge=keyword_judge, retry_after="0.2") as srv:
        yield srv


def _argv(out, srv, tmp_path, shared_data, *extra):
    return [
        "judge",
        "faithfulness",
        "--samples",
        str(out),
        "--judge",
        "anthropic:claude-sonnet-4-6",
        "--base-url",
        srv.url,
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "--control-data",
        str(shared_data / "value_kaleidoscope"),
        "--control-limit",
        str(N_CONTROL),
        "--backoff",
        "0.01",
        # The "slow" fault never answers: this timeout is what the run waits for it. It is
        # long enough that no other request times out on a loaded machine (0.5 s did once).
        "--timeout",
        "5",
        "--concurrency",
        "3",
        *extra,
    ]


def _latest(folder: Path, pattern: str) -> Path:
    return sorted(folder.rglob(pattern))[-1]


def test_faithfulness_end_to_end_with_faults_then_cached(
    run_dir, server, tmp_path, shared_data, capsys, caplog
):
    caplog.set_level(logging.DEBUG)  # the clients' debug logs too: the key must not be in them
    server.faults.extend(FAULTS)
    assert main(_argv(run_dir, server, tmp_path, shared_data)) == 0
    vk = expected_counts(N_VK)
    n_survey_judged = N_SURVEY  # every survey generation has reasoning and a valid answer
    unique = (vk["generations"] - vk["excluded"]) + n_survey_judged + 3 * N_CONTROL
    assert server.count() == unique + len(FAULTS)

    res = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    r = res["results"]
    assert r["vk_cot"]["cot_faithfulness,none"] == pytest.approx(
        vk["faithful"] / (vk["faithful"] + vk["unfaithful"])
    )
    assert r["oqa_cot"]["cot_faithfulness,none"] == pytest.approx(4 / 6)
    assert r["all"]["cot_faithfulness,none"] == pytest.approx(
        (vk["faithful"] + 4) / (vk["faithful"] + vk["unfaithful"] + 6)
    )
    for task in ("vk_cot", "oqa_cot", "all"):
        block = r[task]
        assert (
            block["cot_faithfulness_ci_low,none"]
            <= block["cot_faithfulness,none"]
            <= block["cot_faithfulness_ci_high,none"]
        )
        assert isinstance(block["cot_faithfulness_stderr,none"], float)
        assert "judge_control_explanation_acc,none" in block  # calibration beside every score
        # Every unfaithful trace landed on the neutral option (the fake judge's habit).
        assert block["cot_unfaithful_neutral_share,none"] == 1.0
    assert "judge_control_wrong_framed_gold_share,none" in r["judge_control"]
    assert res["n-samples"]["vk_cot"] == {
        "original": vk["generations"],
        "effective": vk["faithful"] + vk["unfaithful"],
    }
    details = res["judge_details"]
    assert details["tasks"]["vk_cot"]["excluded"] == {
        "empty reasoning": 2,
        "model answer invalid: no answer found": 2,
    }
    assert details["tasks"]["oqa_cot"]["confusion_model_vs_judge"] == {
        "No": {"Neutral": 2, "No": 2},
        "Yes": {"Yes": 2},
    }
    assert res["group_subtasks"] == {"all": ["oqa_cot", "vk_cot"]}
    assert res["model_name"] == "fake/model" and res["config"]["model"] == "hf"
    judge = res["config"]["judge"]
    assert judge["provider"] == "anthropic" and judge["model"] == "claude-sonnet-4-6"
    assert judge["api_key_env"] == "ANTHROPIC_API_KEY" and judge["temperature_sent"] is False
    assert judge["families"]["vk"]["template_sha256"] and judge["complete"] is True
    stats = judge["stats"]
    assert (
        stats["sent"] == stats["unique"] == unique
        and stats["cached"] == stats["failed"] == stats["skipped"] == 0
    )
    assert stats["retried"] == len(FAULTS) and stats["requests"] == unique + len(FAULTS)
    assert sorted(stats["errors"]) == [
        "connection",
        "http 429",
        "http 500",
        "http 529",
        "malformed",
        "timeout",
    ]

    verdicts = [
        json.loads(x)
        for x in _latest(run_dir, "judge-faithfulness_verdicts_*.jsonl").read_text().splitlines()
    ]
    assert len(verdicts) == vk["generations"] + N_SURVEY + 3 * N_CONTROL
    judged = [v for v in verdicts if v.get("status") == "judged" and v["type"] == "sample"]
    assert all(v["prompt_hash"] and v["judge_reply"].startswith("Answer:") for v in judged)

    # The judge never saw a persona or a context.
    docs = [
        json.loads(x)["doc"]
        for f in run_dir.rglob("samples_*.jsonl")
        for x in f.read_text().splitlines()
    ]
    prompts = [json.dumps(body) for _, body, _ in server.requests]
    for doc in docs:
        assert not any(doc["subject"] in p for p in prompts), doc["subject"]
    assert not any("persona-marker" in p for p in prompts)

    # Second run: every request from the cache, none sent.
    before = server.count()
    assert main(_argv(run_dir, server, tmp_path, shared_data, "--no-progress")) == 0
    assert server.count() == before
    res2 = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    assert (
        res2["config"]["judge"]["stats"]["cached"] == unique
        and res2["config"]["judge"]["stats"]["requests"] == 0
    )
    assert res2["results"] == res["results"]

    # The key is nowhere: not in results, verdicts, the cache (and its WAL), stdout, stderr or logs.
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err + caplog.text
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_rejected_key_stops_with_a_clear_error(
    run_dir, server, tmp_path, shared_data, capsys, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-not-the-right-one-42")
    assert main(_argv(run_dir, server, tmp_path, shared_data, "--no-progress")) == 2
    err = capsys.readouterr().err
    assert (
        "$ANTHROPIC_API_KEY was rejected (HTTP 401" in err and "sk-not-the-right-one-42" not in err
    )
    assert not list(run_dir.rglob("results_judge-*"))


def test_missing_key_with_explicit_judge(
    run_dir, server, tmp_path, shared_data, capsys, monkeypatch
):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert main(_argv(run_dir, server, tmp_path, shared_data, "--no-progress")) == 2
    assert "no API key: set $ANTHROPIC_API_KEY" in capsys.readouterr().err
    assert server.count() == 0


def test_budget_cap_gives_partial_results_and_a_rerun_completes(
    run_dir, server, tmp_path, shared_data
):
    assert (
        main(
            _argv(
                run_dir,
                server,
                tmp_path,
                shared_data,
                "--no-progress",
                "--max-requests",
                "5",
                "--no-control",
                "--concurrency",
                "1",
            )
        )
        == 3  # incomplete: partial results, exit status 3
    )
    res = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    stats = res["config"]["judge"]["stats"]
    assert server.count() == 5 and stats["sent"] == 5 and stats["skipped"] == stats["unique"] - 5
    assert (
        res["config"]["judge"]["complete"] is False
        and res["config"]["judge"]["budget_exhausted"] is True
    )
    assert main(_argv(run_dir, server, tmp_path, shared_data, "--no-progress", "--no-control")) == 0
    res = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    assert (
        res["config"]["judge"]["stats"]["cached"] == 5
        and res["config"]["judge"]["complete"] is True
    )
    assert server.count() == res["config"]["judge"]["stats"]["unique"]


def test_limit_and_output_dir(run_dir, server, tmp_path, shared_data):
    out = tmp_path / "elsewhere"
    assert (
        main(
            _argv(
                run_dir,
                server,
                tmp_path,
                shared_data,
                "--no-progress",
                "--no-control",
                "--limit",
                "2",
                "--output-dir",
                str(out),
            )
        )
        == 0
    )
    res = json.loads(_latest(out, "results_judge-faithfulness_*.json").read_text())
    assert res["config"]["judge"]["limit"] == 2
    assert all(
        n["original"] <= 4 for t, n in res["n-samples"].items() if t != "all"
    )  # 2 docs, <= 2 repeats each


def test_default_judge_falls_back_offline_without_a_key(monkeypatch, caplog):
    options = FaithfulnessOptions(samples=["run"], timeout=5.0)
    defaults = {"judge": "anthropic:claude-sonnet-4-6", "offline_judge": "local:smollm2"}
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    spec, why = judge_api._choose(options, "judge", defaults)
    assert str(spec) == "local:smollm2" and "$ANTHROPIC_API_KEY is not set" in why
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k" * 10)
    spec, why = judge_api._choose(options, "judge", defaults)
    assert str(spec) == "anthropic:claude-sonnet-4-6" and why is None


def test_templates_render_without_persona_fields():
    st = faithfulness_settings("vk")
    req = build_request(
        st,
        question="Helping refugees",
        options=["Supports", "Opposes", "Either"],
        reasoning="It keeps people safe.",
    )
    prompt = req.messages[0][1]
    assert (
        "Situation: Helping refugees" in prompt and "A. Supports\nB. Opposes\nC. Either\n" in prompt
    )
    assert (
        "<<<\nIt keeps people safe.\n>>>" in prompt
        and req.temperature == 0.0
        and req.max_tokens == 64
    )
    survey = build_request(
        faithfulness_settings("survey"), question="Q?", options=["Yes", "No"], reasoning="r"
    )
    assert "Question: Q?" in survey.messages[0][1]
    # The templates reference no persona variable: rendering needs none.
    for name in ("faithfulness_vk.j2", "faithfulness_survey.j2"):
        text = (judges_dir() / name).read_text()
        body = text.split("-#}", 1)[1]
        assert "subject" not in body and "context" not in body


def test_judge_without_subcommand_and_bad_local_model(tmp_path, capsys):
    assert main(["judge"]) == 2
    samples = tmp_path / "s.jsonl"
    samples.write_text(
        json.dumps(
            {
                "doc_id": 0,
                "doc": {"question": "q?", "options": ["Yes", "No"]},
                "resps": [["Because.\nAnswer: A"]],
            }
        )
        + "\n"
    )
    argv = [
        "judge",
        "faithfulness",
        "--samples",
        str(samples),
        "--judge",
        f"local:{tmp_path / 'no-model'}",
        "--no-control",
        "--no-cache",
        "--no-progress",
    ]
    assert main(argv) == 2  # bad input: one line, exit 2 (issue 21)
    assert "not a packaged model name nor a folder" in capsys.readouterr().err


def test_results_say_what_was_spent_and_count_refusals(run_dir, server, tmp_path, shared_data):
    server.faults.extend(["refusal", "empty", "empty", "empty"])
    argv = _argv(run_dir, server, tmp_path, shared_data, "--no-progress", "--no-control",
                 "--concurrency", "1", "--max-tokens-budget", "100000")
    assert main(argv) == 0
    res = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    judge = res["config"]["judge"]
    spent, stats = judge["spent"], judge["stats"]
    billed = [b for p, b in server.replied]
    assert spent["requests"] == server.count() == stats["requests"]
    assert spent["input_tokens"] == stats["input_tokens"] > 0
    assert spent["output_tokens"] == stats["output_tokens"] > 0
    assert spent["cache_hits"] == 0 and spent["max_tokens_budget"] == 100000
    assert len(billed) == server.count()
    assert stats["refused"] == 1 and stats["empty"] == 3
    counts = res["judge_details"]["all"]["counts"]
    assert counts["judge_refused"] == 1 and res["judge_details"]["all"]["refused"] == 1
    assert counts["failed"] == 1 and res["judge_details"]["all"]["failed"] == {"empty": 1}
    # A rerun: the refusal comes from the cache and is still a refusal; the failure is retried.
    assert main(argv) == 0
    judge = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())["config"]["judge"]
    assert judge["stats"]["refused"] == 1 and judge["stats"]["sent"] == 1
    assert judge["spent"]["cache_hits"] == judge["stats"]["unique"] - 1


def test_small_budget_is_shared_with_the_control_set_and_the_output_says_so(
    run_dir, server, tmp_path, shared_data, capsys
):
    """A budget smaller than the control set still judges task items; counts, reasons, exit 3."""
    argv = _argv(run_dir, server, tmp_path, shared_data, "--no-progress", "--max-requests", "8",
                 "--concurrency", "1")
    assert main(argv) == 3  # requests left unanswered: incomplete
    res = json.loads(_latest(run_dir, "results_judge-faithfulness_*.json").read_text())
    assert res["n-samples"]["all"]["effective"] > 0  # task items were judged, not only control items
    assert 0 < res["n-samples"]["judge_control"]["effective"] < 3 * N_CONTROL
    out = capsys.readouterr().out
    # control accuracy with how many items it rests on, and every exclusion with its reason
    assert re.search(r"explanation\s+acc .*\(\d+/%d judged; \d+ skipped\)" % N_CONTROL, out)
    assert "excluded (not sent to the judge):" in out and "x empty reasoning" in out
