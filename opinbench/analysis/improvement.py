"""Per-group relative improvement of one run over another (SubPOP's per-group figure):
``(WD_base - WD_tuned) / WD_base`` of the mean WD per group, over the questions both runs
answered for the group. Positive: the tuned model is closer to the group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer

Group = tuple[str, str]


@dataclass(frozen=True)
class Improvement:
    group: Group
    questions: int
    base_wd: float
    tuned_wd: float

    @property
    def relative(self) -> float:
        return (self.base_wd - self.tuned_wd) / self.base_wd if self.base_wd > 0 else float("nan")


def relative_improvement(base: Iterable[ModelAnswer], tuned: Iterable[ModelAnswer]) -> list[Improvement]:
    """Per group (in the base run's order) over the (question, group) pairs both runs scored."""
    def table(answers):
        out: dict[Group, dict[str, float]] = {}
        for a in answers:
            if np.isfinite(a.wd):
                out.setdefault((a.attribute, a.group), {})[a.question_key] = a.wd
        return out

    b, t = table(base), table(tuned)
    out = []
    for g, wds in b.items():
        shared = sorted(set(wds) & set(t.get(g, {})))
        if shared:
            out.append(Improvement(g, len(shared), float(np.mean([wds[q] for q in shared])),
                                   float(np.mean([t[g][q] for q in shared]))))
    return out
