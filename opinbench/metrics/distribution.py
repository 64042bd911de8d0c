"""Distributional metrics: how close a model's answer distribution is to a group's.

All functions are vectorised over a batch of questions. A batch is a set of
arrays of shape ``(N, K)`` where ``K`` is the largest number of ordinal options;
shorter questions are padded with ``NaN`` in ``ordinal`` (and anything, e.g. 0,
in the probabilities: padded entries are ignored). `pad` builds such arrays.

Wasserstein distance (WD) follows Santurkar et al. (2023): the 1-D earth
mover's distance between the two distributions placed at the question's ordinal
values, divided by the distance between the extreme ordinal values, so that it
lies in [0, 1] for every question and scores compare across questions.
Representativeness is 1 - WD.

Why WD is computed here and not with scipy or POT: both distributions share the
same support (the ordinal values), so W1 = integral of |F - G| over that support,
a cumulative sum over at most 10 points; this runs over millions of rows at
once (the bootstrap bounds need that), whereas ``scipy.stats.wasserstein_distance``
works one pair at a time and POT's batched 1-D solver handles general supports
at far higher cost. The tests check this function against both libraries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from itertools import combinations
from math import comb

import numpy as np
from scipy.special import gammaln
from numpy.typing import ArrayLike, NDArray

EPS = 1e-12


def pad(rows: Sequence[Sequence[float]], width: int | None = None, fill: float = np.nan) -> NDArray[np.float64]:
    """Ragged rows -> ``(N, width)`` float array, padded with ``fill``."""
    width = width or max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), fill, dtype=np.float64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _as2d(x: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    return a[None, :] if a.ndim == 1 else a


def _mask(ordinal: NDArray[np.float64]) -> NDArray[np.bool_]:
    return ~np.isnan(ordinal)


def renormalise(p: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """Zero the padded entries and rescale each row to sum to 1."""
    p2, o2 = _as2d(p), _as2d(ordinal)
    p2 = np.where(_mask(o2), np.nan_to_num(p2, nan=0.0), 0.0)
    total = p2.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p2 / total, np.nan)


def scale_range(ordinal: ArrayLike) -> NDArray[np.float64]:
    """max - min of each row's ordinal values (0 for a question without a scale)."""
    o = _as2d(ordinal)
    return np.nanmax(o, axis=1) - np.nanmin(o, axis=1)


def wasserstein(p: ArrayLike, q: ArrayLike, ordinal: ArrayLike, *, normalise: bool = True) -> NDArray[np.float64]:
    """1-D Wasserstein distance between ``p`` and ``q`` on the ordinal values.

    Args:
        p, q: ``(N, K)`` or ``(K,)`` probability vectors (renormalised here).
        ordinal: matching ordinal values, ``NaN``-padded; need not be sorted.
        normalise: divide by the range of the ordinal values (default), giving
            a value in [0, 1]. ``NaN`` for a question whose values are all equal.

    >>> float(wasserstein([1, 0, 0], [0, 0, 1], [1, 2, 3])[0])
    1.0
    >>> float(wasserstein([1, 0, 0], [0, 0, 1], [1, 2, 1.5])[0])  # option 3 sits in the middle
    0.5
    """
    o = _as2d(ordinal)
    pp, qq = renormalise(p, o), renormalise(q, o)
    # Sort each row by ordinal value; padding (NaN) sorts last and carries no mass.
    order = np.argsort(np.where(np.isnan(o), np.inf, o), axis=1, kind="stable")
    o_s = np.take_along_axis(o, order, axis=1)
    diff = np.cumsum(np.take_along_axis(pp - qq, order, axis=1), axis=1)
    gaps = np.diff(o_s, axis=1)  # NaN where padding starts
    wd = np.nansum(np.abs(diff[:, :-1]) * gaps, axis=1)
    if normalise:
        rng = scale_range(o)
        with np.errstate(invalid="ignore", divide="ignore"):
            wd = np.where(rng > 0, wd / rng, np.nan)
    return wd


def kl_divergence(p_human: ArrayLike, q_model: ArrayLike, ordinal: ArrayLike, eps: float = 1e-6) -> NDArray[np.float64]:
    """Forward KL(human || model) in nats, with the model smoothed by ``eps``.

    >>> round(float(kl_divergence([0.5, 0.5], [0.5, 0.5], [1, 2])[0]), 6)
    0.0
    """
    o = _as2d(ordinal)
    p = renormalise(p_human, o)
    q = renormalise(renormalise(q_model, o) + eps, o)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return np.where(_mask(o), terms, 0.0).sum(axis=1)


