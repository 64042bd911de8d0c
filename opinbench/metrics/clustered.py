"""Standard errors clustered on the unit that was sampled (the survey question).

The documents of one question (its subpopulations, or its repeats) share the question's
wording, options and the model's reading of it, so they are not independent draws:
treating them as such (lm-eval's ``mean_stderr``) understates the error, about 3x on
``opinionqa_wd`` (17 groups per question). Miller (2024), "Adding Error Bars to Evals".

* `cluster_mean_stderr`: the CR1 (Liang-Zeger with the small-sample factor G/(G-1))
  standard error of a mean: with residuals e_i = x_i - mean and per-cluster sums
  S_g, ``se = sqrt(G / (G - 1) * sum_g S_g^2) / N``. With one document per cluster it
  equals the ordinary ``std(ddof=1) / sqrt(N)``. Written out because it is three lines;
  statsmodels (not a dependency) gives the same through ``OLS(x, 1).fit(cov_type="cluster")``
  with ``use_correction=True``.

>>> round(cluster_mean_stderr([1.0, 2.0, 3.0, 4.0], ["a", "b", "c", "d"]), 6)  # = std/sqrt(n)
0.645497
>>> round(cluster_mean_stderr([1.0, 1.0, 3.0, 3.0], ["a", "a", "b", "b"]), 6)
1.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def cluster_codes(clusters: Sequence[object]) -> np.ndarray:
    """Cluster labels -> integer codes 0..G-1 (labels compared as strings)."""
    _, codes = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return codes.astype(np.int64)


def cluster_mean_stderr(values: Sequence[float], clusters: Sequence[object]) -> float:
    """CR1 standard error of ``mean(values)`` clustered on ``clusters`` (NaN with < 2 clusters).

    Raises:
        ValueError: ``values`` and ``clusters`` differ in length.
    """
    x = np.asarray(values, dtype=np.float64)
    if len(clusters) != x.size:
        raise ValueError(f"{x.size} values but {len(clusters)} cluster labels")
    if x.size == 0:
        return float("nan")
    codes = cluster_codes(clusters)
    g = int(codes.max()) + 1
    if g < 2:
        return float("nan")
    sums = np.bincount(codes, weights=x - x.mean(), minlength=g)
    return math.sqrt(g / (g - 1) * float(np.sum(sums**2))) / x.size


def twoway_mean_stderr(values: Sequence[float], first: Sequence[object], second: Sequence[object]) -> float:
    """Two-way clustered standard error of a mean (Cameron, Gelbach & Miller 2011).

    ``V = V_first + V_second - V_both``, each the CR1 variance clustered on one key and
    ``V_both`` on the pair. Used where documents are (individual, question) cells and
    both the individual and the question are sampled (docs/statistics.md). NaN when
    either key has fewer than two clusters; a negative sum (possible in small samples)
    falls back to the larger one-way variance, as CGM advise.
    """
    x = np.asarray(values, dtype=np.float64)
    if not (len(first) == len(second) == x.size):
        raise ValueError(f"{x.size} values but {len(first)} and {len(second)} cluster labels")
    both = [f"{a}\x1f{b}" for a, b in zip(first, second)]
    va, vb, vab = (cluster_mean_stderr(x, c) ** 2 for c in (first, second, both))
    v = va + vb - vab
    if not v >= 0:
        v = max(va, vb)
    return math.sqrt(v)


def cluster_draw_factors(clusters: Sequence[object], n_boot: int, seed: int) -> list[np.ndarray]:
    """Per clustering side, (n_boot, N): how often each item's cluster was drawn.

    One-way clusters (labels): one factor; each draw takes G of the G clusters with
    replacement. Two-way clusters (pairs such as (question, individual)): two factors,
    Owen's (2007) pigeonhole bootstrap, questions and individuals drawn independently.
    """
    rng = np.random.default_rng(seed)
    two_way = bool(clusters) and all(isinstance(c, tuple) and len(c) == 2 for c in clusters)
    sides = [[c[0] for c in clusters], [c[1] for c in clusters]] if two_way else [list(clusters)]
    out = []
    for side in sides:
        codes = cluster_codes(side)
        g = int(codes.max()) + 1
        out.append(rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot)[:, codes].astype(np.float64))
    return out


def cluster_draws(clusters: Sequence[object], n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, N) multiplicity of each item in a cluster bootstrap: the product of `cluster_draw_factors`."""
    return np.prod(cluster_draw_factors(clusters, n_boot, seed), axis=0)


