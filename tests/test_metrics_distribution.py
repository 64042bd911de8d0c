"""Distributional metrics against hand computations, scipy and POT."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import rel_entr
from scipy.stats import wasserstein_distance

from opinbench.metrics import distribution as M


def random_batch(n: int, seed: int = 0, tie_rate: float = 0.15):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(2, 11))
        o = rng.permutation(k).astype(float) + rng.random(k) * 0.3  # unsorted, uneven gaps
        o[rng.random(k) < tie_rate] = o[0]  # some ties
        rows.append((rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k)), o))
    return rows


# --------------------------------------------------------------------------- hand computed


@pytest.mark.parametrize(
    "p, q, ordinal, expected",
    [
        ([1, 0, 0], [0, 0, 1], [1, 2, 3], 1.0),  # extremes of a 3-point scale
        ([1, 0, 0], [0, 1, 0], [1, 2, 3], 0.5),
        # OpinionQA's "neither" option sits between the other two: [1, 2, 1.5]
        ([1, 0, 0], [0, 0, 1], [1, 2, 1.5], 0.5),
        ([0, 1, 0], [0, 0, 1], [1, 2, 1.5], 0.5),
        ([0.5, 0.5, 0], [0, 0.5, 0.5], [1, 2, 3], 0.5),
        # uneven gaps: mass moves 1 -> 2 (distance 1) on a scale of range 4
        ([1, 0, 0], [0, 1, 0], [1, 2, 5], 0.25),
        # unnormalised input is renormalised first
        ([2, 0, 0], [0, 0, 4], [1, 2, 3], 1.0),
    ],
)
def test_wasserstein_hand_computed(p, q, ordinal, expected):
    assert M.wasserstein(p, q, ordinal)[0] == pytest.approx(expected)


def test_wasserstein_is_rescaled_to_the_ordinal_range():
    p, q = [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]
    base = M.wasserstein(p, q, [1, 2, 3])[0]
    assert M.wasserstein(p, q, [10, 20, 30])[0] == pytest.approx(base)
    assert M.wasserstein(p, q, [1, 2, 3], normalise=False)[0] == pytest.approx(2 * base)


def test_wasserstein_uses_the_ordinal_values_not_the_option_order():
    p, q = [1, 0, 0], [0, 0, 1]
    assert M.wasserstein(p, q, [1, 2, 3])[0] != pytest.approx(M.wasserstein(p, q, [1, 3, 2])[0])


def test_question_without_scale_gives_nan():
    assert np.isnan(M.wasserstein([0.5, 0.5], [1, 0], [1, 1])[0])


def test_wasserstein_matches_scipy_on_random_ragged_batch():
    rows = random_batch(500)
    P = M.pad([r[0] for r in rows], fill=0.0)
    Q = M.pad([r[1] for r in rows], fill=0.0)
    O = M.pad([r[2] for r in rows])
    got = M.wasserstein(P, Q, O)
    for (p, q, o), g in zip(rows, got):
        rng = o.max() - o.min()
        if rng == 0:
            assert np.isnan(g)
        else:
            assert g == pytest.approx(wasserstein_distance(o, o, p, q) / rng, abs=1e-12)


def test_wasserstein_matches_pot():
    ot = pytest.importorskip("ot")
    rows = [r for r in random_batch(50, seed=1, tie_rate=0) if len(r[0]) == 5]
    O = np.stack([r[2] for r in rows], axis=1)  # POT batches along the last axis
    P = np.stack([r[0] for r in rows], axis=1)
    Q = np.stack([r[1] for r in rows], axis=1)
    ref = ot.wasserstein_1d(O, O, P, Q, p=1) / (O.max(axis=0) - O.min(axis=0))
    np.testing.assert_allclose(M.wasserstein(P.T, Q.T, O.T), ref, atol=1e-9)


# --------------------------------------------------------------------------- other metrics


def test_kl_matches_scipy():
    rows = random_batch(200, seed=2)
    P = M.pad([r[0] for r in rows], fill=0.0)
    Q = M.pad([r[1] for r in rows], fill=0.0)
    O = M.pad([r[2] for r in rows])
    got = M.kl_divergence(P, Q, O, eps=0.0)
    for (p, q, _), g in zip(rows, got):
        assert g == pytest.approx(rel_entr(p, q).sum(), rel=1e-9)


def test_kl_is_forward_and_smoothed():
    # KL(human || model) is infinite without smoothing when the model gives 0 to a human answer
    human, model = [0.5, 0.5], [1.0, 0.0]
    assert np.isfinite(M.kl_divergence(human, model, [1, 2])[0])
    assert M.kl_divergence(human, model, [1, 2])[0] > M.kl_divergence(model, human, [1, 2])[0]


def test_onehot_ties_count_as_agreement():
    out = M.onehot_agreement([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]], [[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], [[1, 2, 3]] * 2)
    assert out.tolist() == [1.0, 0.0]


def test_uniform_bound_hand_computed():
    # human all on option 1 of a 3-point scale; uniform CDF gap = 2/3 then 1/3 -> 1.0 / range 2
    assert M.uniform_wd([1, 0, 0], [1, 2, 3])[0] == pytest.approx(0.5)


def test_human_bootstrap_exact_small_cases():
    # p = [.5, .5] on {1, 2}: a single respondent lands on one option -> WD 0.5 always
    assert M.human_bootstrap_wd([0.5, 0.5], [1], [1, 2], n_resamples=200)[0] == pytest.approx(0.5)
    # two respondents: WD 0.5 with prob 1/2 (both on one side), 0 otherwise -> 0.25
    assert M.human_bootstrap_wd([0.5, 0.5], [2], [1, 2], n_resamples=20000)[0] == pytest.approx(0.25, abs=0.01)


def test_human_bootstrap_shrinks_with_n_and_is_nan_without_counts():
    p, o = [[0.2, 0.5, 0.3]] * 3, [[1, 2, 3]] * 3
    small, large, unknown = M.human_bootstrap_wd(p, [10, 10000, np.nan], o, n_resamples=500)
    assert large < small / 10
    assert np.isnan(unknown)


def test_relative_improvement():
    assert M.relative_improvement(0.25, 0.5, 0.0) == pytest.approx(0.5)
    assert M.relative_improvement(0.5, 0.5, 0.1) == pytest.approx(0.0)
    assert M.relative_improvement(0.6, 0.5, 0.1) < 0
    assert np.isnan(M.relative_improvement(0.2, 0.1, 0.1))


def test_bootstrap_ci_brackets_the_mean():
    x = np.random.default_rng(0).normal(0.2, 0.05, size=500)
    lo, hi = M.bootstrap_ci(x)
    assert lo < x.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * x.std() / np.sqrt(500), rel=0.2)


def test_human_bootstrap_exact_path_agrees_with_monte_carlo():
    p, n, o = [0.2, 0.5, 0.3], [6], [1, 2, 1.5]
    exact = M.human_bootstrap_wd(p, n, o)[0]
    mc = M.human_bootstrap_wd(p, n, o, exact_limit=0, n_resamples=100_000)[0]
    assert exact == pytest.approx(mc, abs=0.003)
    # hand computed: n=1 on p=[.2,.5,.3] over {1, 2, 1.5}: E|F_draw - F_p| summed over gaps / range
    # draw option 1 (p=.2): CDF at 1 ->1 vs .2, at 1.5 ->1 vs .5 ; gaps .5,.5 -> (.8*.5 + .5*.5)/1 = .65
    # draw option 3 (p=.3): CDF 0 vs .2, 1 vs .5 -> (.2*.5 + .5*.5) = .35
    # draw option 2 (p=.5): CDF 0 vs .2, 0 vs .5 -> (.2*.5 + .5*.5) = .35
    assert M.human_bootstrap_wd(p, [1], o)[0] == pytest.approx(0.2 * 0.65 + 0.5 * 0.35 + 0.3 * 0.35)
