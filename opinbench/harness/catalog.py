"""opinbench's tasks as lm-eval resolves them from ``tasks_yaml/``: names, groups, settings.

Derived from the YAMLs (through lm-eval's own `TaskManager`, so ``include:`` and
``!function`` resolve as in a run) and the data registry; nothing here is a
hand-kept list. ``opinbench tasks`` prints it, ``opinbench eval`` checks names
and settings against it before lm-eval loads a model.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from opinbench.paths import tasks_dir

# The module of a task's process_results says what kind of task it is.
_KIND_BY_MODULE = {
    "distribution": "distribution (letter probabilities)",
    "default_model": "distribution, default model (one document per question)",
    "sampled": "distribution (sampled generations)",
    "cot": "reasoning (generated answer)",
    "direct": "direct answer (letter probabilities)",
}


@dataclass(frozen=True)
class TaskInfo:
    name: str
    data: str | None
    kind: str
    description: str
    hook: Callable[..., Any] | None = field(repr=False, default=None)
    metadata: dict[str, Any] = field(repr=False, default_factory=dict)


def _description(path: Path) -> str:
    """The first sentence of the YAML's leading comment block."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    # A sentence ends at . ? or ! before a space, outside parentheses, and not after a lone
    # capital (an option letter: "(A. Supports B. Opposes)" cut vk_cot's at "(A.").
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        lone_letter = ch == "." and i >= 1 and text[i - 1].isupper() and (i < 2 or not text[i - 2].isalpha())
        if ch in ".?!" and depth == 0 and not lone_letter and text[i + 1:i + 2] in (" ", ""):
            return text[: i + 1]
    return text


@lru_cache(maxsize=1)
def _manager() -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False)


@lru_cache(maxsize=1)
def tasks() -> dict[str, TaskInfo]:
    """Every opinbench task, by name."""
    tm = _manager()
    out = {}
    for name in tm.all_subtasks:
        entry = tm.task_index[name]
        cfg = tm._factory._load_full_config(entry, None)  # what lm-eval builds the task from
        meta = dict(cfg.get("metadata") or {})
        meta.pop("config_source", None)
        scorer = cfg.get("process_results")
        module = getattr(scorer, "__module__", "").rsplit(".", 1)[-1]
        out[name] = TaskInfo(
            name=name,
            data=meta.get("data"),
            kind=_KIND_BY_MODULE.get(module, cfg.get("output_type", "?")),
            description=_description(Path(entry.yaml_path)) if entry.yaml_path else "",
            hook=cfg.get("custom_dataset") if callable(cfg.get("custom_dataset")) else None,
            metadata=meta,
        )
    return out


@lru_cache(maxsize=1)
def groups() -> dict[str, tuple[str, ...]]:
    """Every opinbench group, by name, with the tasks it runs (nested groups expanded)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    tm = _manager()
    raw = {}
    for name in tm.all_groups:
        entry = tm.task_index[name]
        cfg = entry.cfg or (load_yaml(entry.yaml_path, resolve_func=False) if entry.yaml_path else {})
        members = cfg.get("task") or []
        raw[name] = [m if isinstance(m, str) else m.get("task") for m in members]

    def expand(name: str, seen: frozenset[str] = frozenset()) -> tuple[str, ...]:
        out: list[str] = []
        for m in raw.get(name, []):
            if m in raw and m not in seen:
                out += expand(m, seen | {name})
            elif isinstance(m, str):
                out.append(m)
        return tuple(dict.fromkeys(out))

    return {name: expand(name) for name in raw}


def names() -> list[str]:
    """Task and group names, sorted."""
    return sorted([*tasks(), *groups()])


def resolve(name: str) -> list[str] | None:
    """The tasks a name runs (a task: itself; a group: its tasks), or None when it is not opinbench's."""
    if name in tasks():
        return [name]
    if name in groups():
        return [t for t in groups()[name] if t in tasks()]
    return None


def suggest(name: str, n: int = 3) -> list[str]:
    """The opinbench task or group names closest to ``name`` (difflib)."""
    return difflib.get_close_matches(name, names(), n=n, cutoff=0.6)
