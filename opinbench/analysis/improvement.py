"""Per-group relative improvement of one run over another, as SubPOP defines it (Suh et al. 2025,
Table 2 and the text on Figure 3): the share of the gap between zero-shot prompting and the
group's lower bound that fine-tuning closes,
``(WD_zero-shot - WD_tuned) / (WD_zero-shot - lower bound)``, the lower bound being the group's
human bootstrap WD (`opinbench.metrics.distribution_tasks.doc_bounds`, ``wd_human``): what a
second sample of the same people would score. Means per group over the questions both runs
answered for it. Positive: the tuned model closes part of the gap; 1: all of it.

Table 2, Age 18-29: lower bound 0.023, zero-shot 0.185, fine-tuned 0.096 -> 54.9 %
(``(base - tuned) / base``, the ratio used before, gives 48.1 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer
from opinbench.metrics import distribution as M

Group = tuple[str, str]


@dataclass(frozen=True)
class Improvement:
    group: Group
    questions: int
    base_wd: float
    tuned_wd: float
    lower_bound: float = float("nan")

    @property
    def relative(self) -> float:
        """SubPOP's relative improvement (module docstring); NaN without a gap to close.

        >>> round(Improvement(("AGE", "18-29"), 1, 0.185, 0.096, 0.023).relative, 3)
        0.549
        """
        return M.relative_improvement(self.tuned_wd, self.base_wd, self.lower_bound)


def relative_improvement(base: Iterable[ModelAnswer], tuned: Iterable[ModelAnswer]) -> list[Improvement]:
    """Per group (in the base run's order) over the (question, group) pairs both runs scored;
    the lower bound is the mean human bootstrap WD of the base run's answers on those pairs."""
    def table(answers):
        out: dict[Group, dict[str, ModelAnswer]] = {}
        for a in answers:
            if np.isfinite(a.wd):
                out.setdefault((a.attribute, a.group), {})[a.question_key] = a
        return out

    b, t = table(base), table(tuned)
    out = []
    for g, answers in b.items():
        shared = sorted(set(answers) & set(t.get(g, {})))
        if shared:
            lower = [answers[q].bounds()[1] for q in shared]
            known = [x for x in lower if x is not None]
            out.append(Improvement(g, len(shared), float(np.mean([answers[q].wd for q in shared])),
                                   float(np.mean([t[g][q].wd for q in shared])),
                                   float(np.mean(known)) if len(known) == len(shared) else float("nan")))
    return out
