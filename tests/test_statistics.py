"""Clustered standard errors (issue 19): the estimators, the values that carry their cluster,
lm-eval publishing them as X_stderr, and coverage on a correlated null."""

from __future__ import annotations

import json
import math
import pickle
from collections import Counter

import numpy as np
import pytest

from opinbench.metrics import clustered, coverage


def _cr1_by_hand(x, clusters):
    x = np.asarray(x, dtype=float)
    resid = x - x.mean()
    keys = sorted(set(clusters))
    sums = np.array([sum(r for r, c in zip(resid, clusters) if c == k) for k in keys])
    return math.sqrt(len(keys) / (len(keys) - 1) * float(np.sum(sums**2))) / len(x)


def test_two_way_is_the_sum_of_one_way_variances_less_the_intersection():
    rng = np.random.default_rng(0)
    q = [f"q{i % 7}" for i in range(60)]
    ind = [f"i{i // 7}" for i in range(60)]
    x = rng.normal(size=60) + np.array([hash(c) % 5 for c in q]) * 0.3
    both = [f"{a}|{b}" for a, b in zip(q, ind)]
    v = _cr1_by_hand(x, q) ** 2 + _cr1_by_hand(x, ind) ** 2 - _cr1_by_hand(x, both) ** 2
    assert clustered.twoway_mean_stderr(x, q, ind) == pytest.approx(math.sqrt(v))


def test_cluster_bootstrap_of_a_mean_agrees_with_cr1():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(60), 17)
    x = rng.normal(0, 1, 60)[clusters] + rng.normal(0, 1, clusters.size)
    boot = clustered.cluster_bootstrap_stderr(lambda xs: float(np.mean(xs)), list(x), list(clusters), n_boot=1500)
    assert boot == pytest.approx(_cr1_by_hand(x, list(clusters)), rel=0.1)
    assert boot > 2 * x.std(ddof=1) / math.sqrt(x.size)  # far above the naive figure
    again = clustered.cluster_bootstrap_stderr(lambda xs: float(np.mean(xs)), list(x), list(clusters), n_boot=1500)
    assert again == boot  # seeded
    assert math.isnan(clustered.cluster_bootstrap_stderr(np.mean, [1.0, 2.0], ["a", "a"]))


def test_values_carry_their_cluster_and_log_unchanged():
    x = clustered.with_cluster(0.1234567890123, "Q1")
    d = clustered.with_cluster({"gold": "A", "pred": ["B"]}, ("Q1", "ind-7"))
    t = clustered.with_cluster((0.2, 0.3, 0.01), "Q2")
    assert json.dumps([x, d, t]) == json.dumps([0.1234567890123, {"gold": "A", "pred": ["B"]}, [0.2, 0.3, 0.01]])
    assert pickle.loads(pickle.dumps(x)).cluster == "Q1" and pickle.loads(pickle.dumps(d)).cluster == ("Q1", "ind-7")
    assert clustered.with_cluster("text", "Q") == "text" and clustered.clusters_of([x, 0.5]) is None
    assert clustered.sampling_unit({"question_key": "Q9", "dataset": "opinionqa", "individual": None}) == "Q9"
    assert clustered.sampling_unit({"question_key": "Q9", "dataset": "wom", "individual": "2021:SPD"}) == ("Q9", "2021:SPD")


def test_lm_eval_publishes_the_clustered_stderr():
    from lm_eval.api import metrics as lm

    import opinbench.harness  # noqa: F401  (installs the wrapper)
    import lm_eval.evaluator_utils as eu
    from opinbench.metrics import letters as hd
    from opinbench.metrics import answer_tasks

    values = [clustered.with_cluster(v, f"q{i // 17}") for i, v in enumerate(np.random.default_rng(2).normal(size=68))]
    values = [clustered.with_cluster(v + i // 17, v.cluster) for i, v in enumerate(values)]
    got = eu.stderr_for_metric(lm.mean, 100)(values)
    assert got == pytest.approx(_cr1_by_hand([float(v) for v in values], [v.cluster for v in values]))
    assert got > 2 * lm.mean_stderr(values)
    # plain floats (another benchmark's task): lm-eval's own figure
    assert eu.stderr_for_metric(lm.mean, 100)([1.0, 2.0, 4.0]) == pytest.approx(lm.mean_stderr([1.0, 2.0, 4.0]))
    # custom aggregations name their own; one cluster: "N/A", never NaN; bootstrap_iters 0: off
    assert eu.stderr_for_metric(answer_tasks.macro_f1, 100) is not None
    assert eu.stderr_for_metric(hd.share_nonfinite, 100)([clustered.with_cluster(0.0, "q")] * 3) == "N/A"
    assert eu.stderr_for_metric(lm.mean, 0) is None


def test_coverage_of_clustered_intervals_on_a_correlated_null():
    sizes = [17] * 150 + [16] * 30 + [15] * 20  # opinionqa_wd: 17 groups, fewer where a group's answer was unusable
    c = coverage.simulate(sizes, n_sims=3000, seed=3)
    assert 0.93 <= c.clustered <= 0.97
    assert c.naive < 0.7  # the independent-documents interval misses about half the time
    assert c.se_ratio == pytest.approx(math.sqrt(1 + 0.5 * (np.mean(sizes) - 1)), rel=0.05)  # design effect at ICC 0.5


def test_coverage_with_the_real_cluster_sizes(shared_data):
    from opinbench.data import registry
    from opinbench.harness.distribution import build_docs

    sizes = list(Counter(d["question_key"] for d in build_docs(registry.load("opinionqa", None, str(shared_data)))).values())
    c = coverage.simulate(sizes, n_sims=2000, seed=4)
    assert len(sizes) > 100 and 0.93 <= c.clustered <= 0.97 and c.naive < 0.7