def onehot_agreement(p_human: ArrayLike, q_model: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """1.0 where the model's most likely option is one of the group's modal options.

    >>> onehot_agreement([[0.6, 0.4], [0.5, 0.5]], [[0.1, 0.9], [0.0, 1.0]], [[1, 2], [1, 2]]).tolist()
    [0.0, 1.0]
    """
    o = _as2d(ordinal)
    p = np.where(_mask(o), renormalise(p_human, o), -np.inf)
    q = np.where(_mask(o), renormalise(q_model, o), -np.inf)
    top_model = np.argmax(q, axis=1)
    human_at_model = np.take_along_axis(p, top_model[:, None], axis=1)[:, 0]
    return (np.isclose(human_at_model, p.max(axis=1), rtol=0, atol=1e-12)).astype(np.float64)


def jensen_shannon(p: ArrayLike, q: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """Jensen-Shannon divergence in bits (base 2, in [0, 1]) between ``p`` and ``q`` over the ordinal options.

    The divergence, not scipy's distance: ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2``.
    Unlike KL it needs no smoothing (the mixture is positive wherever either is) and is symmetric,
    which is why SynthBench reports it beside WD for categorical questions.

    >>> float(jensen_shannon([1, 0], [0, 1], [1, 2])[0])
    1.0
    >>> float(jensen_shannon([0.5, 0.5], [0.5, 0.5], [1, 2])[0])
    0.0
    """
    o = _as2d(ordinal)
    pp, qq = (np.where(_mask(o), renormalise(x, o), 0.0) for x in (p, q))
    m = (pp + qq) / 2

    def kl_to_m(x: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0) / np.where(m > 0, m, 1.0)), 0.0).sum(axis=1)

    return np.maximum((kl_to_m(pp) + kl_to_m(qq)) / 2, 0.0)


def kendall_tau_b(p: ArrayLike, q: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """Kendall's tau-b between the option probabilities of ``p`` and ``q`` (do they rank the options alike?).

    Ties (exactly equal probabilities) are handled as `scipy.stats.kendalltau` (variant ``b``) does;
    ``NaN`` where either row is constant over its options (no ranking to compare). Rows have at most
    10 options, so every pair of options is compared at once instead of scipy's one row at a time.

    >>> float(kendall_tau_b([0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [1, 2, 3])[0])
    1.0
    >>> float(kendall_tau_b([0.5, 0.5], [0.2, 0.8], [1, 2])[0])
    nan
    """
    o = _as2d(ordinal)
    pp, qq = renormalise(p, o), renormalise(q, o)
    valid = _mask(o)
    pair = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((o.shape[1],) * 2, dtype=bool), k=1)
    sp = np.sign(pp[:, :, None] - pp[:, None, :])
    sq = np.sign(qq[:, :, None] - qq[:, None, :])
    n0 = pair.sum(axis=(1, 2))
    untied_p = np.where(pair, sp != 0, False).sum(axis=(1, 2))
    untied_q = np.where(pair, sq != 0, False).sum(axis=(1, 2))
    s = np.where(pair, sp * sq, 0.0).sum(axis=(1, 2))
    denom = np.sqrt(untied_p.astype(np.float64) * untied_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n0 > 0) & (denom > 0), s / denom, np.nan)


