"""The data registry: every data set described once, loaded through one function."""

from __future__ import annotations

import pytest

from opinbench.data import registry
from opinbench.data.records import AnswerRecord, DistributionRecord
from opinbench.errors import ConfigError
from tests.helpers.opinionqa_files import write_tiny_release


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    """A tiny OpinionQA release at its default place under a data directory."""
    return write_tiny_release(tmp_path_factory.mktemp("data") / "opinionqa" / "human_resp", 6)


def test_names_by_kind_individuals_and_answer_tasks():
    assert registry.names(individuals=True) == ("wom", "smartvote", "anes")
    assert registry.names(kind="distribution") == ("opinionqa", "opinionqa_steerable", "subpop_train", "subpop_eval")
    assert registry.names(kind="distribution", shipped_tasks=True) == ("opinionqa", "subpop_train", "subpop_eval")
    assert set(registry.names(answers=True)) == {"vk", "opinionqa", "wom", "smartvote", "anes"}
    assert {registry.get(n).family for n in registry.DATASETS} == {"vk", "survey"}
    assert [n for n in registry.DATASETS if registry.get(n).family == "vk"] == ["vk"]
    assert registry.holds_individuals("anes") and not registry.holds_individuals("vk")
    assert not registry.holds_individuals("not_registered")
    with pytest.raises(ConfigError, match="unknown data set 'nope'"):
        registry.get("nope")


def test_options_defaults_and_required():
    assert registry.options_of("anes", {"scheme": "aggressive", "elections": "2021", "version": 1}) == {
        "scheme": "aggressive"}
    assert registry.get("opinionqa").options["groups"] == "standard"
    assert registry.missing_options("smartvote", {}) == {"answers": registry.get("smartvote").required["answers"]}
    assert registry.missing_options("smartvote", {"answers": "/x.json"}) == {}
    assert registry.missing_options("wom", {}) == {}


def test_load_resolves_the_source_applies_defaults_and_caches(tiny_release, tmp_path, monkeypatch):
    explicit = registry.load("opinionqa", tiny_release)
    assert explicit and all(isinstance(r, DistributionRecord) for r in explicit)
    # the default groups are the tasks' ("standard"), not the loader's ("all")
    everything = registry.load("opinionqa", tiny_release, groups="all")
    assert {(r.attribute, r.group) for r in explicit} <= {(r.attribute, r.group) for r in everything}
    # the default place under the data directory, from the environment or given
    monkeypatch.setenv(registry.DATA_DIR_ENV, str(tiny_release.parents[1]))
    assert registry.load("opinionqa") == explicit
    assert registry.load("opinionqa", data_dir=tiny_release.parents[1]) == explicit
    monkeypatch.setenv(registry.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        registry.load("opinionqa")
    cached = registry.load("opinionqa", tiny_release, cache=True)
    again = registry.load("opinionqa", tiny_release, cache=True)
    assert cached == again == explicit and cached is not again  # a fresh list of the same records


def test_answer_records_of_a_distribution_data_set_go_through_its_converter(tiny_release):
    pairs = registry.answer_records("opinionqa", tiny_release, split_seed=0, test_fraction=0.5)
    assert pairs and all(isinstance(a, AnswerRecord) and isinstance(d, DistributionRecord) for a, d in pairs)
    assert {a.split for a, _ in pairs} == {"train", "test"}
    other = registry.answer_records("opinionqa", tiny_release, split_seed=1, test_fraction=0.5)
    assert [a.id for a, _ in other] == [a.id for a, _ in pairs]
    assert [a.split for a, _ in other] != [a.split for a, _ in pairs]  # split_seed chooses the split
    with pytest.raises(ConfigError, match="unknown answer data set"):
        registry.answer_records("subpop_train", tiny_release)


def test_distribution_record_json_round_trip(tiny_release):
    for r in registry.load("opinionqa", tiny_release)[:20]:
        doc = r.to_json() | {"steering": "qa", "letters": ["A", "B"]}  # a document extends the record's JSON
        assert DistributionRecord.from_json(doc) == r
