"""Representativeness (Santurkar et al., 2023): R(G) = 1 - mean over questions of WD(model, G).

Applied to the unsteered model scored against every group (``opinionqa_wd_default``)
it says whom the default model represents; the same functions apply to any list of
`ModelAnswer`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer

Group = tuple[str, str]  # (attribute, group)


def mean_wd_by_group(answers: Iterable[ModelAnswer]) -> dict[Group, float]:
    """Mean WD over the questions of each (attribute, group), in first-seen order."""
    values: dict[Group, list[float]] = defaultdict(list)
    for a in answers:
        if np.isfinite(a.wd):
            values[(a.attribute, a.group)].append(a.wd)
    return {g: float(np.mean(v)) for g, v in values.items()}


def by_group(answers: Iterable[ModelAnswer]) -> dict[Group, float]:
    """R(G) = 1 - mean WD, per (attribute, group)."""
    return {g: 1.0 - wd for g, wd in mean_wd_by_group(answers).items()}


def by_attribute(answers: Iterable[ModelAnswer]) -> dict[str, float]:
    """R per attribute: 1 - mean WD over every (question, group) of the attribute."""
    values: dict[str, list[float]] = defaultdict(list)
    for a in answers:
        if np.isfinite(a.wd):
            values[a.attribute].append(a.wd)
    return {attr: 1.0 - float(np.mean(v)) for attr, v in values.items()}


@dataclass(frozen=True)
class Ranking:
    """Groups from most to least represented, and the gap between the two ends."""

    order: list[tuple[Group, float]]

    @property
    def most(self) -> tuple[Group, float]:
        return self.order[0]

    @property
    def least(self) -> tuple[Group, float]:
        return self.order[-1]

    @property
    def gap(self) -> float:
        """R(most represented) - R(least represented)."""
        return self.most[1] - self.least[1]


def ranking(scores: dict[Group, float]) -> Ranking:
    """Rank groups by R, highest first (ties by name, so the order is stable).

    Raises:
        ValueError: no group.
    """
    if not scores:
        raise ValueError("no group to rank")
    return Ranking(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))
