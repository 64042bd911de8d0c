"""`opinbench regress`: pairing, refusal (exit 2), regressions (exit 1), outputs and baselines."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from opinbench.cli import main
from opinbench.errors import ConfigError
from opinbench.regress import baseline, check, stats
from opinbench.regress.values import read_run
from tests.helpers.paired_runs import (
    distribution_docs,
    model_answers_right,
    model_near_human,
    vk_docs,
    vk_prompt,
    wd_prompt,
    write_run,
)

DIST = distribution_docs(n_questions=20, n_groups=4)
VK = vk_docs(60)


def _tasks(wd_probs=model_near_human, vk_probs=model_answers_right, wd_prompt_of=wd_prompt, vk_prompt_of=vk_prompt,
           dist=DIST, vk=VK):
    return {"opinionqa_wd": (dist, wd_prompt_of, wd_probs), "vk_direct": (vk, vk_prompt_of, vk_probs)}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("base"), _tasks())


def _regress(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["regress", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def shifted_logits(doc):
    """The same model with its letter-A logit raised by 2 nats (mass moves to the first option)."""
    p = model_near_human(doc)
    p[0] *= np.exp(2.0)
    return p


def test_identical_runs_exit_0(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks())
    rc, out, _ = _regress(capsys, base_run, cand)
    assert rc == 0
    assert "no regression" in out
    for metric in ("wd", "kl", "acc", "macro_f1"):
        assert f"| {metric} (" in out


def test_values_recomputed_from_samples_match_metrics_code(base_run):
    from opinbench.metrics import distribution as M

    values = read_run(base_run)
    doc = DIST[0]
    p = model_near_human(doc)[:4]
    expect = float(M.wasserstein(p[None], np.asarray(doc["distribution"])[None], np.asarray(doc["ordinal"])[None])[0])
    assert values.tasks["opinionqa_wd"].docs[doc["id"]]["wd"] == pytest.approx(expect, rel=1e-9)
    assert values.tasks["vk_direct"].docs["vk:0"]["gold"] == VK[0]["gold_label"]


def test_shifted_letter_logits_exit_1_naming_metric(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(wd_probs=shifted_logits))
    rc, out, _ = _regress(capsys, base_run, cand, "--format", "json")
    assert rc == 1
    report = json.loads(out)
    assert "opinionqa_wd/wd" in report["regressions"]
    assert all(not r.startswith("vk_direct") for r in report["regressions"])


def test_changed_prompt_exit_2_naming_prompt(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(vk_prompt_of=lambda d: d["prompt"].replace("Answer:", "Your answer:")))
    rc, _, err = _regress(capsys, base_run, cand)
    assert rc == 2
    assert "vk_direct" in err and "prompt differs for 60 of 60" in err and "--allow-prompt-change" in err


def test_template_change_with_score_drop_exit_1_naming_metric(tmp_path, base_run, capsys):
    """A template change measured on purpose: the new template confuses the model (answers drop)."""
    vk_new = [{**d, "prompt": d["prompt"].replace("A. Support B. Oppose C. Either", "A. Oppose B. Support C. Either")}
              for d in VK]
    cand = write_run(tmp_path, _tasks(vk=vk_new, vk_probs=lambda d: model_answers_right(d, p_right=0.3)))
    rc, out, _ = _regress(capsys, base_run, cand, "--allow-prompt-change")
    assert rc == 1
    assert "vk_direct | acc (↑)" in out and "❌ regression" in out
    assert "prompts differ for 60 of 60 documents" in out


def test_different_task_versions_exit_2(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(), versions={"opinionqa_wd": 2.0})
    rc, _, err = _regress(capsys, base_run, cand)
    assert rc == 2
    assert "opinionqa_wd: task version 1.0 in the baseline but 2.0" in err


def test_different_data_exit_2(tmp_path, base_run, capsys):
    dist = [dict(d) for d in DIST]
    dist[3]["distribution"] = [0.25, 0.25, 0.25, 0.25]
    cand = write_run(tmp_path, _tasks(dist=dist))
    rc, _, err = _regress(capsys, base_run, cand)
    assert rc == 2
    assert "document data differs for 1 of 80" in err and DIST[3]["id"] in err


def test_too_few_shared_docs_exit_2(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(vk=VK[:10]))
    rc, _, err = _regress(capsys, base_run, cand)
    assert rc == 2
    assert "vk_direct: only 5 shared questions (10 shared documents" in err and "--min-questions 10" in err
    # the old flag still works, counting questions now; identical values: nothing could be missed
    rc, _, err = _regress(capsys, base_run, cand, "--min-docs", "5")
    assert "deprecated" in err
    # 5 questions: no sign pattern reaches alpha / tests, so "no regression" would mean nothing
    assert rc == 2 and "underpowered: vk_direct/acc" in err and "questions needed" in err
    rc, _, _ = _regress(capsys, base_run, cand, "--min-questions", "5", "--allow-underpowered")
    assert rc == 0


def test_junit_parses_with_one_case_per_task_and_metric(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(wd_probs=shifted_logits))
    out = tmp_path / "report.xml"
    rc, _, _ = _regress(capsys, base_run, cand, "--format", "junit", "--out", out)
    assert rc == 1
    root = ET.parse(out).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {
        ("opinbench.regress.opinionqa_wd", "wd"), ("opinbench.regress.opinionqa_wd", "kl"),
        ("opinbench.regress.vk_direct", "acc"), ("opinbench.regress.vk_direct", "macro_f1"),
    }
    assert cases[("opinbench.regress.opinionqa_wd", "wd")].find("failure") is not None
    assert cases[("opinbench.regress.vk_direct", "acc")].find("failure") is None


def test_junit_reports_incomparable_as_error(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(), versions={"vk_direct": 3.0})
    out = tmp_path / "report.xml"
    rc, _, _ = _regress(capsys, base_run, cand, "--format", "junit", "--out", out)
    assert rc == 2
    assert "task version" in ET.parse(out).getroot().find(".//error").text


def test_record_baseline_and_compare(tmp_path, base_run, capsys):
    out = tmp_path / "base.json.gz"
    assert main(["regress", "record", str(base_run), "--out", str(out)]) == 0
    data = json.loads(gzip.decompress(out.read_bytes()))
    assert data["format"] == baseline.FORMAT
    assert data["tasks"]["opinionqa_wd"]["version"] == 1.0
    assert data["tasks"]["opinionqa_wd"]["task_hash"]
    assert len(data["tasks"]["vk_direct"]["docs"]) == 60
    assert out.stat().st_size < 30_000
    # the baseline stands in for the run
    rc, _, _ = _regress(capsys, out, write_run(tmp_path / "same", _tasks()))
    assert rc == 0
    rc, _, _ = _regress(capsys, out, write_run(tmp_path / "worse", _tasks(wd_probs=shifted_logits)))
    assert rc == 1
    # same content, same bytes: a re-recorded unchanged baseline shows no diff
    again = tmp_path / "again.json.gz"
    main(["regress", "record", str(base_run), "--out", str(again)])
    assert json.loads(gzip.decompress(again.read_bytes()))["tasks"] == data["tasks"]


def test_tolerance_hides_small_significant_change(tmp_path, base_run, capsys):
    cand = write_run(tmp_path, _tasks(wd_probs=shifted_logits))
    rc, _, _ = _regress(capsys, base_run, cand, "--tolerance", "wd=1,kl=100")
    assert rc == 0


def test_improvement_reported_not_failed(tmp_path, base_run, capsys):
    worse = write_run(tmp_path, _tasks(wd_probs=shifted_logits))
    rc, out, _ = _regress(capsys, worse, base_run)
    assert rc == 0
    assert "✅ improvement" in out


def test_parse_tolerances_rejects_unknown_metric():
    assert check.parse_tolerances(["wd=0.01", "acc=0.02,kl=0.5"])["kl"] == 0.5
    with pytest.raises(ConfigError, match="METRIC=NUMBER"):
        check.parse_tolerances(["bleu=1"])


def test_holm_matches_definition():
    p = [0.01, 0.04, 0.03, 0.2]
    # sorted 0.01*4, 0.03*3, 0.04*2, 0.2*1, made monotone
    assert stats.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2])


def test_sign_flip_exact_and_sampled_agree():
    rng = np.random.default_rng(3)
    d = rng.normal(0.01, 0.05, size=60)
    q = np.repeat(np.arange(15), 4)
    exact = stats.sign_flip_pvalue(d, q)
    q20 = np.repeat(np.arange(20), 3)
    sampled = stats.sign_flip_pvalue(d, q20, n_resamples=20_000)
    assert 0 < exact <= 1 and 0 < sampled <= 1
    # a question's documents flip together: duplicating each question's documents changes nothing
    assert stats.sign_flip_pvalue(np.repeat(d[:8], 3), np.repeat(np.arange(8), 3)) == pytest.approx(
        stats.sign_flip_pvalue(d[:8], np.arange(8))
    )


def test_committed_ci_baseline_reads():
    from tests.conftest import REPO

    values = baseline.read(REPO / "baselines" / "ci_smollm2.json.gz")
    wd = values.tasks["opinionqa_wd"]
    assert len(wd.docs) == 68 and len({d["question"] for d in wd.docs.values()}) == 17
    assert len(values.tasks["vk_direct"].docs) == 60
    assert values.config["device"] == "cpu" and values.config["model_dtype"] == "torch.float32"


def test_regress_imports_neither_lm_eval_nor_the_harness():
    """Data flows one way: regress reads outputs, it never reaches back into the tasks or lm-eval."""
    import subprocess
    import sys

    code = (
        "import sys, opinbench.commands.regress, opinbench.regress.calibration\n"
        "leaked = sorted(m for m in sys.modules if m.startswith(('opinbench.harness', 'opinbench.prompts', 'lm_eval')))\n"
        "assert not leaked, leaked\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
