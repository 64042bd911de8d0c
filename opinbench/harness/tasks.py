"""The one place opinbench builds lm-eval tasks from its task folder (``tasks_yaml/``).

`lm_eval.tasks.TaskManager` indexes a folder, resolves ``include:`` and ``!function``
and builds `Task` objects with the run's ``--metadata``. The catalog (`opinbench tasks`,
eval's name check), ``estimate``, training, the leaderboard (submit, validate, worker)
and ``bench/`` all build their tasks here, so that every one indexes opinbench's folder
only (``include_defaults=False``: indexing all of lm-eval's own tasks costs ~5 s a call)
and sees the tasks exactly as a run does:

* `task_manager`: a manager over opinbench's folder with the run's metadata (what
  ``lm_eval.simple_evaluate`` is handed as ``task_manager``);
* `index`: the manager without metadata, built once per process, for names and
  configs (which tasks and groups exist, what a task's YAML says);
* `load_tasks`: ``{task name: Task}`` of tasks and groups, groups expanded, an unknown
  name a one-line `ConfigError` (optionally looked up in lm-eval's own tasks too);
* `load_task`: one task, built with ``metadata``; `eval_docs`: its evaluation documents.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.paths import tasks_dir


def task_manager(
    metadata: Mapping[str, Any] | None = None,
    *,
    include_path: str | Path | None = None,
    include_defaults: bool = False,
) -> Any:
    """A `TaskManager` over opinbench's task folder (or ``include_path``) that builds tasks
    with ``metadata`` (lm-eval's ``--metadata``); lm-eval's own tasks only with ``include_defaults``."""
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(include_path or tasks_dir()),
        include_defaults=include_defaults,
        metadata=dict(metadata) if metadata else None,
    )


@lru_cache(maxsize=1)
def index() -> Any:
    """The `TaskManager` without metadata, built once: names, groups and YAML configs."""
    return task_manager()


def _unknown(names: Sequence[str], known: Sequence[str]) -> ConfigError:
    close = sorted({c for n in names for c in difflib.get_close_matches(n, known, n=3)})
    hint = f"; did you mean {', '.join(close)}?" if close else " (`opinbench tasks` lists them)"
    return ConfigError(f"unknown task or group {', '.join(map(repr, names))}{hint}")


def load_tasks(
    names: Sequence[str],
    metadata: Mapping[str, Any] | None = None,
    *,
    include_path: str | Path | None = None,
    lm_eval_tasks: bool = False,
) -> dict[str, Any]:
    """``{task name: lm-eval Task}`` of tasks and groups (groups expanded to their tasks),
    built with ``metadata``.

    With ``lm_eval_tasks``, a name that opinbench's folder does not have is looked up in
    lm-eval's own tasks (``hellaswag``): opinbench's folder is indexed first and lm-eval's
    (~5 s) only when a name is missing there. A name found nowhere is a `ConfigError`
    with the closest names.
    """
    tm = task_manager(metadata, include_path=include_path)
    missing = [n for n in names if n not in tm.all_tasks]
    if missing and lm_eval_tasks:
        # Only now is all of lm-eval indexed; opinbench's folder comes last, so its tasks win.
        tm = task_manager(metadata, include_path=include_path, include_defaults=True)
        missing = [n for n in names if n not in tm.all_tasks]
    if missing:
        raise _unknown(missing, tm.all_tasks)
    return dict(tm.load(list(names))["tasks"])


def load_task(name: str, metadata: Mapping[str, Any] | None = None) -> Any:
    """The lm-eval ``Task`` ``name`` from opinbench's task folder, built with ``metadata``;
    a group is refused (name one task)."""
    loaded = load_tasks([name], metadata)
    if list(loaded) != [name]:
        raise ConfigError(f"{name!r} is a group of tasks; name one task")
    return loaded[name]


def eval_docs(task: Any) -> list[dict[str, Any]]:
    """A task's evaluation documents as plain dicts (lm-eval hands out `datasets` rows)."""
    return [dict(d) for d in task.eval_docs]
