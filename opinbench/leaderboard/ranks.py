"""Intervals for the leaderboard's headline and ranks, by a bootstrap over questions.

The headline of an entry is the mean over the definition's metrics of each metric's
normalised score (0 at the floor, 1 at the ceiling). Its uncertainty, and that of the
order of entries, comes from which questions happened to be asked: the questions are the
sampled unit (docs/statistics.md). So each bootstrap draw resamples, per task, the
questions with replacement, **the same draw for every entry** (paired: entries are
compared on their shared questions, so question difficulty cancels), recomputes every
metric as the mean over the drawn questions of the per-question values, normalises it with
the entry's floor and ceiling (held fixed) and averages into a headline, then ranks the
entries. The 95 % headline interval is the 2.5th-97.5th percentile of the draws; the rank
interval is the 2.5th-97.5th percentile of each entry's rank, shown as "2–4": entries
whose intervals overlap are not told apart, and a page shows them as such, not as a
strict order.

A task with fewer than two shared questions gives the bootstrap nothing to resample: every
draw is the observed value, and its interval would have no width. Then no interval is
estimated (``headline_ci`` None, `RankInterval.why` says which task) and every entry's rank
interval is the whole board: one question cannot tell entries apart.

Input (pure data, no store): per entry id, per metric id, ``{question: value}`` (the mean of
the metric's per-document values over the question's documents), the metric's task and
``(floor, ceiling)``. A metric without per-question values (a judge metric) enters every
draw at its published normalised value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricValues:
    """One metric of one entry: per-question values, its task (questions resampled per task),
    floor and ceiling; ``fixed``: the normalised score where no per-question values exist."""

    task: str
    per_question: Mapping[str, float]
    floor: float
    ceiling: float
    fixed: float | None = None


@dataclass(frozen=True)
class RankInterval:
    """One entry: its headline and 95 % interval, and its rank interval (1 = best)."""

    headline: float
    headline_ci: tuple[float, float] | None
    rank_low: int
    rank_high: int
    why: str | None = None  # why there is no headline interval

    @property
    def rank_text(self) -> str:
        """``"3"`` or ``"2–4"``.

        >>> RankInterval(0.5, (0.4, 0.6), 2, 4).rank_text, RankInterval(0.5, (0.4, 0.6), 1, 1).rank_text
        ('2–4', '1')
        """
        return str(self.rank_low) if self.rank_low == self.rank_high else f"{self.rank_low}–{self.rank_high}"


def _shared_questions(entries: Mapping[str, Mapping[str, MetricValues]]) -> dict[str, list[str]]:
    """Per task, the questions every entry has for every metric of that task (sorted)."""
    out: dict[str, set[str] | None] = {}
    for metrics in entries.values():
        for mv in metrics.values():
            if mv.fixed is None:
                qs = set(mv.per_question)
                out[mv.task] = qs if out.get(mv.task) is None else out[mv.task] & qs  # type: ignore[operator]
    return {t: sorted(qs or ()) for t, qs in out.items()}


def _scores(mv: MetricValues, questions: list[str], weights: np.ndarray) -> np.ndarray:
    """Normalised score of one metric per draw: ``weights`` (B, Q) counts of each question."""
    if mv.fixed is not None or not questions:
        return np.full(weights.shape[0], np.nan if mv.fixed is None else mv.fixed)
    x = np.array([mv.per_question[q] for q in questions], dtype=np.float64)
    raw = (weights @ x) / weights.sum(axis=1)
    span = mv.ceiling - mv.floor
    return (raw - mv.floor) / span if span else np.full(weights.shape[0], np.nan)


def _headline(metrics: Mapping[str, MetricValues], tasks: Mapping[str, list[str]]) -> float:
    """The observed headline: every metric on all shared questions, normalised, averaged."""
    obs = [_scores(mv, tasks.get(mv.task, []), np.ones((1, len(tasks.get(mv.task, [])))))[0] for mv in metrics.values()]
    return float(np.mean(obs)) if obs else float("nan")


def rank_intervals(
    entries: Mapping[str, Mapping[str, MetricValues]], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, RankInterval]:
    """Headline and rank intervals of every entry (see the module docstring).

    Higher headline = better rank. Entries lacking a metric score as NaN in it and rank last.
    """
    ids = sorted(entries)
    if not ids:
        return {}
    tasks = _shared_questions(entries)
    thin = sorted(t for t, qs in tasks.items() if len(qs) < 2)
    if thin:
        why = "; ".join(f"{t}: {len(tasks[t])} question{'' if len(tasks[t]) == 1 else 's'} shared by every entry"
                        for t in thin) + " (too few to resample)"
        return {e: RankInterval(_headline(entries[e], tasks), None, 1, len(ids), why) for e in ids}
    rng = np.random.default_rng(seed)
    draws = {t: (rng.multinomial(len(qs), np.full(len(qs), 1 / len(qs)), size=n_boot).astype(np.float64)
                 if qs else np.zeros((n_boot, 0))) for t, qs in tasks.items()}
    heads, observed = np.zeros((n_boot, len(ids))), np.zeros(len(ids))
    for j, e in enumerate(ids):
        per = [_scores(mv, tasks.get(mv.task, []), draws.get(mv.task, np.zeros((n_boot, 0)))) for mv in entries[e].values()]
        heads[:, j] = np.mean(per, axis=0) if per else np.nan
        observed[j] = _headline(entries[e], tasks)
    order = np.where(np.isnan(heads), -np.inf, heads)
    # rank 1 = highest headline; ties share the better rank
    ranks = 1 + (order[:, None, :] > order[:, :, None]).sum(axis=2)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = {}
    for j, e in enumerate(ids):
        h = heads[:, j][np.isfinite(heads[:, j])]
        ci = (float(np.percentile(h, lo)), float(np.percentile(h, hi))) if h.size else (float("nan"), float("nan"))
        out[e] = RankInterval(float(observed[j]), ci, int(np.floor(np.percentile(ranks[:, j], lo))),
                              int(np.ceil(np.percentile(ranks[:, j], hi))))
    return out
