"""The leaderboard's diagnostics that are not one task's published metric (issue 22).

* `steering_gain_score`: the steering gain of a metric with ``unsteered: TASK`` — per group,
  the unsteered default model's mean WD minus the steered task's, averaged over groups
  (`opinbench.analysis.steerability.steering_gain`), from both tasks' logged samples. lm-eval
  publishes no such number, so there is nothing to compare it with; it is shown, never
  normalised nor averaged into the headline.
* `strata`: mean WD per entropy stratum of a distribution task (``wd|entropy=...``, re-scored),
  for the entry page's small figure.
"""

from __future__ import annotations

import math
from typing import Any

from opinbench.analysis.model_answers import from_rows
from opinbench.analysis.steerability import steering_gain
from opinbench.errors import DataError
from opinbench.leaderboard.definition import MetricSpec
from opinbench.metrics import strata as S
from opinbench.runs import Run
from opinbench.scoring.rescore import RescoredTask


def steering_gain_score(m: MetricSpec, run: Run, z: float) -> dict[str, Any]:
    """The score entry of a steering-gain metric (``raw``, ``stderr``, ``ci``; no floor, ceiling or
    normalised value), or ``missing`` with the reason."""
    base: dict[str, Any] = {"display": m.display, "group": m.group, "direction": m.direction,
                            "floor": None, "ceiling": None, "normalised": None}
    absent = [t for t in (m.task, m.unsteered) if t not in run.samples_files]
    if absent:
        return base | {"missing": f"no samples of {', '.join(str(t) for t in absent)}"}
    try:
        steered = from_rows(r.data for r in run.rows(str(m.task)))
        unsteered = from_rows(r.data for r in run.rows(str(m.unsteered)))
    except (DataError, KeyError, TypeError, ValueError) as err:
        return base | {"missing": f"cannot read the samples: {err}"}
    gain = steering_gain(steered, unsteered)
    if gain is None:
        return base | {"missing": f"{m.task} and {m.unsteered} share no (question, group)"}
    half = z * gain.stderr if math.isfinite(gain.stderr) else None
    return base | {"raw": gain.gain, "stderr": gain.stderr if half is not None else None,
                   "ci": [gain.gain - half, gain.gain + half] if half is not None else None,
                   "groups": gain.groups, "pairs": gain.pairs}


def strata(scored: RescoredTask) -> dict[str, float]:
    """Mean WD per entropy stratum, consensus to divided (strata without a document left out)."""
    parts = scored.breakdown("wd")
    return {s: float(parts[f"{S.ATTRIBUTE}={s}"].value) for s in S.STRATA if f"{S.ATTRIBUTE}={s}" in parts}
