"""The statistics of a regression check: paired tests over questions and Holm's correction.

* `sign_flip_pvalue`: paired permutation test of the mean per-document difference
  (WD, KL). Documents of one question (its groups) are correlated, so the unit
  that is exchanged is the *question*: under H0 (the two runs are exchangeable)
  each question's summed difference is as likely to have either sign. All 2^Q
  sign patterns are enumerated when Q <= `EXACT_MAX_CLUSTERS`, otherwise
  ``n_resamples`` random patterns are drawn and p = (1 + #extreme) / (1 + n)
  (Phipson & Smyth 2010), so p is never 0.
* `bootstrap_macro_f1_pvalue`: paired bootstrap of the macro-F1 difference,
  resampling questions with all their documents (the same draws for both runs);
  two-sided p from the null-centred bootstrap distribution,
  p = (1 + #{|d* - d| >= |d|}) / (1 + B).
* `holm`: Holm's step-down adjusted p-values (family-wise error control across
  the metrics tested). Hand-written because scipy has only BH/BY
  (``false_discovery_control``) and statsmodels' ``multipletests`` is not a
  dependency; it is five lines.

Accuracy and judge verdicts use `sign_flip_pvalue` too, on per-document 0/1 differences:
exact McNemar over documents would treat the 17 groups of one question as 17 independent
pieces of evidence (p = 1.5e-5 for one question flipping, where the question is one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from opinbench.metrics import classification as C
from opinbench.metrics.answer_tasks import weighted_confusions

# Up to 2^16 sign patterns are enumerated exactly.
EXACT_MAX_CLUSTERS = 16
DEFAULT_RESAMPLES = 10_000
DEFAULT_BOOTSTRAP = 2_000


def cluster_index(clusters: Sequence[object]) -> np.ndarray:
    """Cluster labels -> codes 0..Q-1 (first-seen order)."""
    _, codes = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return codes.astype(np.int64)


def sign_flip_pvalue(
    diffs: Sequence[float], clusters: Sequence[object], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> float:
    """Two-sided p-value of mean(diffs) = 0, flipping the sign of whole clusters (questions).

    >>> sign_flip_pvalue([0.1, 0.1, 0.2, 0.3], ["a", "a", "b", "c"])
    0.25
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    sums = np.bincount(cluster_index(clusters), weights=d)
    observed = abs(sums.sum())
    if observed == 0.0:
        return 1.0
    q = sums.size
    # Ties within rounding count as extreme (a permutation giving the same |sum| is not less extreme).
    tol = 1e-12 * max(1.0, float(np.abs(sums).sum()))
    if q <= EXACT_MAX_CLUSTERS:
        patterns = ((np.arange(2**q)[:, None] >> np.arange(q)) & 1) * 2 - 1  # (2^q, q) of +-1
        stats = np.abs(patterns @ sums)
        return float(np.mean(stats >= observed - tol))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, n_resamples, 2_000):
        size = min(2_000, n_resamples - start)
        signs = rng.integers(0, 2, size=(size, q)) * 2 - 1
        extreme += int(np.sum(np.abs(signs @ sums) >= observed - tol))
    return (1 + extreme) / (1 + n_resamples)


def _macro_f1_weighted(cells: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 (mean over repeats) for each row of document ``weights`` (B, N); ``cells`` (N, R)."""
    g, p = cells[:, 0] // (k + 1), cells % (k + 1)
    f1 = C.scores(weighted_confusions(g, p, k, weights))["macro_f1"]  # (B, R)
    return np.nanmean(f1, axis=1)


def macro_f1_codes(gold: Sequence[object], preds: Sequence[Sequence[object]], labels: Sequence[object]) -> np.ndarray:
    """Cell codes ``gold * (K + 1) + pred`` (N, R) for `bootstrap_macro_f1_pvalue`."""
    r = len(preds[0]) if len(preds) else 1
    if any(len(p) != r for p in preds):
        raise ValueError("documents with different numbers of repeats")
    g, p = C.encode([x for x in gold for _ in range(r)], [x for ps in preds for x in ps], labels)
    return (g * (len(labels) + 1) + p).reshape(len(gold), r)


def bootstrap_macro_f1_pvalue(
    cells_a: np.ndarray,
    cells_b: np.ndarray,
    k: int,
    clusters: Sequence[object],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """(macro-F1 of A, of B, two-sided p of the difference, bootstrap SE of the difference) by a
    paired bootstrap over clusters.

    ``cells_a``/``cells_b``: `macro_f1_codes` of the same documents in the same order.
    """
    codes = cluster_index(clusters)
    n = codes.size
    ones = np.ones((1, n))
    f_a = float(_macro_f1_weighted(cells_a, ones, k)[0])
    f_b = float(_macro_f1_weighted(cells_b, ones, k)[0])
    observed = f_b - f_a
    if math.isnan(observed):
        return f_a, f_b, float("nan"), float("nan")
    q = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(q, np.full(q, 1.0 / q), size=n_boot).astype(np.float64)  # (B, Q) cluster counts
    weights = draws[:, codes]  # each document weighs as often as its question was drawn
    boot = _macro_f1_weighted(cells_b, weights, k) - _macro_f1_weighted(cells_a, weights, k)
    boot = boot[~np.isnan(boot)]
    se = float(boot.std(ddof=1)) if boot.size > 1 else float("nan")
    if observed == 0.0:
        return f_a, f_b, 1.0, se
    extreme = int(np.sum(np.abs(boot - observed) >= abs(observed)))
    return f_a, f_b, (1 + extreme) / (1 + boot.size), se


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values; NaNs stay NaN and do not count as tests.

    >>> holm([0.01, 0.04, 0.03, float("nan")])
    [0.03, 0.06, 0.06, nan]
    """
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))  # step-down, kept monotone
        out[i] = running
    return out