def normalised_entropy(p: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """Shannon entropy of ``p`` over the ordinal options divided by its maximum, log(number of options).

    0: every respondent gave the same answer (consensus); 1: answers spread evenly (divided).
    Dividing by the maximum makes questions with different numbers of options comparable.

    >>> normalised_entropy([[1.0, 0.0, 0.0], [0.25, 0.25, 0.5]], [[1, 2, 3], [1, 2, 3]]).round(4).tolist()
    [0.0, 0.9464]
    """
    o = _as2d(ordinal)
    pp = np.where(_mask(o), renormalise(p, o), 0.0)
    k = _mask(o).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 0.0 - np.where(pp > 0, pp * np.log(np.where(pp > 0, pp, 1.0)), 0.0).sum(axis=1)  # 0.0, not -0.0
        return np.where(k > 1, h / np.log(np.maximum(k, 2)), np.nan)


def uniform_wd(p_human: ArrayLike, ordinal: ArrayLike) -> NDArray[np.float64]:
    """WD of the uniform distribution over the ordinal options: the upper bound a model should beat."""
    o = _as2d(ordinal)
    return wasserstein(p_human, np.where(_mask(o), 1.0, 0.0), o)


def human_bootstrap_wd(
    p_human: ArrayLike,
    n: ArrayLike,
    ordinal: ArrayLike,
    *,
    n_resamples: int = 200,
    seed: int = 0,
    chunk_elements: int = 2_000_000,
    exact_limit: int = 20_000,
    keys: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """Expected WD between a bootstrap resample of the group and the group itself.

    Each resample draws ``n`` respondents (rounded) from the group's counts
    (multinomial on its distribution); the mean WD over resamples is the
    distance that sampling noise alone puts between two surveys of the same
    group, a lower bound for any model. ``NaN`` where ``n`` is unknown.
    Where the group is small enough that all possible resamples can be listed
    (at most ``exact_limit`` compositions of ``n`` into the options), the
    expectation is computed exactly from the multinomial probabilities instead,
    so that hand computations on small examples match to the last digit. Other
    rows with the same number of options are drawn together, in chunks of at
    most ``chunk_elements`` numbers.

    With ``keys`` (one string per row, e.g. the record id), each row draws from
    its own generator seeded by ``(seed, key)``: a row's value then does not
    depend on which other rows are computed with it, so a task scoring one
    document and `opinbench bounds` scoring the whole data set agree exactly.
    """
    o = _as2d(ordinal)
    p = renormalise(p_human, o)
    sizes = np.broadcast_to(np.asarray(n, dtype=np.float64), (p.shape[0],))
    rng = np.random.default_rng(seed)
    out = np.full(p.shape[0], np.nan)
    width = _mask(o).sum(axis=1)
    ok = np.isfinite(sizes) & (sizes >= 1) & ~np.isnan(p).all(axis=1)
    for i in np.flatnonzero(ok):
        k, m = int(width[i]), int(np.rint(sizes[i]))
        if comb(m + k - 1, k - 1) <= exact_limit:
            out[i] = _exact_expected_wd(p[i, :k], m, o[i, :k])
            ok[i] = False
    if keys is not None:
        for i in np.flatnonzero(ok):
            k = int(width[i])
            row_rng = np.random.default_rng([seed, int(hashlib.sha256(keys[i].encode()).hexdigest()[:16], 16)])
            draws = row_rng.multinomial(int(np.rint(sizes[i])), p[i, :k], size=n_resamples).astype(np.float64)
            out[i] = wasserstein(draws, np.broadcast_to(p[i, :k], draws.shape), np.broadcast_to(o[i, :k], draws.shape)).mean()
        return out
    for k in np.unique(width[ok]):
        rows = np.flatnonzero(ok & (width == k))
        step = max(1, chunk_elements // (n_resamples * int(k)))
        for start in range(0, rows.size, step):
            idx = rows[start : start + step]
            pk, ok_ = p[idx, :k], o[idx, :k]
            counts = np.rint(sizes[idx]).astype(np.int64)
            draws = rng.multinomial(counts, pk, size=(n_resamples, idx.size)).astype(np.float64)
            wd = wasserstein(
                draws.reshape(-1, k),
                np.broadcast_to(pk, draws.shape).reshape(-1, k),
                np.broadcast_to(ok_, draws.shape).reshape(-1, k),
            ).reshape(n_resamples, idx.size)
            out[idx] = wd.mean(axis=0)
    return out


def _compositions(n: int, k: int) -> NDArray[np.int64]:
    """All k-tuples of non-negative integers summing to n (stars and bars)."""
    if k == 1:
        return np.array([[n]], dtype=np.int64)
    bars = np.array(list(combinations(range(n + k - 1), k - 1)), dtype=np.int64).reshape(-1, k - 1)
    edges = np.concatenate([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), n + k - 1)], axis=1)
    return np.diff(edges, axis=1) - 1


def _exact_expected_wd(p: NDArray[np.float64], n: int, ordinal: NDArray[np.float64]) -> float:
    """E[WD(resample of n, p)] summed over every possible resample, weighted by its multinomial probability."""
    counts = _compositions(n, len(p))
    logp = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)
    with np.errstate(invalid="ignore"):  # 0 * log(0) counts as 0; any count on a p=0 option gives -inf
        terms = np.where(counts > 0, counts * logp, 0.0)
    log_pmf = gammaln(n + 1) - gammaln(counts + 1).sum(axis=1) + terms.sum(axis=1)
    pmf = np.exp(log_pmf)
    wd = wasserstein(counts.astype(np.float64), np.broadcast_to(p, counts.shape), np.broadcast_to(ordinal, counts.shape))
    return float(np.sum(pmf * wd))


def relative_improvement(model: float, baseline: float, lower_bound: float) -> float:
    """Share of the gap between ``baseline`` and ``lower_bound`` that ``model`` closes.

    1 means the model is as close to the humans as sampling noise allows, 0 means
    no better than the baseline, negative means worse.

    >>> relative_improvement(0.25, 0.5, 0.0)
    0.5
    """
    gap = baseline - lower_bound
    if not np.isfinite(gap) or abs(gap) < EPS:
        return float("nan")
    return float((baseline - model) / gap)


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[..., float] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic`` over documents (scipy)."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float("nan"), float("nan"))
    res = bootstrap(
        (x,),
        statistic,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=statistic in (np.mean, np.median),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))
