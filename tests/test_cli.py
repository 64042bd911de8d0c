"""The command line: data export, bounds, fetch, tasks-dir and eval's argument building."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.commands.evaluate import build_argv
from opinbench.data import fetch as F
from opinbench.paths import tasks_dir
from tests.helpers.opinionqa_files import write_wave


@pytest.fixture
def release(tmp_path: Path) -> Path:
    questions = {
        "Q1_W7": ("How safe?", ["Very", "Somewhat", "Not", "Refused"], [1.0, 2.0, 3.0]),
        "Q2_W7": ("Which way?", ["Safer", "Worse", "Neither", "Refused"], [1.0, 2.0, 1.5]),
    }
    sex = {
        "Q1_W7": {"Male": {"Very": 1, "Somewhat": 1, "Refused": 3}, "Female": {"Not": 2}},
        "Q2_W7": {"Male": {"Safer": 1}, "Female": {"Worse": 1, "Neither": 1}},
    }
    write_wave(tmp_path / "human_resp", "American_Trends_Panel_W7", questions, {"SEX": sex})
    return tmp_path / "human_resp"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_writes_documented_fields(release, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code, stdout, _ = run_cli(capsys, "data", "export", "opinionqa", "--source", str(release), "--out", str(out))
    assert code == 0 and "wrote 6 records" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    required = {"id", "dataset", "question_key", "question", "options", "ordinal", "attribute", "group", "distribution", "n"}
    assert all(required <= set(r) for r in rows)
    male = next(r for r in rows if r["id"] == "opinionqa:Q1_W7:SEX:Male")
    assert male["distribution"] == [0.5, 0.5, 0.0] and male["n"] == 2 and male["ordinal"] == [1.0, 2.0, 3.0]


def test_export_strict_fails_with_location(release, tmp_path, capsys):
    data = release / "American_Trends_Panel_W7" / "SEX_data.json"
    data.write_text(data.read_text().replace('"Not": 2', '"Nope": 2'))
    code, _, err = run_cli(capsys, "data", "export", "opinionqa", "--source", str(release), "--out", str(tmp_path / "x.jsonl"), "--strict")
    assert code == 2
    assert "SEX_data.json: Q1_W7: Female: count for option 'Nope'" in err
    assert not (tmp_path / "x.jsonl").exists()  # nothing half-written


def test_bounds_json_hand_computed(release, capsys):
    code, stdout, _ = run_cli(capsys, "bounds", "opinionqa", "--source", str(release), "--json")
    assert code == 0
    out = json.loads(stdout)
    # Q1 Male [.5,.5,0] on 1,2,3: uniform CDF (1/3, 2/3) vs (.5, 1): |.5-1/3| + |1-2/3| = 1/2 -> /2 = .25
    # Q1 Female [0,0,1]: (1/3 + 2/3) / 2 = .5
    # Q2 Male [1,0,0] on (1, 2, 1.5): sorted 1, 1.5, 2 -> CDF (1, 1) vs (1/3, 2/3): (2/3*.5 + 1/3*.5) = .5
    # Q2 Female [0,.5,.5]: sorted CDF (0, .5) vs (1/3, 2/3): (1/3*.5 + 1/6*.5) = .25
    assert out["groups"]["SEX=Male"]["uniform"] == pytest.approx((0.25 + 0.5) / 2)
    assert out["groups"]["SEX=Female"]["uniform"] == pytest.approx((0.5 + 0.25) / 2)
    assert out["uniform"] == pytest.approx((0.25 + 0.5 + 0.5 + 0.25) / 4)
    # human bound, exact for groups this small: Q2 Male n=1 on a point mass -> 0; Q1 Female n=2 point mass -> 0
    # Q1 Male n=2 on [.5, .5, 0]: resamples (2,0),(1,1),(0,2) with p .25,.5,.25 -> WD .25, 0, .25 -> .125
    # Q2 Female n=2 on (Worse=.5, Neither=.5) at ordinal 2 and 1.5: same shape, gap .5 of range 1 -> .125
    assert out["groups"]["SEX=Male"]["human"] == pytest.approx((0.125 + 0.0) / 2)
    assert out["groups"]["SEX=Female"]["human"] == pytest.approx((0.0 + 0.125) / 2)
    assert out["human"] == pytest.approx(0.25 / 4)


def test_bounds_agree_with_the_task_per_pair(capsys, shared_data):
    """`opinbench bounds` and the task's per-document wd_human come from the same per-record draws."""
    from opinbench.data.opinionqa import load_opinionqa
    from opinbench.harness.distribution import build_docs
    from opinbench.metrics.distribution_tasks import doc_bounds

    wave = shared_data / "opinionqa" / "human_resp" / "American_Trends_Panel_W26"
    code, stdout, _ = run_cli(capsys, "bounds", "opinionqa", "--source", str(wave), "--groups", "POLPARTY:Democrat", "--json")
    assert code == 0
    out = json.loads(stdout)
    docs = build_docs(load_opinionqa(wave, groups=["POLPARTY:Democrat"]))
    assert out["human"] == pytest.approx(sum(doc_bounds(d)[1] for d in docs) / len(docs), rel=1e-12)
    assert out["uniform"] == pytest.approx(sum(doc_bounds(d)[0] for d in docs) / len(docs), rel=1e-12)


