"""The lm-eval groups of tasks_yaml/groups/ load (lm-eval silently drops a YAML that fails
to parse) and name only tasks and groups that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opinbench.paths import tasks_dir

GROUPS = ["opinionqa_steered", "opinionqa_suite", "subpop_suite", "vk_suite", "wom_suite",
          "smartvote_suite", "anes_suite", "opinbench"]


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False)


def test_groups_and_default_task_are_indexed(task_manager):
    assert set(GROUPS) <= set(task_manager.all_groups)
    assert "opinionqa_wd_default" in task_manager.all_subtasks


def test_every_member_exists_and_steered_group_is_size_weighted(task_manager):
    known = set(task_manager.all_tasks)
    for name in GROUPS:
        config = yaml.safe_load(Path(tasks_dir(), "groups", f"{name}.yaml").read_text(encoding="utf-8"))
        missing = [t for t in config["task"] if t not in known]
        assert not missing, (name, missing)
        assert all(m["weight_by_size"] for m in config["aggregate_metric_list"])
    steered = yaml.safe_load(Path(tasks_dir(), "groups", "opinionqa_steered.yaml").read_text(encoding="utf-8"))
    assert steered["task"] == ["opinionqa_wd", "opinionqa_wd_bio", "opinionqa_wd_portray"]
