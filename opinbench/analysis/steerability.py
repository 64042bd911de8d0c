"""Steerability (Santurkar et al., 2023): how representative the model becomes of a group
when the prompt asks it to answer as a member of that group.

Per (question, group), the best of the steerings is the one with the lowest WD;
steerability of the group is 1 - the mean over questions of that best WD. Each
steering alone and the unsteered model are reported the same way, over the same
questions (those every steering and the unsteered model answered for the group),
so the gain over the unsteered model compares like with like.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer
from opinbench.metrics.clustered import cluster_mean_stderr

Group = tuple[str, str]


@dataclass(frozen=True)
class Steerability:
    """One group's representativeness under each steering, the best of them, and unsteered.

    Attributes:
        group: (attribute, group).
        questions: questions the means are over.
        each: steering -> 1 - mean WD.
        best: 1 - mean over questions of the lowest WD among the steerings.
        unsteered: 1 - mean WD of the unsteered model, None without unsteered answers.
    """

    group: Group
    questions: int
    each: dict[str, float] = field(default_factory=dict)
    best: float = float("nan")
    unsteered: float | None = None

    @property
    def gain(self) -> float | None:
        """best - unsteered (in representativeness: positive means steering helped)."""
        return None if self.unsteered is None else self.best - self.unsteered


def steerability(
    steered: Mapping[str, Iterable[ModelAnswer]], unsteered: Iterable[ModelAnswer] | None = None
) -> list[Steerability]:
    """Per group, from the answers of each steering (``{"qa": [...], "bio": [...], ...}``).

    Only answers whose model was steered to the group it is scored against count.
    Groups are in first-seen order; a group some steering lacks entirely is left out.
    """
    wd: dict[str, dict[Group, dict[str, float]]] = {}
    for name, answers in steered.items():
        table: dict[Group, dict[str, float]] = defaultdict(dict)
        for a in answers:
            if a.steered_to == (a.attribute, a.group) and np.isfinite(a.wd):
                table[(a.attribute, a.group)][a.question_key] = a.wd
        wd[name] = table
    base: dict[Group, dict[str, float]] | None = None
    if unsteered is not None:
        base = defaultdict(dict)
        for a in unsteered:
            if np.isfinite(a.wd):
                base[(a.attribute, a.group)][a.question_key] = a.wd
    names = list(wd)
    groups = list(dict.fromkeys(g for table in wd.values() for g in table))
    out = []
    for g in groups:
        if any(g not in wd[n] for n in names):
            continue
        questions = set.intersection(*(set(wd[n][g]) for n in names))
        if base is not None and base.get(g):
            questions &= set(base[g])
        if not questions:
            continue
        qs = sorted(questions)
        each = {n: 1.0 - float(np.mean([wd[n][g][q] for q in qs])) for n in names}
        best = 1.0 - float(np.mean([min(wd[n][g][q] for n in names) for q in qs]))
        unst = None
        if base is not None and base.get(g):
            unst = 1.0 - float(np.mean([base[g][q] for q in qs]))
        out.append(Steerability(g, len(qs), each, best, unst))
    return out


@dataclass(frozen=True)
class SteeringGain:
    """The leaderboard's steering gain: unsteered WD minus steered WD, per group, averaged over groups.

    Attributes:
        gain: mean over groups of (mean unsteered WD - mean steered WD) over the group's questions
            both answered (positive: steering brought the model closer to the group).
        stderr: clustered by question (`opinbench.metrics.clustered`) over the (question, group)
            differences; their mean equals ``gain`` when every group has the same questions.
        groups, pairs: groups averaged and (question, group) differences behind them.
    """

    gain: float
    stderr: float
    groups: int
    pairs: int


def steering_gain(steered: Iterable[ModelAnswer], unsteered: Iterable[ModelAnswer]) -> SteeringGain | None:
    """`SteeringGain` of one steered task against the default model; None without a shared (question, group)."""
    base = {(a.attribute, a.group, a.question_key): a.wd for a in unsteered if np.isfinite(a.wd)}
    diffs: dict[Group, list[tuple[str, float]]] = defaultdict(list)
    for a in steered:
        key = (a.attribute, a.group, a.question_key)
        if a.steered_to == (a.attribute, a.group) and key in base and np.isfinite(a.wd):
            diffs[(a.attribute, a.group)].append((a.question_key, base[key] - a.wd))
    if not diffs:
        return None
    pairs = [p for ps in diffs.values() for p in ps]
    gain = float(np.mean([np.mean([d for _, d in ps]) for ps in diffs.values()]))
    stderr = cluster_mean_stderr([d for _, d in pairs], [q for q, _ in pairs])
    return SteeringGain(gain, stderr, len(diffs), len(pairs))
