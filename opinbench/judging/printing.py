"""What ``opinbench judge`` prints: a run's results per run folder, and the run's totals.

Kept apart from `opinbench.judging.api` so that a caller of the API (the leaderboard
worker) gets the outcome without a printout, and the command prints it (`show_outcome`)
in the order it always did: the provider, each run folder's table, the control set, the
request counts, the files written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opinbench.scoring.judge import COT_FAITHFULNESS, COT_OFFENSIVE_RATE
from opinbench.scoring.metric import Metric


def fmt(x: Any) -> str:
    """A metric for a table: three decimals, or ``n/a``.

    >>> fmt(0.5), fmt(float("nan")), fmt(None)
    ('0.500', '  n/a', '  n/a')
    """
    return (
        "  n/a"
        if not isinstance(x, (int, float)) or (isinstance(x, float) and math.isnan(x))
        else f"{x:.3f}"
    )


def show_outcome(outcome: Any) -> None:
    """Print a `JudgeOutcome` (`opinbench.judging.api`)."""
    entry, judge = outcome.entry, outcome.judge
    fallback = outcome.judge_config.get("offline_fallback")
    print(outcome.headline + (f"  [offline fallback: {fallback}]" if fallback else ""))
    for run_dir, (report, tasks) in outcome.reports.items():
        entry.show(judge, run_dir, report, tasks)
    if entry.show_after is not None:
        entry.show_after(judge)
    print(outcome.stats.summary())
    for r, v in outcome.written:
        print(f"wrote {r}\n      {v}")


def _task_rows(report: Any, tasks: list[str], metric: Metric) -> Iterator[tuple[str, dict[str, Any], str, str, int]]:
    """Each task, then ``all``: its results, ``metric``'s value and 95% CI formatted, and its n."""
    for t in tasks + ["all"]:
        r = report.results[t]
        ci = f"[{fmt(r[f'{metric.key}_ci_low,none'])}, {fmt(r[f'{metric.key}_ci_high,none'])}]"
        yield t, r, fmt(r[f"{metric.key},none"]), ci, report.n_samples[t]["effective"]


def show_faithfulness(judge: Any, run_dir: Path, report: Any, tasks: list[str]) -> None:
    results, details = report.results, report.details
    print(f"{run_dir}:")
    print(f"  {'task':32s} {'faithful':>8s} {'95% CI':>15s} {'n':>5s} {'invalid':>7s} {'excluded':>8s}")
    for t, r, value, ci, n in _task_rows(report, tasks, COT_FAITHFULNESS):
        d = details["tasks"].get(t) if t != "all" else details["all"]
        excluded = sum(d["excluded"].values())
        print(f"  {t:32s} {value:>8s} {ci:>15s} {n:5d} {fmt(r['cot_judge_invalid_rate,none']):>7s} {excluded:8d}")
    _show_confusion(details["all"]["confusion_model_vs_judge"])
    share_neutral = results["all"]["cot_unfaithful_neutral_share,none"]
    print(f"  unfaithful traces judged neutral: {fmt(share_neutral)}")
    reasons = details["all"]["excluded"]
    if reasons:
        print("  excluded (not sent to the judge):")
        for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:10]:
            print(f"    {n:5d} x {why}")
        if len(reasons) > 10:
            print(f"    ... {len(reasons) - 10} more reasons in the results' details")


def _show_confusion(conf: dict[str, dict[str, int]]) -> None:
    if not conf:
        return
    cols = sorted({j for row in conf.values() for j in row})
    print("  confusion (rows: model answer, columns: judge answer):")
    print("    " + " " * 14 + "".join(f"{c[:10]:>11s}" for c in cols))
    for m, row in conf.items():
        print(f"    {str(m)[:14]:14s}" + "".join(f"{row.get(c, 0):11d}" for c in cols))


def show_control(judge: Any) -> None:
    """The faithfulness judge's control set: accuracy per condition."""
    if not judge.control:
        return
    control_m = judge.control_m
    print(
        "judge control set (same judge, known answers; its requests are spread among the "
        "task items, so a budget is shared by both):"
    )
    for cond in ("explanation", "gold_framed", "wrong_framed"):
        d = judge.control_d.get(cond)
        if not d:
            continue
        # acc over the judged items: k/n says how many of the condition's items that is
        counts = d["counts"]
        judged = counts.get("judged", 0)
        others = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()) if st != "judged")
        extra = f"  either {fmt(control_m.get(f'judge_control_{cond}_either_share,none'))}"
        if cond == "wrong_framed":
            gold = control_m.get("judge_control_wrong_framed_gold_share,none")
            extra += f"  back-to-gold {fmt(gold)}"
        print(
            f"  {cond:13s} acc {fmt(control_m.get(f'judge_control_{cond}_acc,none'))} "
            f"({judged}/{d['items']} judged{'; ' + others if others else ''})"
            f"  invalid {fmt(control_m.get(f'judge_control_{cond}_invalid_rate,none'))}"
            f"{extra}"
        )


def show_moderation(judge: Any, run_dir: Path, report: Any, tasks: list[str]) -> None:
    details = report.details
    show_flagged = judge.options.show_flagged
    print(f"{run_dir}:")
    for t, r, value, ci, n in _task_rows(report, tasks, COT_OFFENSIVE_RATE):
        print(f"  {t:32s} flagged {value} {ci}  n={n}  invalid {fmt(r['cot_moderation_invalid_rate,none'])}")
    cats = {c: n for c, n in details["all"]["category_counts"].items() if n}
    if cats:
        print(
            "  flagged per category: "
            + ", ".join(f"{c} {n}" for c, n in sorted(cats.items(), key=lambda x: -x[1]))
        )
    flagged = details["all"]["flagged"]
    for item in flagged[:show_flagged]:
        text = " ".join(str(item.get("reasoning", "")).split())
        print(
            f"  FLAGGED {item['task']}/{item['doc_id']}/{item['repeat']} {item['categories']}: "
            f"{text[:160]}"
        )
    if len(flagged) > show_flagged:
        print(f"  ... {len(flagged) - show_flagged} more flagged items in the verdict file")
