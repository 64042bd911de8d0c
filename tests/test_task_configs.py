"""Every task YAML resolves to the same lm-eval task config as recorded in a snapshot.

lm-eval skips a task YAML that fails to parse with only a debug log, and a shared template
(`tasks_yaml/_templates/`) changes many tasks at once: this test resolves every task the way
lm-eval does (index, ``include:``, ``!function``) into its ``TaskConfig`` and compares the result
with ``tests/snapshots/task_configs.json``. After a deliberate change to a task, rewrite the
snapshot with ``OPINBENCH_UPDATE_TASK_SNAPSHOT=1 python -m pytest tests/test_task_configs.py``
and review its diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from opinbench.paths import tasks_dir

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "task_configs.json"


def _plain(value):
    """A JSON value for a resolved config: a `!function` becomes "module.qualname"."""
    if callable(value):
        return f"!function {value.__module__}.{value.__qualname__}"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):  # lm-eval's FewshotConfig
        from dataclasses import asdict

        return _plain(asdict(value))
    return value


def resolved_configs() -> dict[str, dict]:
    """{task name: its lm-eval TaskConfig as JSON}, for every task under tasks_dir()."""
    from lm_eval.config.task import TaskConfig
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    out = {}
    for name in tm.all_subtasks:
        cfg = tm._factory._load_full_config(tm.task_index[name])  # what _build_task passes on
        source = Path(cfg["metadata"].pop("config_source"))
        cfg["metadata"]["config_source"] = source.relative_to(tasks_dir()).as_posix()
        out[name] = _plain(TaskConfig(**cfg).to_dict(keep_callable=True))
    return out


@pytest.fixture(scope="module")
def configs():
    return resolved_configs()


def test_every_task_yaml_is_a_task(configs):
    """Every YAML is a task, except the lm-eval groups (``tasks_yaml/groups/``)."""
    names = {p.stem for p in tasks_dir().rglob("*.yaml") if p.parent.name != "groups"}
    assert names == set(configs), names ^ set(configs)


def test_every_function_is_an_opinbench_hook(configs):
    text = json.dumps(configs)
    hooks = set(re.findall(r"!function ([\w.]+)", text))
    # lm-eval glue lives in the harness; aggregations are pure metric functions.
    assert hooks and all(h.startswith(("opinbench.harness.", "opinbench.metrics.")) for h in hooks), hooks


def test_templates_are_not_tasks():
    """lm-eval indexes every *.yaml; the shared templates must not end in .yaml."""
    templates = sorted((tasks_dir() / "_templates").iterdir())
    assert templates and not [p for p in templates if p.suffix == ".yaml"]


def test_configs_match_the_snapshot(configs):
    if os.environ.get("OPINBENCH_UPDATE_TASK_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(configs) == sorted(expected)
    for name in expected:
        assert configs[name] == expected[name], name