def test_bounds_text_output_and_task_names(release, capsys):
    code, stdout, _ = run_cli(capsys, "bounds", "opinionqa_wd", "--source", str(release))
    assert code == 0 and "SEX: Male" in stdout and "overall" in stdout


def test_bounds_names_groups_as_the_results_do():
    from opinbench.commands.bounds import format_table

    out = {"uniform": 0.2, "human": None, "groups": {
        "INCOME=$100000 or more": {"attribute": "INCOME", "group": "$100,000 or more", "uniform": 0.25, "human": 0.01},
        "EDUCATION=College graduate/some postgrad": {"attribute": "EDUCATION", "group": "College graduate/some postgrad",
                                                     "uniform": 0.2, "human": None},
    }}
    lines = format_table(out, "t").splitlines()
    assert any("INCOME: $100000 or more" in x for x in lines) and not any("100,000" in x for x in lines)
    # every number column starts at the same place, whatever the length of the name
    assert len({x.index("0.2") for x in lines[2:]}) == 1


def test_task_descriptions_are_whole_sentences():
    # `opinbench tasks` cut vk_cot's at the option letters: "... (A."
    from opinbench.harness.catalog import _description

    assert _description(tasks_dir() / "vk" / "vk_cot.yaml") == (
        "Value Kaleidoscope: does the value/right/duty support or oppose the situation, or either?"
    )
    for path in tasks_dir().rglob("*.yaml"):
        text = _description(path)
        if text:
            assert text[-1] in ".?!" and text.count("(") == text.count(")"), (path.name, text)


def test_tasks_dir_prints_the_yaml_folder(capsys):
    code, stdout, _ = run_cli(capsys, "tasks-dir")
    assert code == 0 and Path(stdout.strip()) == tasks_dir()
    assert (tasks_dir() / "opinionqa" / "opinionqa_wd.yaml").is_file()


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["data", "export", "nope", "--out", "x"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------------- eval argv


def test_eval_defaults_to_the_embedded_model_and_task():
    argv = build_argv([])
    assert argv[0] == "run"
    assert argv[argv.index("--tasks") + 1] == "opinionqa_wd"
    assert argv[argv.index("--include_path") + 1] == str(tasks_dir())
    assert "--apply_chat_template" in argv and "--log_samples" in argv
    assert argv[argv.index("--limit") + 1] == "340"
    assert "pretrained=" in argv[argv.index("--model_args") + 1]


def test_eval_keeps_user_arguments():
    argv = build_argv(["--model", "hf", "--model_args", "pretrained=/m,dtype=float32", "--tasks", "opinionqa_wd_bio", "--limit", "none", "--no_log_samples"])
    assert argv[argv.index("--model_args") + 1] == "pretrained=/m,dtype=float32"
    assert "--limit" not in argv and "--log_samples" not in argv and "--apply_chat_template" not in argv
    with pytest.raises(SystemExit, match="include_path"):
        build_argv(["--include_path", "/x"])


# --------------------------------------------------------------------------- fetch


def _pin(monkeypatch, tmp_path, content: bytes, sha: str | None = None):
    f = F.PinnedFile("o/r", "c" * 40, "data/a.json", "set/a.json", len(content), sha or hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(F, "manifest", lambda: {"tiny": [f]})
    return f


def test_fetch_from_local_copy_verifies_checksum(tmp_path, monkeypatch):
    _pin(monkeypatch, tmp_path, b"{}")
    local = tmp_path / "copy" / "set"
    local.mkdir(parents=True)
    (local / "a.json").write_bytes(b"{}")
    got = F.fetch("tiny", tmp_path / "dest", local=tmp_path / "copy", progress=False)
    assert got == [tmp_path / "dest" / "set" / "a.json"]
    # a second fetch finds the verified file and does nothing
    assert F.fetch("tiny", tmp_path / "dest", local=None, mirrors=["http://127.0.0.1:9"], progress=False) == got


def test_fetch_rejects_a_mismatching_copy_and_reports_offline(tmp_path, monkeypatch):
    _pin(monkeypatch, tmp_path, b"{}", sha="0" * 64)
    local = tmp_path / "copy" / "set"
    local.mkdir(parents=True)
    (local / "a.json").write_bytes(b"{}")
    monkeypatch.setattr(F, "mirror_urls", lambda f, extra: ["http://127.0.0.1:9/a.json"])
    with pytest.raises(F.FetchError) as err:
        F.fetch("tiny", tmp_path / "dest", local=tmp_path / "copy", progress=False, timeout=2)
    msg = str(err.value)
    assert "does not match the pinned" in msg and "127.0.0.1:9" in msg
    assert not (tmp_path / "dest" / "set" / "a.json").exists()


def test_fetch_not_open_sources_explain_themselves(tmp_path):
    with pytest.raises(F.FetchError, match="registered|terms"):
        F.fetch("anes", tmp_path)


def test_pinned_manifest_matches_shared_data(shared_data):
    """The pins are the checksums of the public originals, as copied into ../shared/data."""
    checked = 0
    for name, files in F.manifest().items():
        for f in files[:5]:
            local = shared_data / f.dest
            if local.is_file():
                assert F.sha256_of(local) == f.sha256, f.dest
                checked += 1
    assert checked >= 10


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "opinbench.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tasks-dir" in out.stdout
