"""Per-document values of one side of a regression check, recomputed from logged samples.

A side is an lm-eval output folder of one model (read through `opinbench.runs`)
or a baseline file (`opinbench.regress.baseline`); both become a `RunValues`:
per task its kind, lm-eval task version and ``task_hashes`` entry, and per
document (keyed by the document's ``id``):

* ``question``: the document's ``question_key`` (documents of one question are
  resampled together),
* ``prompt_hash`` / ``target_hash``: lm-eval's hashes of the prompt and target,
* ``data_hash``: a digest of the document without its prompt fields, so that a
  template change (``--allow-prompt-change``) still finds data that differs,
* the values the tests need, recomputed from the logged loglikelihoods or generations by
  the task kind's re-scoring (`opinbench.scoring.kinds`, the live hooks' own functions;
  the logged aggregates are never read): distribution tasks ``wd`` and ``kl``; answer
  tasks ``gold``, ``pred`` (one label per repeat, None = invalid) and ``labels``.

Only opinbench's ``*_wd`` tasks (documents with ``ordinal`` and ``distribution``)
and answer tasks (``*_cot``, ``*_direct``: ``gold_label`` and ``labels``) can be
read; other tasks are left out with a log line. Verdicts of ``opinbench judge`` in
the run folder are read per item by `opinbench.regress.judge_values`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError, DataError
from opinbench.regress.judge_values import JudgeValues, read_judges
from opinbench.runs import Run, find_runs, task_results
from opinbench.scoring.kinds import answers_of
from opinbench.scoring.metric import ANSWER, DISTRIBUTION
from opinbench.scoring.rescore import rescore_rows

log = logging.getLogger("opinbench.regress")

# Document fields that hold the rendered prompt: left out of ``data_hash``.
PROMPT_FIELDS = ("prompt", "system", "description", "steering")


@dataclass
class TaskValues:
    """One task of one side: settings and per-document values (see the module docstring)."""

    task: str
    kind: str
    version: Any = None
    task_hash: str | None = None
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # lm-eval's doc_id -> the document's id, to join judge verdicts (not kept in baselines)
    doc_keys: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class RunValues:
    """One side of a comparison: ``source`` (what was read), ``config`` (lm-eval's run config), tasks
    and the judges' per-item verdicts (`opinbench.regress.judge_values`, by judge kind)."""

    source: str
    config: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, TaskValues] = field(default_factory=dict)
    judges: dict[str, JudgeValues] = field(default_factory=dict)


def data_hash(doc: dict[str, Any]) -> str:
    """sha256 of the document without its prompt fields (canonical JSON), first 16 hex digits."""
    core = {k: v for k, v in doc.items() if k not in PROMPT_FIELDS}
    text = json.dumps(core, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def doc_values(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The values regress tests, from one document's re-scored values (see the module docstring)."""
    if kind == DISTRIBUTION:
        # non-finite loglikelihoods: the task counts the document in ``nonfinite`` and scores no WD
        return {"wd": values.get("wd"), "kl": values.get("kl")}
    item = answers_of(values)  # *_cot: every repeat parsed as the task did; *_direct: the most probable letter
    return {"gold": item["gold"], "pred": item["pred"], "labels": item["labels"]}


def read_task(run: Run, task: str) -> TaskValues | None:
    """One task of a run folder; None (logged) if it is not an opinbench task regress can read.

    Raises:
        DataError: a samples file that is not JSON lines, a document that cannot be scored,
            or one logged twice with different values.
    """
    # The human bootstrap bound does not depend on the model and costs 1000 resamples per
    # document: the model's values only.
    scored = rescore_rows(task, run.rows(task), with_bounds=False, check_repeats=True)
    if scored is None or scored.kind.name not in (DISTRIBUTION, ANSWER):
        log.info("%s: not an opinbench distribution or answer task, left out", task)
        return None
    info = task_results(run, task) or {}
    out = TaskValues(task, scored.kind.name, (info.get("versions") or {}).get(task),
                     (info.get("task_hashes") or {}).get(task))
    for d in scored.ordered():
        out.doc_keys.setdefault(str(d.doc_id), d.key)
        out.docs[d.key] = {
            "question": str(d.doc.get("question_key", d.key)),
            "prompt_hash": d.row.get("prompt_hash"),
            "target_hash": d.row.get("target_hash"),
            "data_hash": data_hash(d.doc),
            **doc_values(scored.kind.name, d.values),
        }
    return out


def read_run(path: str | Path) -> RunValues:
    """A run folder (one model) -> `RunValues`.

    Raises:
        ConfigError: no samples, several models under ``path``, or no task regress can read.
    """
    try:
        runs = find_runs(path)
    except DataError as err:  # a RUN argument without samples is a bad argument here
        raise ConfigError(str(err)) from None
    if len(runs) > 1:
        raise ConfigError(
            f"{path}: holds the runs of {len(runs)} models ({', '.join(str(r.folder) for r in runs)}); "
            "pass the folder of one model"
        )
    run = runs[0]
    out = RunValues(str(path))
    for task in run.tasks:
        tv = read_task(run, task)
        if tv is not None:
            out.tasks[task] = tv
            out.config = out.config or dict((task_results(run, task) or {}).get("config") or {})
    if not out.tasks:
        raise ConfigError(f"{path}: no opinbench distribution (*_wd) or answer (*_cot, *_direct) task in it")
    out.judges = read_judges(run, {t: tv.doc_keys for t, tv in out.tasks.items()})
    return out
