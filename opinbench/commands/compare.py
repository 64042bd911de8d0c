"""`opinbench compare RUN_A RUN_B`: paired significance tests between two lm-eval runs.

Each RUN is an lm-eval output written with ``--log_samples``: a
``samples_<task>_<date>.jsonl`` file, or a folder searched for them (the newest
file per task; a folder holding the same task from several models is refused:
name the model's folder). Only opinbench's answer tasks (``*_cot``,
``*_direct``) can be compared: their documents carry the gold answer.

Answers are recomputed from what was saved, never taken from the logged
metrics, by the answer kind's re-scoring (`opinbench.scoring.rescore`, which
``regress`` and the leaderboard share): a CoT generation is parsed with
`opinbench.answers.extract_doc_answer` (the parse the task scored), a direct
document's answer is its most probable letter. Documents are matched by their ``id``.

Per shared task:

* **McNemar's exact test** on per-document correctness (`mcnemar_exact`). With
  repeated samples a document's answer is its self-consistency answer: the most
  frequent valid answer over the repeats (ties: the first one given; invalid only
  when every repeat is invalid).
* **Welch's t-test over repeats** of accuracy and macro-F1, when both runs have
  at least two repeats per document.
* **Welch's t-test over individuals** (Wahl-o-Mat, smartvote, ANES) of the
  per-individual macro-F1, overall and per ideology group with a Bonferroni
  correction across the groups.

``--tasks vk_cot:vk_direct`` pairs two tasks over the same documents, e.g. a
reasoning method against its direct (no reasoning) baseline, from one run or two.

A shared task that is not an answer task (a ``*_wd`` distribution run in the same
folder, as ``opinbench eval`` writes them) is skipped and named. When a folder holds
several samples files of one task, the newest is taken (`opinbench.runs`) and the
output names it with the number of older ones ignored, so that a throwaway
``--limit 5`` run is never picked silently.

Runs that share no task, or a task but no document, are an error; documents in
only one run are left out and counted; the same document with two different gold
answers (different data or settings) is an error.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opinbench.errors import ConfigError, DataError
from opinbench.metrics import classification as C
from opinbench.metrics.answer_tasks import individual_scores, self_consistency
from opinbench.metrics.significance import bonferroni, mcnemar_exact, welch_t
from opinbench.runs import older_samples_by_task, read_rows, samples_by_task
from opinbench.scoring.kinds import answers_of, kind_of
from opinbench.scoring.metric import ANSWER
from opinbench.scoring.rescore import rescore_rows

log = logging.getLogger("opinbench.compare")

# --------------------------------------------------------------------------- reading runs


@dataclass
class TaskRun:
    """The documents of one task in one run: id -> document, and id -> its answer item
    (`opinbench.metrics.answer_tasks.item`: gold label, predicted label per repeat, labels)."""

    task: str
    path: Path
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def repeats(self) -> int:
        counts = {len(it["pred"]) for it in self.items.values()}
        return max(counts) if counts else 0


def find_runs(run: str | Path) -> dict[str, Path]:
    """``{task: samples file}`` of one run (a samples file or a folder), by `opinbench.runs.samples_by_task`.

    Raises:
        ConfigError: nothing found, or one task from several folders (models).
    """
    try:
        return samples_by_task(run)
    except DataError as err:  # a RUN argument without samples is a bad argument here
        raise ConfigError(str(err)) from None


def why_not_comparable(path: Path) -> str | None:
    """Why the task of a samples file cannot be compared (its first document is not an
    answer-task document, `opinbench.scoring.kinds`), or None when it can."""
    for row in read_rows(path):
        data = row.data if isinstance(row.data, dict) else {}
        kind = kind_of(data.get("doc"), data)
        if kind is not None and kind.name == ANSWER:
            return None
        if kind is not None or (isinstance(data.get("doc"), dict) and "distribution" in data["doc"]):
            name = kind.name if kind is not None else "distribution"
            return f"a {name} task (no gold answer per document); compare reads *_cot and *_direct runs"
        return ("not an opinbench answer-task document (it needs gold_label, labels, options and letters); "
                "compare reads *_cot and *_direct runs")
    return "no document in its samples file"


def read_task(task: str, path: Path) -> TaskRun:
    """One samples file -> `TaskRun`, answers re-scored from the saved outputs (`opinbench.scoring.rescore`).

    Raises:
        DataError: the file is not JSON lines or its documents are not answer-task documents.
    """
    why = why_not_comparable(path)
    if why is not None:
        raise DataError(why, file=path)
    scored = rescore_rows(task, read_rows(path))
    run = TaskRun(task, path)
    for d in scored.ordered() if scored is not None else []:
        run.docs[d.key] = d.doc
        run.items[d.key] = answers_of(d.values)
    return run


# --------------------------------------------------------------------------- comparing


def _repeat_scores(run: TaskRun, keys: Sequence[str]) -> dict[str, np.ndarray]:
    items = [run.items[k] for k in keys]
    g = [it["gold"] for it in items]
    r = len(items[0]["pred"])
    labels = items[0]["labels"]
    gc, _ = C.encode(g, [None] * len(g), labels)
    _, pc = C.encode([x for x in g for _ in range(r)], [p for it in items for p in it["pred"]], labels)
    s = C.scores(C.repeat_confusions(gc, pc.reshape(len(items), r), len(labels)))
    return {"acc": s["accuracy"], "macro_f1": s["macro_f1"]}


def _individual_f1(run: TaskRun, keys: Sequence[str]) -> dict[str, float]:
    return individual_scores([run.items[k] for k in keys])


def compare_task(a: TaskRun, b: TaskRun) -> dict[str, Any]:
    """All tests for one task; see the module docstring.

    Raises:
        ConfigError: no shared document, or a shared document with different gold answers.
    """
    shared = [k for k in a.docs if k in b.docs]
    if not shared:
        raise ConfigError(
            f"task {a.task}{'' if a.task == b.task else ':' + b.task}: the runs share no document (A: {len(a.docs)}, B: {len(b.docs)} documents); "
            "were they run on the same data, split and selection?"
        )
    for k in shared:
        if a.docs[k]["gold_label"] != b.docs[k]["gold_label"] or a.docs[k]["options"] != b.docs[k]["options"]:
            raise ConfigError(
                f"task {a.task}: document {k} has gold {a.docs[k]['answer']!r} in A but {b.docs[k]['answer']!r} "
                "in B (or different options): the runs used different data"
            )
    out: dict[str, Any] = {
        "task": a.task if a.task == b.task else f"{a.task}:{b.task}",
        "files": [str(a.path), str(b.path)],
        "n_shared": len(shared),
        "only_a": len(a.docs) - len(shared),
        "only_b": len(b.docs) - len(shared),
        "repeats": [a.repeats, b.repeats],
    }

    def correct(run: TaskRun, k: str) -> int:
        pred = run.items[k]["pred"]
        ans = self_consistency(pred) if run.repeats > 1 else pred[0]
        return int(ans is not None and ans == run.items[k]["gold"])

    mc = mcnemar_exact([correct(a, k) for k in shared], [correct(b, k) for k in shared])
    out["mcnemar"] = mc.to_json() | {"on": "self-consistency answer" if max(a.repeats, b.repeats) > 1 else "answer"}
    ra, rb = _repeat_scores(a, shared), _repeat_scores(b, shared)
    out["mean"] = {m: [float(np.nanmean(ra[m])), float(np.nanmean(rb[m]))] for m in ra}
    if a.repeats >= 2 and b.repeats >= 2:
        out["welch_repeats"] = {m: welch_t(ra[m], rb[m]).to_json() for m in ra}
    if all(a.docs[k].get("individual") is not None for k in shared):
        fa, fb = _individual_f1(a, shared), _individual_f1(b, shared)
        inds = sorted(fa)
        groups: dict[str, list[str]] = defaultdict(list)
        group_of = {str(a.docs[k]["individual"]): a.docs[k].get("subject_group") for k in shared}
        for ind in inds:
            if group_of.get(ind):
                groups[str(group_of[ind])].append(ind)
        per_group = {g: welch_t([fa[i] for i in ids], [fb[i] for i in ids]) for g, ids in sorted(groups.items())}
        adjusted = bonferroni([w.pvalue for w in per_group.values()])
        out["welch_individuals"] = {
            "metric": "macro_f1 per individual",
            "n_individuals": len(inds),
            "all": welch_t([fa[i] for i in inds], [fb[i] for i in inds]).to_json(),
            "by_group": {
                g: w.to_json() | {"pvalue_bonferroni": None if np.isnan(p) else p}
                for (g, w), p in zip(per_group.items(), adjusted)
            },
        }
    return out


def compare_runs(run_a: str | Path, run_b: str | Path, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Compare every task the two runs share, or the ``tasks`` given.

    An entry of ``tasks`` is a task both runs have, or ``TASK_A:TASK_B`` to pair
    two tasks over the same documents, e.g. ``vk_cot:vk_direct`` (reasoning against
    its no-reasoning baseline; RUN_A and RUN_B may then be the same run).

    Raises:
        ConfigError: the runs share no task, or a task asked for is missing.
    """
    files_a, files_b = find_runs(run_a), find_runs(run_b)
    pairs = [(t, t) for t in sorted(set(files_a) & set(files_b))]
    skipped: list[dict[str, str]] = []
    if not tasks:
        kept = []
        for ta, tb in pairs:
            why = why_not_comparable(files_a[ta]) or why_not_comparable(files_b[tb])
            if why:
                skipped.append({"task": ta, "why": why})
            else:
                kept.append((ta, tb))
        if kept:
            pairs = kept
        else:  # nothing comparable: reading them says why, file and line
            skipped = []
    if tasks:
        pairs = [tuple(t.split(":", 1)) if ":" in t else (t, t) for t in tasks]  # type: ignore[misc]
        missing = [f"{ta} (A)" for ta, _ in pairs if ta not in files_a]
        missing += [f"{tb} (B)" for _, tb in pairs if tb not in files_b]
        if missing:
            raise ConfigError(
                f"task(s) {', '.join(missing)} not found; A has {', '.join(sorted(files_a))}; "
                f"B has {', '.join(sorted(files_b))}"
            )
    if not pairs:
        raise ConfigError(
            f"the runs share no task: A ({run_a}) has {', '.join(sorted(files_a))}; "
            f"B ({run_b}) has {', '.join(sorted(files_b))}; pair two tasks with --tasks TASK_A:TASK_B"
        )
    results = [compare_task(read_task(ta, files_a[ta]), read_task(tb, files_b[tb])) for ta, tb in pairs]
    older_a, older_b = older_samples_by_task(run_a), older_samples_by_task(run_b)
    for t, (ta, tb) in zip(results, pairs):
        t["files"] = {
            "a": files_a[ta].name, "b": files_b[tb].name,
            "older_ignored_a": len(older_a.get(ta, ())), "older_ignored_b": len(older_b.get(tb, ())),
        }
    return {"run_a": str(run_a), "run_b": str(run_b), "tasks": results, "skipped": skipped}


