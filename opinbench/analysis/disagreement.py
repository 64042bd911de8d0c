"""Intergroup disagreement (SubPOP, Suh et al. 2025, Figure 13).

* `human_matrix`: ``M[i][j]`` = mean over the questions both groups answered of
  WD(human_i, human_j): how far apart the groups themselves are (symmetric, 0 diagonal).
* `steered_matrix`: ``M[i][j]`` = mean over questions of WD(human_i, model steered to j),
  from one steered run (each document carries the model's distribution when steered to
  its group, and that group's human distribution): the diagonal is the usual steered
  WD, a row shows whether steering to *another* group moves the model away from group i.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import Group, ModelAnswer
from opinbench.metrics import distribution as M



@dataclass(frozen=True)
class Matrix:
    """``values[i][j]`` between ``groups[i]`` (rows) and ``groups[j]`` (columns); NaN where no question is shared."""

    groups: list[Group]
    values: np.ndarray


def _by_question(answers: Iterable[ModelAnswer]) -> dict[str, dict[Group, ModelAnswer]]:
    out: dict[str, dict[Group, ModelAnswer]] = defaultdict(dict)
    for a in answers:
        out[a.question_key][(a.attribute, a.group)] = a
    return out


def _matrix(answers: list[ModelAnswer], pair_wd) -> Matrix:
    groups = list(dict.fromkeys((a.attribute, a.group) for a in answers))
    index = {g: i for i, g in enumerate(groups)}
    sums = np.zeros((len(groups), len(groups)))
    counts = np.zeros((len(groups), len(groups)))
    for by_group in _by_question(answers).values():
        for gi, ai in by_group.items():
            for gj, aj in by_group.items():
                wd = pair_wd(ai, aj)
                if np.isfinite(wd):
                    sums[index[gi], index[gj]] += wd
                    counts[index[gi], index[gj]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return Matrix(groups, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))


def human_matrix(answers: Iterable[ModelAnswer]) -> Matrix:
    """Mean WD between the human distributions of every two groups."""
    return _matrix(list(answers), lambda a, b: float(M.wasserstein(a.human, b.human, a.ordinal)[0]))


def steered_matrix(answers: Iterable[ModelAnswer]) -> Matrix:
    """Mean WD between group i's humans (rows) and the model steered to group j (columns).

    Only answers whose model was steered to the group they carry are used.
    """
    steered = [a for a in answers if a.steered_to == (a.attribute, a.group)]
    return _matrix(steered, lambda a, b: float(M.wasserstein(a.human, b.model_ordinal, a.ordinal)[0]))
