"""`opinbench regress` on the hidden inputs of issue 19: clustered tests, power, lost tasks, bad rows and flags."""

from __future__ import annotations

import gzip
import json
import math
import shutil

import numpy as np
import pytest

from opinbench.cli import main
from opinbench.errors import ConfigError
from opinbench.regress import check
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


def _regress(capsys, *argv):
    rc = main(["regress", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _two_question_answers():
    """34 answer documents: 2 questions x 17 groups (as opinionqa_direct: one question, many groups)."""
    return [{**d, "question_key": f"Q{i // 17}", "question": f"Question {i // 17}"} for i, d in enumerate(vk_docs(34))]


def _always(right: bool, wrong_questions=()):
    def probs(doc):
        p = model_answers_right(doc, p_right=1.0)
        if not right or doc["question_key"] in wrong_questions:
            p = np.roll(p, 1)
        return p
    return probs


def test_one_question_flipping_is_not_evidence_of_a_regression(tmp_path, capsys):
    """McNemar over documents said p = 1.5e-5 (17 'independent' flips); the question is one unit."""
    docs = _two_question_answers()
    base = write_run(tmp_path / "a", {"vk_direct": (docs, vk_prompt, _always(True))})
    cand = write_run(tmp_path / "b", {"vk_direct": (docs, vk_prompt, _always(True, {"Q0"}))})
    report = check.regress(read_run(base), read_run(cand), min_questions=1)
    acc = next(r for r in report["rows"] if r["metric"] == "acc")
    assert acc["delta"] == pytest.approx(-0.5)
    assert acc["pvalue"] >= 0.5 and acc["verdict"] == "ok"
    assert acc["mde"] is None and acc["underpowered"]  # 2 questions: no test can reach alpha
    assert report["exit_code"] == 2
    rc, _, err = _regress(capsys, base, cand)
    assert rc == 2 and "only 2 shared questions" in err


def test_catastrophe_on_two_questions_is_not_a_pass(tmp_path, capsys):
    """All mass on the farthest option (WD 0.2 -> 0.7) on 2 questions passed with exit 0."""
    dist = distribution_docs(n_questions=2, n_groups=17)

    def farthest(doc):
        p = np.full(5, 1e-6)
        p[0 if np.dot(doc["distribution"], doc["ordinal"]) > 2.5 else 3] = 1.0
        return p

    base = write_run(tmp_path / "a", {"opinionqa_wd": (dist, wd_prompt, model_near_human)})
    cand = write_run(tmp_path / "b", {"opinionqa_wd": (dist, wd_prompt, farthest)})
    for flags in ([], ["--min-questions", "1"]):
        rc, out, err = _regress(capsys, base, cand, *flags)
        assert rc == 2, (flags, out, err)
    assert "underpowered: opinionqa_wd/wd" in err and "questions needed" in err
    assert "| ∞ ⚠ |" in out and "opinbench regress: underpowered" in out
    rc, out, _ = _regress(capsys, base, cand, "--min-questions", "1", "--allow-underpowered")
    assert rc == 0 and "accepted (--allow-underpowered)" in out


def test_broad_worsening_on_enough_questions_still_fails(tmp_path, capsys):
    dist = distribution_docs(n_questions=30, n_groups=4)

    def uniform(doc):
        return np.array([0.2, 0.2, 0.2, 0.2, 0.02])

    base = write_run(tmp_path / "a", {"opinionqa_wd": (dist, wd_prompt, model_near_human)})
    cand = write_run(tmp_path / "b", {"opinionqa_wd": (dist, wd_prompt, uniform)})
    rc, out, _ = _regress(capsys, base, cand, "--format", "json")
    assert rc == 1 and "opinionqa_wd/wd" in json.loads(out)["regressions"]


def _two_tasks():
    return {"opinionqa_wd": (distribution_docs(20, 4), wd_prompt, model_near_human),
            "vk_direct": (vk_docs(60), vk_prompt, model_answers_right)}


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_lost_task_is_exit_2(tmp_path, capsys, how):
    base = write_run(tmp_path / "a", _two_tasks())
    cand = write_run(tmp_path / "b", _two_tasks())
    samples = next(cand.glob("samples_vk_direct_*.jsonl"))
    if how == "missing":
        samples.unlink()
    else:
        samples.write_text("")
    rc, _, err = _regress(capsys, base, cand)
    assert rc == 2 and "vk_direct in the baseline but not in the candidate" in err
    rc, out, _ = _regress(capsys, base, cand, "--allow-missing-tasks")
    assert rc == 0 and "vk_direct: in the baseline but not in the candidate, not tested" in out


def test_duplicate_document_with_other_values_is_exit_2(tmp_path, capsys):
    base = write_run(tmp_path / "a", _two_tasks())
    cand = write_run(tmp_path / "b", _two_tasks())
    samples = next(cand.glob("samples_opinionqa_wd_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    twin = json.loads(json.dumps(rows[5]))
    twin["resps"] = [[[str(-0.1 * (i + 1)), "False"]] for i in range(len(twin["resps"]))]
    twin["filtered_resps"] = [r[0] for r in twin["resps"]]
    samples.write_text("".join(json.dumps(r) + "\n" for r in [*rows, twin]))
    rc, _, err = _regress(capsys, base, cand)
    assert rc == 2 and f"document {rows[5]['doc']['id']} is logged twice with different values" in err


def test_nonfinite_loglikelihoods_are_counted_not_a_crash(tmp_path, capsys):
    dist = distribution_docs(20, 4)
    nan_ids = {d["id"] for d in dist[:8]}

    def some_nan(doc):
        return np.full(5, np.nan) if doc["id"] in nan_ids else model_near_human(doc)

    base = write_run(tmp_path / "a", {"opinionqa_wd": (dist, wd_prompt, model_near_human)})
    cand = write_run(tmp_path / "b", {"opinionqa_wd": (dist, wd_prompt, some_nan)})
    values = read_run(cand)
    assert sum(values.tasks["opinionqa_wd"].docs[i]["wd"] is None for i in nan_ids) == 8
    report = check.regress(read_run(base), values, allow_underpowered=True)
    rows = {r["metric"]: r for r in report["rows"]}
    assert rows["nonfinite"]["candidate"] == pytest.approx(8 / 80) and rows["nonfinite"]["baseline"] == 0.0
    assert rows["wd"]["n_docs"] == 72
    assert any("non-finite loglikelihoods" in n and "candidate 8" in n for n in report["notes"])


@pytest.mark.parametrize("flag, value", [("--alpha", "nan"), ("--alpha", "5"), ("--alpha", "-1"), ("--alpha", "0"),
                                         ("--min-questions", "-5"), ("--min-questions", "0"), ("--min-docs", "-5")])
def test_bad_alpha_and_counts_are_refused(tmp_path, capsys, flag, value):
    base = write_run(tmp_path / "a", _two_tasks())
    try:
        rc = main(["regress", str(base), str(base), flag, value])
    except SystemExit as exc:  # argparse's own exit, where the CLI does not catch it
        rc = exc.code
    assert rc == 2
    assert flag.lstrip("-").split("-")[0] in capsys.readouterr().err


def test_check_refuses_bad_alpha_directly():
    for alpha in (float("nan"), 5.0, -1.0, 0.0, 1.0):
        with pytest.raises(ConfigError, match="alpha"):
            check.check_counts(alpha=alpha, min_questions=1)
    with pytest.raises(ConfigError, match="min-questions"):
        check.check_counts(alpha=0.05, min_questions=0)


def test_gzipped_samples_and_results_are_read(tmp_path, capsys):
    base = write_run(tmp_path / "a", _two_tasks())
    cand = write_run(tmp_path / "b", _two_tasks())
    for f in [*cand.glob("samples_*.jsonl"), *cand.glob("results_*.json")]:
        with f.open("rb") as src, gzip.open(f"{f}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        f.unlink()
    values = read_run(cand)
    assert set(values.tasks) == {"opinionqa_wd", "vk_direct"} and values.tasks["vk_direct"].version == 1.0
    rc, out, _ = _regress(capsys, base, cand)
    assert rc == 0 and "no regression" in out


def test_minimum_detectable_effect_and_questions_needed():
    level = 0.05 / 4
    assert math.isinf(check.minimum_detectable_effect(0.01, 7, level))  # 2^-6 = 0.0156 >= 0.0125
    assert check.minimum_detectable_effect(0.01, 8, level) == pytest.approx(0.01 * (2.4977 + 0.8416), rel=1e-3)
    row = check._Row("t", "wd", "x", 80, 20, 0.2, 0.2, 1.0, 0.01)
    need = check.questions_needed(row, check.minimum_detectable_effect(0.01, 20, level), 0.005, level)
    assert need == math.ceil(20 * (0.01 * (2.4977 + 0.8416) / 0.005) ** 2)
