"""Significance tests against scipy and hand-computed values."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats

import opinbench.metrics.significance as S


def test_mcnemar_exact_by_hand():
    a = [1] * 10 + [1] * 8 + [0] * 2 + [0] * 5
    b = [1] * 10 + [0] * 8 + [1] * 2 + [0] * 5
    res = S.mcnemar_exact(a, b)
    assert (res.n, res.both_right, res.both_wrong, res.b, res.c) == (25, 10, 5, 8, 2)
    # two-sided exact binomial: 2 * P(X <= 2 | n=10, p=1/2) = 2 * 56/1024
    assert res.pvalue == pytest.approx(2 * 56 / 1024)
    assert res.acc_a == pytest.approx(18 / 25) and res.acc_b == pytest.approx(12 / 25)


def test_mcnemar_symmetric_and_degenerate():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert S.mcnemar_exact(a, b).pvalue == pytest.approx(S.mcnemar_exact(b, a).pvalue)
    assert S.mcnemar_exact([1, 0, 1], [1, 0, 1]).pvalue == 1.0
    assert S.mcnemar_exact([True, False], [False, False]).b == 1
    with pytest.raises(ValueError):
        S.mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError):
        S.mcnemar_exact([0.5], [1])


def test_mcnemar_type_one_error_is_controlled():
    """Under H0 (same accuracy, independent errors) p < 0.05 in at most ~5% of runs."""
    rng = np.random.default_rng(1)
    rejections = sum(
        S.mcnemar_exact(rng.random(200) < 0.6, rng.random(200) < 0.6).pvalue < 0.05 for _ in range(400)
    )
    assert rejections / 400 <= 0.075


def test_welch_matches_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 12), rng.normal(0.5, 2, 9)
    res = S.welch_t(x, y)
    ref = stats.ttest_ind(x, y, equal_var=False)
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    assert res.df == pytest.approx(ref.df)
    assert (res.n_a, res.n_b) == (12, 9)


def test_welch_degenerate_inputs():
    assert math.isnan(S.welch_t([1.0], [2.0, 3.0]).pvalue)
    assert math.isnan(S.welch_t([1.0, 1.0], [1.0, 1.0]).pvalue)
    res = S.welch_t([1.0, float("nan"), 2.0], [3.0, 4.0])
    assert res.n_a == 2
    assert res.to_json()["mean_a"] == 1.5


def test_bonferroni():
    assert S.bonferroni([0.01, 0.02, 0.5]) == pytest.approx([0.03, 0.06, 1.0])
    out = S.bonferroni([0.01, float("nan")])
    assert out[0] == 0.01 and math.isnan(out[1])


def test_doctests():
    assert doctest.testmod(S).failed == 0
