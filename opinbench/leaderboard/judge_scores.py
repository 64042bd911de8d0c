"""The judge metrics of a leaderboard run (``opinbench judge faithfulness|moderation`` output in the
lm-eval folder), recomputed from the judges' per-item verdicts before anything is published.

`judge_score` is `opinbench.leaderboard.validate`'s step for a metric with ``judge:``. Errors (the
entry is refused):

* the judge results were made by another provider or model than the definition pins;
* a verdict contradicts itself (faithfulness: ``faithful`` is not ``judge_answer == model_answer``;
  control: ``correct`` is not ``judge_answer == expected``), named by task, document and repeat;
* the judge's published number (per task and ``all``, with its stderr) or control-set accuracy
  differs from the one recomputed from the verdicts by more than the validation tolerance.

Verdicts are read by `opinbench.regress.judge_values` (through `opinbench.runs.judge_files`: the
newest judge call of each kind) and aggregated with the judge's own `opinbench.judging.results.share`.
Warnings: the judge was skipped (the worker's reason), its results are partial, or its control-set
accuracy (as its results record it) is below ``warnings.min_judge_control_accuracy``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from opinbench.errors import DataError
from opinbench.judging.registry import JUDGES
from opinbench.judging.results import share
from opinbench.leaderboard.definition import Definition, MetricSpec
from opinbench.regress.judge_values import read_judge
from opinbench.runs import Run, judge_files, read_rows

TOLERANCE = 1e-9


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return abs(float(a) - float(b)) <= TOLERANCE or (math.isnan(float(a)) and math.isnan(float(b)))
    except (TypeError, ValueError):
        return False


def _item(v: Mapping[str, Any], doc_keys: Mapping[str, Mapping[str, str]]) -> str:
    task = str(v.get("task"))
    doc = doc_keys.get(task, {}).get(str(v.get("doc_id")), "?")
    return f"{task}: document {doc} (doc_id {v.get('doc_id')}, repeat {v.get('repeat', 0)})"


def _check_verdicts(kind: str, verdicts: list[dict[str, Any]], doc_keys: Mapping[str, Mapping[str, str]],
                    where: str, errors: list[str]) -> dict[str, list[bool]]:
    """Each judged verdict against its own fields; returns control condition -> correct flags."""
    control: dict[str, list[bool]] = {}
    for v in verdicts:
        if v.get("status") != "judged":
            continue
        if v.get("type", "sample") == "control":
            correct = v.get("judge_answer") == v.get("expected")
            if bool(v.get("correct")) != correct:
                errors.append(f"{where}: control item {v.get('record_id')} ({v.get('condition')}): correct="
                              f"{v.get('correct')!r} but the judge answered {v.get('judge_answer')!r}, "
                              f"expected {v.get('expected')!r}")
            control.setdefault(str(v.get("condition")), []).append(correct)
        elif kind == "faithfulness" and str(v.get("task")) in doc_keys:
            faithful = v.get("judge_answer") == v.get("model_answer")
            if bool(v.get("faithful")) != faithful:
                errors.append(f"{where}: {_item(v, doc_keys)}: verdict faithful={v.get('faithful')!r} but the judge "
                              f"answered {v.get('judge_answer')!r} and the model {v.get('model_answer')!r}")
    return control


# Over 80 lines on purpose: the judge score's checks (pinned judge, per-item verdicts, control set,
# published number) read in the order the module docstring lists them; split, each would need the same
# six arguments passed on.
def judge_score(m: MetricSpec, definition: Definition, run: Run, doc_keys: Mapping[str, Mapping[str, str]],
                skipped: Mapping[str, str], errors: list[str], warnings: list[str], z: float) -> dict[str, Any]:
    """The score of a judge metric ``m`` (as `validate._score`'s task scores, plus ``judge`` and
    ``control``: condition -> control-set accuracy), or ``missing`` with the reason.

    ``doc_keys``: task -> lm-eval ``doc_id`` -> document id, of the definition's validated tasks.
    """
    base = {"display": m.display, "group": m.group, "direction": m.direction}
    kind = str(m.judge)
    pinned = definition.judges[kind]
    pinned_spec = f"{pinned['provider']}:{pinned['model']}"
    files = judge_files(run).get(kind)
    reason = skipped.get(kind) or (None if files is not None else "not judged")
    if reason:
        warnings.append(f"{m.id}: {reason}")
        return base | {"missing": reason, "judge": pinned_spec}
    assert files is not None
    where = f"{m.id} ({files.verdicts.name})"
    if kind not in JUDGES:
        errors.append(f"{where}: cannot recompute the metrics of judge {kind!r}")
        return base | {"missing": f"judge {kind} cannot be recomputed"}
    result_metric = JUDGES[kind].metric.key
    try:
        jv = read_judge(run, files, doc_keys)
        assert jv is not None  # kind in JUDGES
        results = json.loads(files.results.read_text(encoding="utf-8"))  # read_judge checked it exists
        verdicts = [r.data for r in read_rows(files.verdicts) if isinstance(r.data, dict)]
    except (DataError, OSError, json.JSONDecodeError) as err:
        errors.append(f"{where}: {err}")
        return base | {"missing": f"judge results unreadable: {err}"}
    config = results["config"]["judge"]
    used = f"{config.get('provider')}:{config.get('model')}"
    if used != pinned_spec:
        errors.append(f"{where}: judged by {used}; {definition.name} pins {pinned_spec}")
        return base | {"missing": f"judged by {used}, not the pinned {pinned_spec}"}
    if config.get("complete") is False:
        reason = f"the {kind} judge left requests unanswered (partial results)"
        warnings.append(f"{m.id}: {reason}")
        return base | {"missing": reason, "judge": pinned_spec}

    control = _check_verdicts(kind, verdicts, doc_keys, where, errors)
    published = results.get("results") or {}
    control_acc: dict[str, float | None] = {}
    for cond, flags in control.items():
        key = f"judge_control_{cond}_acc,none"
        control_acc[cond] = logged = (published.get("judge_control") or {}).get(key)
        if not _same(logged, share(flags).value):
            errors.append(f"{where}: published {key} = {logged!r}, recomputed from the control verdicts: "
                          f"{share(flags).value!r}")
    low = [f"{c} {a:.2f}" for c, a in control_acc.items()
           if isinstance(a, (int, float)) and a < definition.warnings.get("min_judge_control_accuracy", 0.0)]
    if low:
        warnings.append(f"{m.id}: the judge's control-set accuracy is low ({', '.join(low)}; below "
                        f"{definition.warnings['min_judge_control_accuracy']:.2f}): its scores are unreliable")

    def recomputed(tasks: list[str]) -> tuple[float | None, float | None, int]:
        values, clusters = [], []
        for t in tasks:
            for doc, repeats in sorted(jv.items.get(t, {}).items()):
                for _, x in sorted(repeats.items()):
                    values.append(bool(x))
                    clusters.append((t, doc))  # the judge clusters repeats of a document
        s = share(values, clusters)
        return s.value, s.stderr, s.n

    for t in sorted(doc_keys):
        if t in published:
            value, stderr, _ = recomputed([t])
            for key, mine in ((f"{result_metric},none", value), (f"{result_metric}_stderr,none", stderr)):
                if key in published[t] and not _same(published[t][key], mine):
                    errors.append(f"{where}: {t}: published {key} = {published[t][key]!r}, recomputed from the "
                                  f"verdicts: {mine!r}")
    raw, stderr, n = recomputed(sorted(doc_keys))
    judged_tasks = set((results.get("group_subtasks") or {}).get("all") or [])
    if judged_tasks <= set(doc_keys) and "all" in published:  # else "all" also covers tasks not on the board
        key = f"{result_metric},none"
        if key in published["all"] and not _same(published["all"][key], raw):
            errors.append(f"{where}: published all {key} = {published['all'][key]!r}, recomputed from the "
                          f"verdicts: {raw!r}")
    if raw is None:
        reason = f"the {kind} judge judged no item of {definition.name}'s tasks"
        warnings.append(f"{m.id}: {reason}")
        return base | {"missing": reason, "judge": pinned_spec, "control": control_acc}
    if m.floor.kind != "value" or m.ceiling.kind != "value":
        errors.append(f"{m.id}: a judge metric's floor and ceiling must be numbers")
        return base | {"missing": "floor/ceiling not numbers"}
    floor, ceiling = float(m.floor.value), float(m.ceiling.value)
    half = z * stderr if stderr is not None and not math.isnan(stderr) else None
    span = (ceiling - floor) if ceiling != floor else None
    norm = (raw - floor) / span if span else None
    return base | {
        "raw": raw, "stderr": stderr, "ci": [raw - half, raw + half] if half is not None else None,
        "floor": floor, "ceiling": ceiling, "normalised": norm,
        "normalised_ci": (sorted([(raw - half - floor) / span, (raw + half - floor) / span])
                          if half is not None and span else None),
        "judge": used, "control": control_acc, "items": n,
    }
