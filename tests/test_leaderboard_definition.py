"""Leaderboard definitions: the shipped ones load, and bad ones are refused naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from opinbench.errors import ConfigError
from opinbench.leaderboard.definition import leaderboards_dir, load_definition, parse_definition
from opinbench.paths import tasks_dir


def test_shipped_definitions_load_and_name_real_tasks():
    from lm_eval.tasks import TaskManager

    known = set(TaskManager(include_path=str(tasks_dir()), include_defaults=False).all_tasks)
    for path in sorted(leaderboards_dir().glob("*.yaml")):
        d = load_definition(path)
        assert d.name == path.stem
        assert set(d.task_names) <= known, path
        assert {m.group for m in d.metrics} <= {g for g, _ in d.groups}


def test_full_leaderboard_has_the_issue_columns_and_no_subset():
    d = load_definition("opinbench")
    assert not d.subset and d.samples is None
    assert {m.task for m in d.metrics if m.group == "distribution"} == {
        "opinionqa_wd", "opinionqa_wd_bio", "opinionqa_wd_portray", "subpop_train_wd"}
    assert {m.id for m in d.metrics if m.group == "stance"} == {"wom_cot", "anes_cot", "smartvote_cot", "vk_cot"}
    assert {m.id for m in d.metrics if m.group == "reasoning"} == {"cot_faithfulness", "cot_offensive_rate"}
    assert d.metric("opinionqa_wd_qa").direction == "lower"


def test_smoke_is_a_marked_subset():
    d = load_definition("smoke")
    assert d.subset and d.samples == {"opinionqa_wd": [0, 1, 2], "wom_cot": [0, 1, 2]}
    assert d.metadata == {"split": "test"}  # the side of the split opinbench train holds out


def _raw(name="smoke"):
    return yaml.safe_load((leaderboards_dir() / f"{name}.yaml").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(subset=False), "samples (a document subset) on a leaderboard not marked subset"),
    (lambda r: r["metrics"][0].update(direction="up"), "metrics.opinionqa_wd_qa: direction"),
    (lambda r: r["metrics"][0].update(group="nope"), "unknown group 'nope'"),
    (lambda r: r["metrics"][0].update(task="vk_cot"), "task 'vk_cot' is not among"),
    (lambda r: r["metrics"][2].update(judge="moderation"), "judge 'moderation' is not pinned"),
    (lambda r: r["metrics"][1].update(floor={"baseline": "oracle"}), "unknown baseline 'oracle'"),
    (lambda r: r["metrics"].append(copy.deepcopy(r["metrics"][0])), "defined twice"),
    (lambda r: r["tasks"]["wom_cot"].pop("version"), "tasks.wom_cot: missing 'version'"),
    (lambda r: r["tasks"]["wom_cot"].update(metadata={"split": "train"}), "metadata split='train' conflicts"),
])
def test_bad_definitions_are_refused_naming_the_key(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_definition(raw, "x.yaml")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: opinbench, smoke"):
        load_definition("nope")


def test_digest_changes_with_the_content():
    a, raw = load_definition("smoke"), _raw()
    raw["tasks"]["wom_cot"]["version"] = 2.0
    assert parse_definition(raw).digest != a.digest


def test_diagnostics_group_is_outside_the_headline_in_both_shipped_definitions():
    for name in ("smoke", "opinbench"):
        d = load_definition(name)
        assert d.off_headline == {"diagnostics"}
        diag = [m for m in d.metrics if m.group == "diagnostics"]
        assert {m.metric for m in diag} >= {"jsd", "rank_tau", "refusal_gap_abs"}
        assert all(not d.in_headline(m) and m.floor is None and m.ceiling is None for m in diag)
        assert all(d.in_headline(m) for m in d.metrics if m.group != "diagnostics")
    full = load_definition("opinbench")
    assert full.metric("opinionqa_wd_divided").metric == "wd|entropy=divided"
    gain = full.metric("opinionqa_steering_gain")
    assert (gain.task, gain.unsteered, gain.higher_is_better) == ("opinionqa_wd", "opinionqa_wd_default", True)
    assert full.task("opinionqa_wd_default").metadata == {"split": "test"}


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["metrics"][0].pop("floor"), "metrics.opinionqa_wd_qa: missing 'floor'"),
    (lambda r: r["metrics"][-1].update(unsteered="opinionqa_wd_default"), "task 'opinionqa_wd_default' is not among"),
    (lambda r: r["metrics"][-1].update(floor={"nope": 1}), "unknown bound kind 'nope'"),
])
def test_headline_metrics_still_need_bounds_and_diagnostics_name_real_tasks(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        parse_definition(raw, "x.yaml")
