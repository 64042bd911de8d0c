"""One plain-language line per distribution task of an lm-eval results file.

lm-eval's table lists ``wd`` beside ``wd_uniform`` and ``wd_human`` without saying
what they mean together; ``opinbench eval`` prints these lines after it, e.g.::

    opinionqa_wd: WD 0.219: worse than answering uniformly (0.171); human bound 0.012
"""

from __future__ import annotations

import math
from typing import Any


def _metric(values: dict[str, Any], name: str) -> float | None:
    value = values.get(f"{name},none", values.get(name))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def distribution_line(task: str, values: dict[str, Any]) -> str | None:
    """The summary of one task's results (``{"wd,none": ..., ...}``), None when it has no WD and uniform bound.

    >>> distribution_line("opinionqa_wd", {"wd,none": 0.219, "wd_uniform,none": 0.171, "wd_human,none": 0.012})
    'opinionqa_wd: WD 0.219: worse than answering uniformly (0.171); human bound 0.012'
    >>> distribution_line("t", {"wd,none": 0.1, "wd_uniform,none": 0.17, "wd_gap_closed,none": 0.45})
    't: WD 0.100: better than answering uniformly (0.170), closing 45% of the gap to the human bound; no human bound (counts unknown)'
    """
    name, wd = "WD", _metric(values, "wd")
    if wd is None:
        name, wd = "sampled WD", _metric(values, "wd_sampled")
    uniform = _metric(values, "wd_uniform")
    if wd is None or uniform is None:
        return None
    human = _metric(values, "wd_human")
    gap = _metric(values, "wd_gap_closed")
    if wd > uniform:
        verdict = f"worse than answering uniformly ({uniform:.3f})"
    elif wd < uniform:
        verdict = f"better than answering uniformly ({uniform:.3f})"
        if gap is not None:
            verdict += f", closing {100 * gap:.0f}% of the gap to the human bound"
    else:
        verdict = f"no better than answering uniformly ({uniform:.3f})"
    bound = f"human bound {human:.3f}" if human is not None else "no human bound (counts unknown)"
    return f"{task}: {name} {wd:.3f}: {verdict}; {bound}"


def distribution_lines(results: dict[str, Any]) -> list[str]:
    """`distribution_line` for every task of a parsed lm-eval results file that has one."""
    out = []
    for task, values in sorted((results.get("results") or {}).items()):
        line = distribution_line(task, values) if isinstance(values, dict) else None
        if line:
            out.append(line)
    return out
