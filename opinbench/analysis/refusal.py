"""Refusal mass: the probability the model put on the non-substantive options ("Refused",
"Not sure", the options after the ordinal ones), per group, beside the share of the group's
respondents who gave such an answer (``n_nonsubstantive / (n + n_nonsubstantive)``).

Both are means over the same questions: those where the human share is known and the
question offers a non-substantive option at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import Group, ModelAnswer



@dataclass(frozen=True)
class Refusal:
    group: Group
    questions: int
    model: float
    human: float


def refusal_by_group(answers: Iterable[ModelAnswer]) -> list[Refusal]:
    """Per group in first-seen order; groups without a usable question are left out."""
    model: dict[Group, list[float]] = defaultdict(list)
    human: dict[Group, list[float]] = defaultdict(list)
    for a in answers:
        share = a.human_nonsubstantive_share
        if share is None or len(a.options) == len(a.ordinal):
            continue
        g = (a.attribute, a.group)
        model[g].append(a.refusal_mass)
        human[g].append(share)
    return [Refusal(g, len(model[g]), float(np.mean(model[g])), float(np.mean(human[g]))) for g in model]
