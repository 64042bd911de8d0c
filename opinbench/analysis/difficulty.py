"""WD by question difficulty: the model's answers split by the entropy stratum of the group's answers.

The strata (consensus, mixed, divided) and their cut points, fixed per data set, are
`opinbench.metrics.strata`'s, so a stratum here is the one the task's ``wd|entropy=...`` key
names for the same document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer
from opinbench.metrics import strata
from opinbench.metrics.distribution import normalised_entropy


@dataclass(frozen=True)
class StratumWD:
    stratum: str
    wd: float  # mean WD over the stratum's (question, group) answers
    answers: int
    questions: int


def answer_stratum(a: ModelAnswer, cuts: tuple[float, float]) -> str | None:
    return strata.stratum(float(normalised_entropy(a.human, a.ordinal)[0]), cuts)


def wd_by_stratum(answers: Iterable[ModelAnswer], dataset: str) -> list[StratumWD]:
    """Mean WD per stratum, in the order consensus, mixed, divided (strata without an answer left out);
    empty where the data set has no shipped cut points."""
    cuts = strata.cuts_for(dataset)
    if cuts is None:
        return []
    wd: dict[str, list[float]] = defaultdict(list)
    questions: dict[str, set[str]] = defaultdict(set)
    for a in answers:
        level = answer_stratum(a, cuts)
        if level is not None and np.isfinite(a.wd):
            wd[level].append(a.wd)
            questions[level].add(a.question_key)
    return [StratumWD(s, float(np.mean(wd[s])), len(wd[s]), len(questions[s])) for s in strata.STRATA if wd[s]]