def n_clusters(clusters: Sequence[object]) -> int:
    """The number of clusters (for two-way pairs, the smaller of the two counts)."""
    if not clusters:
        return 0
    if all(isinstance(c, tuple) and len(c) == 2 for c in clusters):
        return min(len({c[0] for c in clusters}), len({c[1] for c in clusters}))
    return len({str(c) for c in clusters})


def cluster_bootstrap_stderr(
    statistic: Callable[[list[T]], float],
    items: Sequence[T],
    clusters: Sequence[object],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of ``statistic(items)``, resampling whole clusters (`cluster_draws`).

    For aggregations that are not means (macro-F1, balanced accuracy, a ratio). Seeded,
    so the same inputs give the same figure. Draws whose statistic is NaN (a class
    absent from the draw) are left out. NaN with fewer than two clusters or fewer than
    two finite draws.

    >>> round(cluster_bootstrap_stderr(lambda xs: sum(xs) / len(xs), [0.0, 0.0, 1.0, 1.0], "aabb", n_boot=2000), 1)  # sqrt(p(1-p)/G) = 0.354, G = 2
    0.4
    """
    if len(clusters) != len(items):
        raise ValueError(f"{len(items)} items but {len(clusters)} cluster labels")
    if n_clusters(clusters) < 2:
        return float("nan")
    stats = []
    for counts in cluster_draws(clusters, n_boot, seed).astype(np.int64):
        idx = np.repeat(np.arange(len(items)), counts)
        stats.append(float(statistic([items[i] for i in idx])) if idx.size else float("nan"))
    s = np.asarray(stats)
    s = s[np.isfinite(s)]
    return float(s.std(ddof=1)) if s.size > 1 else float("nan")


# --------------------------------------------------------------------------- cluster keys on values


class ClusteredFloat(float):
    """A per-document value that knows its cluster (the question it belongs to).

    It *is* the float: lm-eval averages it, and its logged samples hold the same number
    (``json.dumps`` writes a float subclass as the float), so per-document values do not
    change; only the aggregation's standard error reads ``cluster`` (`clusters_of`).
    """

    cluster: Any

    def __new__(cls, value: float, cluster: object) -> "ClusteredFloat":
        out = super().__new__(cls, value)
        out.cluster = _label(cluster)
        return out

    def __reduce__(self):  # pickled across lm-eval's processes with its cluster
        return (ClusteredFloat, (float(self), self.cluster))


class ClusteredDict(dict):
    """A per-document dict value (the answer tasks' `item`) that knows its cluster; logged as the dict."""

    cluster: Any

    def __init__(self, value: dict, cluster: object) -> None:
        super().__init__(value)
        self.cluster = _label(cluster)

    def __reduce__(self):
        return (ClusteredDict, (dict(self), self.cluster))


class ClusteredTuple(tuple):
    """A per-document tuple value (``wd_gap_closed``'s (wd, uniform, human)) that knows its cluster; logged as the list."""

    cluster: Any

    def __new__(cls, value: tuple, cluster: object) -> "ClusteredTuple":
        out = super().__new__(cls, value)
        out.cluster = _label(cluster)
        return out

    def __reduce__(self):
        return (ClusteredTuple, (tuple(self), self.cluster))


def _label(cluster: object) -> Any:
    return tuple(str(c) for c in cluster) if isinstance(cluster, tuple) else str(cluster)


INDIVIDUAL_DATASETS = ("wom", "smartvote", "anes")


def sampling_unit(doc: dict[str, Any]) -> Any:
    """The cluster a document's values are resampled by (docs/statistics.md).

    The question (``question_key``; a VK situation) for distribution documents and
    OpinionQA/VK answer documents; for the individual-level stance data sets (Wahl-o-Mat,
    smartvote, ANES), where both the individuals and the questions are samples, the pair
    (question, individual): two-way clustering.
    """
    question = doc.get("question_key", doc.get("id"))
    if doc.get("dataset") in INDIVIDUAL_DATASETS and doc.get("individual") is not None:
        return (str(question), str(doc["individual"]))
    return str(question)


def with_clusters(values: dict[str, Any], cluster: object) -> dict[str, Any]:
    """Every value of a ``process_results`` dict carrying ``cluster`` (`with_cluster`)."""
    return {k: with_cluster(v, cluster) for k, v in values.items()}


def by_sampling_unit(process_results: F) -> F:
    """Decorator of a task's ``process_results(doc, results)``: every value it returns carries the
    document's `sampling_unit` (`with_clusters`), so that lm-eval's ``X_stderr`` is clustered
    on it (`opinbench.harness.stderr`). The logged per-document numbers do not change."""

    @functools.wraps(process_results)
    def wrapped(doc: dict[str, Any], results: Any) -> dict[str, Any]:
        return with_clusters(process_results(doc, results), sampling_unit(doc))

    return wrapped  # type: ignore[return-value]


def with_cluster(value: Any, cluster: object) -> Any:
    """``value`` carrying ``cluster``: a `ClusteredFloat` for numbers, a `ClusteredDict` for dicts,
    a `ClusteredTuple` for tuples; anything else as it is."""
    if isinstance(value, dict):
        return ClusteredDict(value, cluster)
    if isinstance(value, tuple):
        return ClusteredTuple(value, cluster)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ClusteredFloat(value, cluster)
    return value


def clusters_of(items: Sequence[object]) -> list[Any] | None:
    """The cluster of every item, or None when any item has none (then no clustered figure exists)."""
    out = [getattr(it, "cluster", None) for it in items]
    return None if any(c is None for c in out) else out  # type: ignore[return-value]


def clustered_mean_stderr(items: Sequence[float]) -> float:
    """`cluster_mean_stderr` of values that carry their clusters (`with_cluster`); NaN when they do not."""
    clusters = clusters_of(items)
    if clusters is None:
        return float("nan")
    x = [float(v) for v in items]
    if clusters and all(isinstance(c, tuple) for c in clusters):
        return twoway_mean_stderr(x, [c[0] for c in clusters], [c[1] for c in clusters])
    return cluster_mean_stderr(x, clusters)


def with_stderr(stderr: Callable[[Sequence[Any]], Any]) -> Callable[[F], F]:
    """Decorator naming an aggregation's standard error (``fn.stderr``); lm-eval publishes it as ``X_stderr``
    through `opinbench.harness.stderr`, in place of lm-eval's own (naive or "N/A") figure."""

    def mark(fn: F) -> F:
        fn.stderr = stderr  # type: ignore[attr-defined]
        return fn

    return mark


def clustered_bootstrap(statistic: Callable[[list[Any]], float], *, n_boot: int = 1000, seed: int = 0):
    """The standard error of a non-mean aggregation over values that carry their clusters:
    `cluster_bootstrap_stderr` of ``statistic`` (NaN when the values carry none)."""

    def stderr(items: Sequence[Any]) -> float:
        clusters = clusters_of(items)
        if clusters is None:
            return float("nan")
        return cluster_bootstrap_stderr(statistic, list(items), clusters, n_boot=n_boot, seed=seed)

    return stderr
