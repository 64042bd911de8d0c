"""The diagnostics of ``opinionqa_wd`` in real lm-eval runs, recomputed independently from the logged samples.

Each document's ``jsd``, ``rank_tau``, ``refusal_gap`` and entropy stratum is recomputed here
from its logged loglikelihoods with numpy and scipy only (letter probabilities: the two
spellings of a letter summed; JSD: ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2``;
rank order: ``scipy.stats.kendalltau`` variant b; entropy: ``scipy.stats.entropy`` over
log(options), cut at the shipped cut points read from the JSON file), and the per-document
values and the published means must equal them to 1e-9. The default suite runs a tiny random
model on a tiny release; the slow test runs ``opinbench eval`` with SmolLM2 on 68 documents of
the real data.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, kendalltau

from opinbench.paths import tasks_dir
from tests.helpers.opinionqa_files import write_tiny_release
from tests.helpers.tiny_models import build_model

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
CUTS = json.loads((REPO / "opinbench" / "data" / "resources" / "entropy_strata.json").read_text())["datasets"]
TOL = 1e-9


def independent(doc: dict, lls: list[float]) -> dict[str, float]:
    """The diagnostics of one logged document, from scipy and numpy only."""
    n_letters, k = len(doc["letters"]), doc["n_ordinal"]
    probs = np.exp(np.asarray(lls[:n_letters])) + np.exp(np.asarray(lls[n_letters : 2 * n_letters]))
    model, human = probs[:k] / probs[:k].sum(), np.asarray(doc["distribution"], dtype=float)
    out = {"jsd": jensenshannon(model, human, base=2) ** 2}
    tau = kendalltau(model, human, variant="b").statistic
    out["rank_tau_undefined"] = float(np.isnan(tau))
    if not np.isnan(tau):
        out["rank_tau"] = tau
    if doc.get("n") is not None and doc.get("n_nonsubstantive") is not None and len(doc["options"]) > k:
        gap = probs[k:].sum() / probs.sum() - doc["n_nonsubstantive"] / (doc["n"] + doc["n_nonsubstantive"])
        out["refusal_gap"], out["refusal_gap_abs"] = gap, abs(gap)
    low, high = CUTS[doc["dataset"]]["cuts"]
    h = entropy(human) / math.log(k)
    level = "consensus" if h < low else "mixed" if h < high else "divided"
    # WD: the task's own number (checked against POT and scipy in test_metrics_distribution)
    out[f"wd|entropy={level}"] = None
    return out


def check(rows: list[dict], results: dict[str, float]) -> dict[str, list[float]]:
    """Every document's logged diagnostics and the published means against `independent`; returns the values."""
    values: dict[str, list[float]] = {}
    for row in rows:
        lls = [float(r[0]) for r in row["filtered_resps"]]
        ref = independent(row["doc"], lls)
        logged = {k: row[k] for k in row if k in ref or k.startswith("wd|entropy=") or k.startswith("rank_tau")
                  or k.startswith("refusal_gap")}
        assert set(logged) == set(ref), (row["doc"]["id"], sorted(logged), sorted(ref))
        for key, value in ref.items():
            if value is None:  # the stratum: the key is the check; its value is the document's WD
                value = row["wd"]
            assert abs(float(logged[key]) - value) <= TOL, (row["doc"]["id"], key, logged[key], value)
            values.setdefault(key, []).append(value)
    for key, xs in values.items():
        assert abs(results[f"{key},none"] - float(np.mean(xs))) <= TOL, key
    # standard errors: wd's mechanism (its metric object's), over the documents' questions
    from opinbench.scoring import metric

    for key in ("jsd", "rank_tau", "refusal_gap", "refusal_gap_abs", "wd|entropy=divided"):
        assert metric(key).stderr == metric("wd").stderr, key
        docs = [(row[key], row["doc"]["question_key"]) for row in rows if key in row]
        se = metric(key).standard_error([v for v, _ in docs], [q for _, q in docs])
        if se is not None and f"{key}_stderr,none" in results:
            assert abs(results[f"{key}_stderr,none"] - se) <= TOL, key
    return values


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    release = write_tiny_release(tmp_path_factory.mktemp("release"), 12, seed=3)
    model = build_model("merged", tmp_path_factory.mktemp("model"))
    lm = HFLM(pretrained=str(model), batch_size=8, device="cpu", dtype="float32")
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"source": str(release)})
    return simple_evaluate(model=lm, tasks=["opinionqa_wd"], task_manager=tm, log_samples=True)


def test_tiny_run_diagnostics_equal_scipy_from_the_logged_samples(tiny_run):
    rows = tiny_run["samples"]["opinionqa_wd"]
    results = tiny_run["results"]["opinionqa_wd"]
    values = check(rows, results)
    assert len(values["jsd"]) == len(rows) == 48
    assert len(values["refusal_gap"]) == 48  # the tiny release has counts and a "Refused" option
    assert {k for k in values if k.startswith("wd|entropy=")}, "no document got a stratum"
    for key in ("jsd", "rank_tau", "refusal_gap", "refusal_gap_abs", "rank_tau_undefined"):
        assert f"{key}_stderr,none" in results


@pytest.mark.slow
def test_smollm2_run_of_68_documents_reports_every_diagnostic(shared_data, tmp_path):
    """Issue 22's done-when: SmolLM2 on ``opinionqa_wd --limit 68`` of the real data."""
    from opinbench.runs import find_runs

    out = tmp_path / "run"
    env = {**os.environ, "OPINBENCH_DATA_DIR": str(shared_data), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "opinbench", "eval", "--limit", "68", "--output_path", str(out)],
                   check=True, env=env, cwd=REPO, timeout=1800)
    run = find_runs(out)[0]
    rows = [r.data for r in run.rows("opinionqa_wd")]
    results = run.results["results"]["opinionqa_wd"]
    values = check(rows, results)
    assert len(rows) == 68
    for key in ("jsd", "rank_tau", "refusal_gap", "wd|entropy=consensus", "wd|entropy=mixed", "wd|entropy=divided"):
        assert key in values and math.isfinite(results[f"{key},none"]), key
