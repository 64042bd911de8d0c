"""Baseline files: what a later `opinbench regress` needs from a run, small enough to commit.

``opinbench regress record RUN_DIR --out FILE`` writes one JSON object (gzip-compressed
when FILE ends in ``.gz``)::

    {"format": "opinbench-regress-baseline", "format_version": 1,
     "source": {"run": ..., "model_name": ..., "git_hash": ..., "lm_eval_version": ..., "date": ...},
     "config": {...lm-eval's run config: model, model_args, limit, seeds...},
     "tasks": {TASK: {"kind": "distribution" | "answer", "version": ..., "task_hash": ...,
                      "columns": [...], "docs": [[...], ...]}},
     "judges": {KIND: {"metric": ..., "settings": {...}, "verdicts": FILE NAME,
                       "tasks": {TASK: [[id, repeat, 0 | 1], ...]}}}}

Per task the documents are rows of ``columns`` (``id``, ``question``,
``prompt_hash``, ``target_hash``, ``data_hash`` and the values of
`opinbench.regress.values`), sorted by id, so a re-recorded baseline diffs line by line
when written uncompressed. ``judges`` (only when the run was judged) keeps each judge's
comparable settings and its per-item verdict values (`opinbench.regress.judge_values`),
sorted by id and repeat; a baseline without it reads as a run without judges, so
format version 1 still holds. ``prompts_digest`` is the sha256 of the sorted
(id, prompt_hash) pairs, shown in reports to tell at a glance whether prompts moved.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.io import atomic_open
from opinbench.regress.judge_values import JudgeValues
from opinbench.regress.values import ANSWER, DISTRIBUTION, RunValues, TaskValues

FORMAT = "opinbench-regress-baseline"
FORMAT_VERSION = 1

_COMMON = ("question", "prompt_hash", "target_hash", "data_hash")
COLUMNS = {
    DISTRIBUTION: ("id", *_COMMON, "wd", "kl"),
    ANSWER: ("id", *_COMMON, "gold", "pred", "labels"),
}

# lm-eval results keys kept as the baseline's provenance.
_SOURCE_KEYS = ("model_name", "git_hash", "lm_eval_version", "date", "chat_template_sha", "system_instruction_sha")


def prompts_digest(task: TaskValues) -> str:
    pairs = sorted((k, str(d.get("prompt_hash"))) for k, d in task.docs.items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def to_json(values: RunValues, source: dict[str, Any] | None = None) -> dict[str, Any]:
    tasks = {}
    for name, t in sorted(values.tasks.items()):
        cols = COLUMNS[t.kind]
        tasks[name] = {
            "kind": t.kind,
            "version": t.version,
            "task_hash": t.task_hash,
            "n_docs": len(t.docs),
            "prompts_digest": prompts_digest(t),
            "columns": list(cols),
            "docs": [[key] + [t.docs[key].get(c) for c in cols[1:]] for key in sorted(t.docs)],
        }
    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": {"run": values.source, **(source or {})},
        "config": values.config,
        "tasks": tasks,
    }
    if values.judges:
        out["judges"] = {
            kind: {
                "metric": j.metric,
                "settings": j.settings,
                "verdicts": j.source,
                "tasks": {
                    task: [[key, r, items[key][r]] for key in sorted(items) for r in sorted(items[key])]
                    for task, items in sorted(j.items.items())
                },
            }
            for kind, j in sorted(values.judges.items())
        }
    return out


def from_json(data: Any, origin: str) -> RunValues:
    """A parsed baseline file -> `RunValues`.

    Raises:
        ConfigError: not a baseline of a format version this code reads.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{origin}: not an opinbench regress baseline (no \"format\": \"{FORMAT}\")")
    if data.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{origin}: baseline format version {data.get('format_version')!r}, this opinbench reads "
            f"{FORMAT_VERSION}; re-record it with `opinbench regress record`"
        )
    out = RunValues(origin, dict(data.get("config") or {}))
    for name, t in data["tasks"].items():
        cols = t["columns"]
        tv = TaskValues(name, t["kind"], t.get("version"), t.get("task_hash"))
        for row in t["docs"]:
            d = dict(zip(cols, row))
            tv.docs[str(d.pop("id"))] = d
        out.tasks[name] = tv
    for kind, j in (data.get("judges") or {}).items():
        jv = JudgeValues(kind, j["metric"], dict(j["settings"]), str(j.get("verdicts", "")))
        for task, rows in j["tasks"].items():
            for key, r, value in rows:
                jv.items.setdefault(task, {}).setdefault(str(key), {})[int(r)] = int(value)
        out.judges[kind] = jv
    return out


def write(path: str | Path, values: RunValues, source: dict[str, Any] | None = None) -> None:
    """Write a baseline atomically; gzip when ``path`` ends in ``.gz`` (mtime 0: the same
    content gives the same bytes)."""
    path = Path(path)
    text = json.dumps(to_json(values, source), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    if path.suffix == ".gz":
        with atomic_open(path, "wb") as fh:
            fh.write(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        with atomic_open(path) as fh:
            fh.write(text)


def read(path: str | Path) -> RunValues:
    """Read a baseline file (gzip or plain JSON).

    Raises:
        ConfigError: unreadable, not JSON, or not a baseline.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read as a baseline: {err}") from None
    return from_json(data, str(path))


def is_baseline_file(path: str | Path) -> bool:
    """A file (not a folder) whose name ends in ``.json`` or ``.json.gz`` and that is not lm-eval's."""
    path = Path(path)
    return path.is_file() and (path.name.endswith(".json") or path.name.endswith(".json.gz")) and not (
        path.name.startswith("results_")
    )


def source_info(results: dict[str, Any]) -> dict[str, Any]:
    """Provenance kept from an lm-eval results file."""
    return {k: results.get(k) for k in _SOURCE_KEYS if results.get(k) is not None}
