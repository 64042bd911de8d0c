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

import math
from collections.abc import Sequence

import numpy as np


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