# --------------------------------------------------------------------------- output


def _p(p: Any) -> str:
    return "  n/a" if p is None or (isinstance(p, float) and np.isnan(p)) else f"{p:.4g}"


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"


def render(report: dict[str, Any]) -> str:
    lines = [f"A: {report['run_a']}", f"B: {report['run_b']}"]
    for s in report.get("skipped") or []:
        lines.append(f"skipped {s['task']}: {s['why']}")
    for t in report["tasks"]:
        lines.append("")
        files = t.get("files") or {}
        for side in ("a", "b"):
            n = files.get(f"older_ignored_{side}", 0)
            if n:
                lines.append(f"{t['task']} ({side.upper()}): took {files[side]}, the newest; "
                             f"{n} older samples file{'s' if n > 1 else ''} of this task ignored")
        lines.append(
            f"{t['task']}: {t['n_shared']} shared documents"
            + (f" ({t['only_a']} only in A, {t['only_b']} only in B, left out)" if t["only_a"] or t["only_b"] else "")
            + f"; repeats A={t['repeats'][0]} B={t['repeats'][1]}"
        )
        for m, (va, vb) in t["mean"].items():
            lines.append(f"  {m:<10s} A {_f(va)}  B {_f(vb)}  A-B {va - vb:+.4f}")
        mc = t["mcnemar"]
        lines.append(
            f"  McNemar exact ({mc['on']}): A right/B wrong {mc['b']}, "
            f"A wrong/B right {mc['c']}, p = {_p(mc['pvalue'])}"
        )
        for m, w in (t.get("welch_repeats") or {}).items():
            lines.append(
                f"  Welch over repeats, {m}: t = {_p(w['statistic'])}, df = {_p(w['df'])}, p = {_p(w['pvalue'])}"
            )
        wi = t.get("welch_individuals")
        if wi:
            w = wi["all"]
            lines.append(
                f"  Welch over {wi['n_individuals']} individuals, macro-F1: A {_f(w['mean_a'])} B {_f(w['mean_b'])}, "
                f"p = {_p(w['pvalue'])}"
            )
            m = sum(1 for g in wi["by_group"].values() if g["pvalue"] is not None)
            for g, w in wi["by_group"].items():
                lines.append(
                    f"    {g:<8s} n={w['n_a']:<5d} A {_f(w['mean_a'])} B {_f(w['mean_b'])} "
                    f"p = {_p(w['pvalue'])}, Bonferroni (m={m}) p = {_p(w['pvalue_bonferroni'])}"
                )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    report = compare_runs(args.run_a, args.run_b, tasks)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", help="lm-eval output (samples_*.jsonl file or folder) of system A")
    p.add_argument("run_b", help="lm-eval output of system B (same tasks and documents)")
    p.add_argument(
        "--tasks",
        help="comma-separated tasks to compare (default: every task both runs have); "
        "TASK_A:TASK_B pairs two tasks on the same documents, e.g. vk_cot:vk_direct",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)
