"""Every judge kind, once: what it measures, how its verdicts read, its settings and its code.

Everything that names a judge kind asks here: the ``opinbench judge`` sub-commands
(`opinbench.judging.cli`), `opinbench.judging.api.run_judge` (used by the command and
the leaderboard worker), regression checks of judge verdicts
(`opinbench.regress.judge_values`, ``opinbench regress leaderboard:ID``), the leaderboard's
recomputation of judge scores, and the cost estimate (`opinbench.estimate.cost`). A new
judge kind is its `JudgeKind` subclass (`opinbench.judging.kinds`), its options dataclass
(`opinbench.judging.options`), its printout (`opinbench.judging.printing`) and one entry
in `JUDGES`.

>>> get("moderation").metric.key, get("moderation").lower_is_better
('cot_offensive_rate', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opinbench.errors import ConfigError
from opinbench.judging import printing
from opinbench.judging.kinds import FaithfulnessJudge, JudgeKind, ModerationJudge
from opinbench.judging.options import FaithfulnessOptions, JudgeOptions, ModerationOptions
from opinbench.scoring.judge import COT_FAITHFULNESS, COT_OFFENSIVE_RATE
from opinbench.scoring.metric import Metric


@dataclass(frozen=True)
class JudgeEntry:
    """One judge kind.

    Attributes:
        kind: the sub-command and the results' name (``results_judge-<kind>_<ts>.json``).
        role: ``judge`` / ``moderator``: the provider flag (``--judge``) and the settings
            files' keys naming the default (``judge``, ``offline_judge``).
        metric: the metric object (`opinbench.scoring.judge`: key, display, direction,
            tolerance, test) that regression checks and the leaderboard read (per item 0/1).
        verdict_field: the verdict's field holding that item's 0/1 (``faithful``).
        options: the settings dataclass (flags, YAML keys, checks).
        judge: the `JudgeKind` subclass that prepares, sends and reports.
        help: one line for ``opinbench judge --help``.
        show: prints one run folder's results (`opinbench.judging.printing`).
        show_after: prints what belongs to the whole run, not to one folder (or None).
    """

    kind: str
    role: str
    metric: Metric
    verdict_field: str
    options: type[JudgeOptions]
    judge: Callable[[Any], JudgeKind]
    help: str
    show: Callable[..., None]
    show_after: Callable[..., None] | None = None

    @property
    def lower_is_better(self) -> bool:
        return not self.metric.higher_is_better


JUDGES: dict[str, JudgeEntry] = {
    "faithfulness": JudgeEntry(
        kind="faithfulness",
        role="judge",
        metric=COT_FAITHFULNESS,
        verdict_field="faithful",
        options=FaithfulnessOptions,
        judge=FaithfulnessJudge,
        help="can a judge recover the model's answer from its reasoning alone?",
        show=printing.show_faithfulness,
        show_after=printing.show_control,
    ),
    "moderation": JudgeEntry(
        kind="moderation",
        role="moderator",
        metric=COT_OFFENSIVE_RATE,
        verdict_field="flagged",
        options=ModerationOptions,
        judge=ModerationJudge,
        help="share of reasoning traces a moderator flags, per category",
        show=printing.show_moderation,
    ),
}


def get(kind: str) -> JudgeEntry:
    """The entry of ``kind``.

    Raises:
        ConfigError: no judge of that name (the known ones named).
    """
    if kind not in JUDGES:
        raise ConfigError(f"no judge named {kind!r} (known: {', '.join(sorted(JUDGES))})")
    return JUDGES[kind]


def by_metric(key: str) -> JudgeEntry | None:
    """The judge whose metric's key is ``key``, if any."""
    return next((e for e in JUDGES.values() if e.metric.key == key), None)
