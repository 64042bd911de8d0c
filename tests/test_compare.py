"""`opinbench compare`: paired tests between two runs, from samples files written here."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from scipy import stats

from opinbench.cli import main
from opinbench.commands.compare import compare_runs, find_runs, self_consistency
from opinbench.errors import ConfigError, DataError

OPTIONS = ["Yes", "Neutral", "No"]


def doc(i: int, gold: str, group: str = "Left", individual: str | None = None) -> dict:
    return {
        "id": f"anes:pilot_2022:{i}", "dataset": "anes", "family": "survey", "question": f"q{i}?",
        "options": OPTIONS, "letters": ["A", "B", "C"], "subject": f"p{i % 10}", "subject_group": group,
        "individual": individual or f"p{i % 10}", "answer": gold, "answer_letter": "ABC"[OPTIONS.index(gold)],
        "gold_label": gold, "labels": OPTIONS, "context": None, "split": "test", "n_boot": 100, "boot_seed": 0,
    }


def write_run(folder: Path, task: str, docs: list[dict], gens: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl"
    with path.open("w") as fh:
        for n, (d, g) in enumerate(zip(docs, gens)):
            fh.write(json.dumps({"doc_id": n, "doc": d, "resps": [g], "filtered_resps": [g]}) + "\n")
    return path


def tag(answer: str) -> str:
    return f"<reasoning>r</reasoning><answer>{answer}</answer>"


def other(gold: str) -> str:
    return OPTIONS[(OPTIONS.index(gold) + 1) % 3]


@pytest.fixture
def docs():
    rng = random.Random(0)
    return [doc(i, rng.choice(OPTIONS), group=["Left", "Center", "Right"][i % 3]) for i in range(60)]


def test_mcnemar_counts_and_pvalue(tmp_path, docs):
    # A right on 0..39, B right on 0..29 and 50..54: b = 10 (30..39), c = 5 (50..54)
    a = [[tag(d["answer"] if i < 40 else other(d["answer"]))] for i, d in enumerate(docs)]
    b = [[tag(d["answer"] if i < 30 or 50 <= i < 55 else "nonsense")] for i, d in enumerate(docs)]
    write_run(tmp_path / "a", "anes_cot", docs, a)
    write_run(tmp_path / "b", "anes_cot", docs, b)
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    (t,) = report["tasks"]
    mc = t["mcnemar"]
    assert (mc["b"], mc["c"], mc["both_right"], mc["n"]) == (10, 5, 30, 60)
    assert math.isclose(mc["pvalue"], stats.binomtest(10, 15, 0.5).pvalue)
    assert math.isclose(t["mean"]["acc"][0], 40 / 60) and math.isclose(t["mean"]["acc"][1], 35 / 60)
    assert "welch_repeats" not in t  # one repeat each
    wi = t["welch_individuals"]
    assert wi["n_individuals"] == 10
    by = wi["by_group"]
    assert set(by) == {"Left", "Center", "Right"}
    m = sum(1 for g in by.values() if g["pvalue"] is not None)
    for g in by.values():
        if g["pvalue"] is not None:
            assert math.isclose(g["pvalue_bonferroni"], min(1.0, g["pvalue"] * m))


def test_repeats_welch_and_self_consistency(tmp_path, docs):
    rng = random.Random(1)
    a = [[tag(d["answer"] if rng.random() < 0.8 else other(d["answer"])) for _ in range(4)] for d in docs]
    b = [[tag(d["answer"] if rng.random() < 0.4 else other(d["answer"])) for _ in range(4)] for d in docs]
    write_run(tmp_path / "a", "anes_cot_sampled", docs, a)
    write_run(tmp_path / "b", "anes_cot_sampled", docs, b)
    (t,) = compare_runs(tmp_path / "a", tmp_path / "b")["tasks"]
    assert t["repeats"] == [4, 4]
    assert t["mcnemar"]["on"] == "self-consistency answer"
    w = t["welch_repeats"]["acc"]
    per_rep_a = [sum(tag(d["answer"]) == g[r] for d, g in zip(docs, a)) / 60 for r in range(4)]
    per_rep_b = [sum(tag(d["answer"]) == g[r] for d, g in zip(docs, b)) / 60 for r in range(4)]
    ref = stats.ttest_ind(per_rep_a, per_rep_b, equal_var=False)
    assert math.isclose(w["pvalue"], ref.pvalue) and math.isclose(w["statistic"], ref.statistic)
    assert w["pvalue"] < 0.01


def test_self_consistency():
    assert self_consistency(["Yes", None, "No", "No"]) == "No"
    assert self_consistency(["Yes", "No"]) == "Yes"  # tie: the first given
    assert self_consistency([None, None]) is None


def test_cli_prints_table_and_json(tmp_path, docs, capsys):
    write_run(tmp_path / "a", "anes_cot", docs, [[tag(d["answer"])] for d in docs])
    write_run(tmp_path / "b", "anes_cot", docs, [[tag(other(d["answer"]))] for d in docs])
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "McNemar exact" in out and "A right/B wrong 60" in out and "Bonferroni" in out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"][0]["mcnemar"]["pvalue"] < 1e-10


def test_direct_runs_read_loglikelihoods(tmp_path, docs):
    def rows(pick):
        out = []
        for n, d in enumerate(docs):
            i = pick(d)
            lls = [[[-0.1 if j % 3 == i else -4.0, False]] for j in range(6)]
            out.append({"doc_id": n, "doc": d, "resps": lls, "filtered_resps": [[x[0][0], False] for x in lls]})
        return out

    for name, pick in (("a", lambda d: OPTIONS.index(d["answer"])), ("b", lambda d: 0)):
        (tmp_path / name).mkdir()
        with (tmp_path / name / "samples_anes_direct_2026-01-01T00-00-00.jsonl").open("w") as fh:
            for row in rows(pick):
                fh.write(json.dumps(row) + "\n")
    (t,) = compare_runs(tmp_path / "a", tmp_path / "b")["tasks"]
    assert t["mean"]["acc"][0] == 1.0
    n_yes = sum(d["answer"] == "Yes" for d in docs)
    assert math.isclose(t["mean"]["acc"][1], n_yes / 60)
    assert t["mcnemar"]["b"] == 60 - n_yes and t["mcnemar"]["c"] == 0


def test_clear_errors(tmp_path, docs):
    write_run(tmp_path / "a", "anes_cot", docs, [[tag("Yes")]] * 60)
    write_run(tmp_path / "b", "wom_cot", docs, [[tag("Yes")]] * 60)
    with pytest.raises(ConfigError, match="share no task"):
        compare_runs(tmp_path / "a", tmp_path / "b")
    other_docs = [dict(d, id=d["id"] + "x") for d in docs]
    write_run(tmp_path / "c", "anes_cot", other_docs, [[tag("Yes")]] * 60)
    with pytest.raises(ConfigError, match="share no document"):
        compare_runs(tmp_path / "a", tmp_path / "c")
    flipped = [dict(d, gold_label=other(d["answer"]), answer=other(d["answer"])) for d in docs]
    write_run(tmp_path / "d", "anes_cot", flipped, [[tag("Yes")]] * 60)
    with pytest.raises(ConfigError, match="different data"):
        compare_runs(tmp_path / "a", tmp_path / "d")
    with pytest.raises(ConfigError, match="not found"):
        compare_runs(tmp_path / "a", tmp_path / "a", tasks=["vk_cot"])
    with pytest.raises(ConfigError, match="no samples"):
        find_runs(tmp_path / "empty_dir_that_exists" if (tmp_path / "empty_dir_that_exists").mkdir() is None else "")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "samples_opinionqa_wd_2026-01-01T00-00-00.jsonl").write_text(json.dumps({"doc": {"id": 1}}) + "\n")
    with pytest.raises(DataError, match="not an opinbench answer-task document"):
        compare_runs(bad, bad)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2


def test_distribution_runs_beside_are_skipped_and_the_file_taken_is_named(tmp_path, docs, capsys):
    for side in ("a", "b"):
        write_run(tmp_path / side, "anes_cot", docs, [[tag(d["answer"])] for d in docs])
        wd = {"id": "opinionqa:Q1:SEX:Male", "distribution": [0.5, 0.5], "options": ["x", "y"], "ordinal": [1, 2]}
        (tmp_path / side / "samples_opinionqa_wd_2026-01-01T00-00-00.000000.jsonl").write_text(json.dumps({"doc": wd}) + "\n")
    # a throwaway earlier run of the same task in A: older, ignored, and said so
    old = tmp_path / "a" / "samples_anes_cot_2025-12-31T00-00-00.000000.jsonl"
    old.write_text((tmp_path / "a" / "samples_anes_cot_2026-01-01T00-00-00.000000.jsonl").read_text().split("\n", 1)[0] + "\n")
    report = compare_runs(tmp_path / "a", tmp_path / "b")
    assert [t["task"] for t in report["tasks"]] == ["anes_cot"]
    assert report["skipped"][0]["task"] == "opinionqa_wd" and "distribution task" in report["skipped"][0]["why"]
    assert report["tasks"][0]["files"]["older_ignored_a"] == 1
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "skipped opinionqa_wd: a distribution task" in out
    assert "anes_cot (A): took samples_anes_cot_2026-01-01T00-00-00.000000.jsonl, the newest; 1 older samples file" in out


def test_pairing_cot_with_its_direct_baseline(tmp_path, docs):
    """One run holding anes_cot and anes_direct: the reasoning task against its baseline."""
    write_run(tmp_path / "run", "anes_cot", docs, [[tag(d["answer"])] for d in docs])
    with (tmp_path / "run" / "samples_anes_direct_2026-01-01T00-00-00.jsonl").open("w") as fh:
        for n, d in enumerate(docs):  # always letter A ("Yes")
            fh.write(json.dumps({"doc_id": n, "doc": d, "resps": [[[-0.1 if j % 3 == 0 else -3.0, False]] for j in range(6)]}) + "\n")
    report = compare_runs(tmp_path / "run", tmp_path / "run", tasks=["anes_cot:anes_direct"])
    (t,) = report["tasks"]
    n_yes = sum(d["answer"] == "Yes" for d in docs)
    assert t["task"] == "anes_cot:anes_direct"
    assert (t["mcnemar"]["b"], t["mcnemar"]["c"]) == (60 - n_yes, 0)
    assert main(["compare", str(tmp_path / "run"), str(tmp_path / "run"), "--tasks", "anes_cot:anes_direct"]) == 0


def test_partial_overlap_is_counted(tmp_path, docs):
    write_run(tmp_path / "a", "anes_cot", docs, [[tag(d["answer"])] for d in docs])
    write_run(tmp_path / "b", "anes_cot", docs[:40], [[tag(d["answer"])] for d in docs[:40]])
    (t,) = compare_runs(tmp_path / "a", tmp_path / "b")["tasks"]
    assert (t["n_shared"], t["only_a"], t["only_b"]) == (40, 20, 0)


def test_several_models_in_one_folder_is_refused(tmp_path, docs):
    write_run(tmp_path / "runs" / "model1", "anes_cot", docs, [[tag("Yes")]] * 60)
    write_run(tmp_path / "runs" / "model2", "anes_cot", docs, [[tag("Yes")]] * 60)
    with pytest.raises(ConfigError, match="several folders"):
        find_runs(tmp_path / "runs")


def test_end_to_end_with_lm_eval_samples(shared_data, tmp_path, monkeypatch):
    """Two fake-model runs through lm-eval, compared from their logged samples."""
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    import importlib.util

    spec = importlib.util.spec_from_file_location("_cot_harness", Path(__file__).with_name("test_cot_harness.py"))
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    run_tasks, write_samples = harness.run_tasks, harness.write_samples

    a = write_samples(run_tasks(["vk_cot", "vk_direct"], "gold", limit=20), tmp_path / "a")
    b = write_samples(run_tasks(["vk_cot", "vk_direct"], "random", limit=20), tmp_path / "b")
    report = compare_runs(a, b)
    assert [t["task"] for t in report["tasks"]] == ["vk_cot", "vk_direct"]
    for t in report["tasks"]:
        assert t["n_shared"] == 20 and t["mean"]["acc"][0] == 1.0
        assert t["mcnemar"]["c"] == 0
