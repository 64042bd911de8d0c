"""Paired significance tests between two runs (scipy only; statsmodels is not needed).

* `mcnemar_exact`: McNemar's test on per-item correctness of two systems on the
  same items. Only discordant items carry information: ``b`` (A right, B wrong)
  and ``c`` (A wrong, B right). Under H0 each discordant item is equally likely
  to go either way, so ``b ~ Binomial(b + c, 1/2)`` and the exact two-sided
  p-value is ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` (statsmodels'
  ``mcnemar(exact=True)`` gives the same). With no discordant item p = 1.
* `welch_t`: Welch's unequal-variance t-test (``scipy.stats.ttest_ind(...,
  equal_var=False)``) between two samples of scores, e.g. per-repeat accuracies
  or per-individual macro-F1.
* `bonferroni`: adjusted p-values ``min(1, p * m)`` for ``m`` tests (groups).

>>> round(mcnemar_exact([1, 1, 1, 1, 0], [0, 0, 0, 0, 0]).pvalue, 4)
0.125
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["McNemar", "Welch", "bonferroni", "mcnemar_exact", "welch_t"]


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test. ``b``: A right and B wrong; ``c``: A wrong and B right."""

    n: int
    both_right: int
    both_wrong: int
    b: int
    c: int
    pvalue: float

    @property
    def acc_a(self) -> float:
        return (self.both_right + self.b) / self.n if self.n else float("nan")

    @property
    def acc_b(self) -> float:
        return (self.both_right + self.c) / self.n if self.n else float("nan")

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"acc_a": self.acc_a, "acc_b": self.acc_b}


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of mean(a) - mean(b)."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    statistic: float
    df: float
    pvalue: float

    def to_json(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def mcnemar_exact(correct_a: Sequence[Any], correct_b: Sequence[Any]) -> McNemar:
    """Exact (binomial) McNemar test on paired 0/1 correctness of two systems.

    Raises:
        ValueError: the sequences differ in length or hold values other than 0/1.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired correctness must be two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("correctness values must be 0/1 (or booleans)")
    a_only = int(np.sum((a == 1) & (b == 0)))
    b_only = int(np.sum((a == 0) & (b == 1)))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    return McNemar(
        n=int(a.size),
        both_right=int(np.sum((a == 1) & (b == 1))),
        both_wrong=int(np.sum((a == 0) & (b == 0))),
        b=a_only,
        c=b_only,
        pvalue=min(1.0, p),
    )


def welch_t(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test (two-sided). NaNs are dropped; fewer than two values per side,
    or no variance at all, give NaN statistic and p-value rather than an error."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    mean_a = float(x.mean()) if x.size else float("nan")
    mean_b = float(y.mean()) if y.size else float("nan")
    if x.size < 2 or y.size < 2 or (x.var(ddof=1) == 0 and y.var(ddof=1) == 0):
        return Welch(int(x.size), int(y.size), mean_a, mean_b, float("nan"), float("nan"), float("nan"))
    with warnings.catch_warnings():
        # scipy warns about precision when one side is (nearly) constant, e.g. all 1.0
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return Welch(int(x.size), int(y.size), mean_a, mean_b, float(res.statistic), float(df), float(res.pvalue))


def bonferroni(pvalues: Sequence[float]) -> list[float]:
    """Bonferroni-adjusted p-values over the tests that have one (NaNs stay NaN, not counted).

    >>> bonferroni([0.01, 0.2, float("nan")])
    [0.02, 0.4, nan]
    """
    m = sum(1 for p in pvalues if not math.isnan(p))
    return [p if math.isnan(p) else min(1.0, p * m) for p in pvalues]
