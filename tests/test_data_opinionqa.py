"""OpinionQA loaders: real data checked against an independent derivation, and written files."""

from __future__ import annotations

import ast
import csv
import json
import random
from pathlib import Path

import pytest

from opinbench.data.opinionqa import load_opinionqa, load_opinionqa_steerable
from opinbench.errors import DataError, SkipLog
from tests.helpers.opinionqa_files import write_wave

# --------------------------------------------------------------------------- tiny release writer

@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    questions = {
        "Q1_W1": ("How safe is it?", ["Very safe", "Somewhat safe", "Not safe", "Refused"], [1.0, 2.0, 3.0]),
        # the middle option is listed last: ordinal values are not sorted
        "Q2_W1": ("Is the world safer?", ["Safer", "More dangerous", "Neither", "Refused"], [1.0, 2.0, 1.5]),
        "Q3_W1": ("Which city?", ["Rome", "Paris", "Refused"], [1.0, 1.0]),  # no scale
    }
    sex = {
        "Q1_W1": {"Male": {"Very safe": 30, "Somewhat safe": 50, "Not safe": 20, "Refused": 5},
                  "Female": {"Very safe": 10, "Somewhat safe": 60, "Not safe": 30}},
        "Q2_W1": {"Male": {"Safer": 1, "More dangerous": 2, "Neither": 1},
                  # the release misspells an option once ("noR"): matched ignoring case
                  "Female": {"safer": 2, "More dangerous": 2, "NEITHER": 4, "Refused": 1}},
        "Q3_W1": {"Male": {"Rome": 1, "Paris": 1}, "Female": {"Rome": 2, "Paris": 0}},
    }
    party = {
        "Q1_W1": {"Democrat": {"Very safe": 20, "Somewhat safe": 60, "Not safe": 20},
                  "Republican": {"Very safe": 20, "Somewhat safe": 50, "Not safe": 30},
                  "Refused": {"Very safe": 1, "Refused": 5}},
        "Q2_W1": {"Democrat": {"Safer": 3, "More dangerous": 4, "Neither": 5},
                  "Republican": {"Safer": 0, "More dangerous": 0, "Neither": 1}},
        "Q3_W1": {"Democrat": {"Rome": 1}, "Republican": {"Paris": 1}},
    }
    write_wave(tmp_path / "human_resp", "American_Trends_Panel_W1", questions, {"SEX": sex, "POLPARTY": party},
               metadata={"SEX": ["Male", "Female"], "POLPARTY": ["Republican", "Democrat", "Independent"], "RELIG": ["Jewish"]})
    return tmp_path / "human_resp"


def by_id(records):
    return {r.id: r for r in records}


def test_distribution_over_ordinal_options_only(tiny):
    recs = by_id(load_opinionqa(tiny))
    r = recs["opinionqa:Q1_W1:SEX:Male"]
    assert r.options == ("Very safe", "Somewhat safe", "Not safe", "Refused")
    assert r.ordinal == (1.0, 2.0, 3.0)
    assert r.distribution == pytest.approx((0.3, 0.5, 0.2))  # "Refused" left out, rest renormalised
    assert (r.n, r.n_nonsubstantive) == (100, 5)
    assert r.source == "American_Trends_Panel_W1/SEX_data.json"


def test_unsorted_ordinal_and_loose_option_matching(tiny):
    r = by_id(load_opinionqa(tiny))["opinionqa:Q2_W1:SEX:Female"]
    assert r.ordinal == (1.0, 2.0, 1.5)
    assert r.distribution == pytest.approx((0.25, 0.25, 0.5))
    assert r.n == 8


def test_overall_is_the_most_complete_attribute_with_refused_groups(tiny):
    r = by_id(load_opinionqa(tiny, groups="overall"))["opinionqa:Q1_W1:OVERALL:Overall"]
    # POLPARTY covers 41+? respondents: 100+100+6 = 206 > SEX's 205 (refused-party group counts)
    assert (r.attribute, r.group) == ("OVERALL", "Overall")
    assert r.n == 20 + 20 + 1 + 60 + 50 + 20 + 30
    assert r.distribution[0] == pytest.approx(41 / 201)


def test_refused_group_and_absent_attribute_are_not_subpopulations(tiny):
    recs = load_opinionqa(tiny, groups="all")
    assert {(r.attribute, r.group) for r in recs} == {
        ("SEX", "Male"), ("SEX", "Female"), ("POLPARTY", "Democrat"), ("POLPARTY", "Republican")
    }


def test_standard_selection_and_group_items(tiny):
    assert {r.group for r in load_opinionqa(tiny, groups="standard")} == {"Male", "Female", "Democrat", "Republican"}
    assert {r.group for r in load_opinionqa(tiny, groups=["POLPARTY:Democrat"])} == {"Democrat"}


def test_question_without_scale_is_kept_but_flagged(tiny):
    recs = [r for r in load_opinionqa(tiny) if r.question_key == "Q3_W1"]
    assert recs and not any(r.has_scale for r in recs)


def test_empty_group_is_skipped_and_counted(tiny):
    skips = SkipLog()
    recs = by_id(load_opinionqa(tiny, skips=skips))
    # Republicans on Q3 all chose Paris... which has ordinal 1.0: non-empty. Q1 Refused party: not a group.
    assert "opinionqa:Q2_W1:POLPARTY:Republican" in recs
    assert len(skips) == 0


# --------------------------------------------------------------------------- bad input


def _break(tiny: Path, attr: str, key: str, group: str, counts) -> None:
    path = tiny / "American_Trends_Panel_W1" / f"{attr}_data.json"
    payload = json.loads(path.read_text())
    payload[key][group] = counts
    path.write_text(json.dumps(payload).replace("Infinity", "NaN"))


@pytest.mark.parametrize(
    "counts, reason",
    [
        ({"Very safe": 1, "Nonsense": 2}, "not among the references"),
        ({"Very safe": float("nan")}, "not a finite"),
        ({"Very safe": -1}, "not a finite non-negative"),
        ({"Refused": 3}, "empty distribution"),
        ("lots", "expected {option: count}"),
    ],
)
def test_bad_counts_are_skipped_with_file_key_field(tiny, counts, reason):
    _break(tiny, "SEX", "Q1_W1", "Male", counts)
    skips = SkipLog()
    recs = by_id(load_opinionqa(tiny, skips=skips))
    assert "opinionqa:Q1_W1:SEX:Male" not in recs
    assert "opinionqa:Q1_W1:POLPARTY:Democrat" in recs  # the rest survives
    msg = str(skips.entries[0])
    assert "SEX_data.json" in msg and "Q1_W1" in msg and reason in msg
    with pytest.raises(DataError, match="Q1_W1"):
        load_opinionqa(tiny, strict=True)


def test_malformed_info_row_names_file_key_field(tiny):
    info = tiny / "American_Trends_Panel_W1" / "info.csv"
    info.write_text(info.read_text().replace("[1.0, 2.0, 3.0]", "[1.0, 2.0,"))
    with pytest.raises(DataError) as err:
        load_opinionqa(tiny, strict=True)
    assert "info.csv: Q1_W1: option_ordinal" in str(err.value)
    skips = SkipLog()
    assert not [r for r in load_opinionqa(tiny, skips=skips) if r.question_key == "Q1_W1"]
    assert skips.counts


def test_more_than_ten_options_is_refused(tmp_path):
    refs = [f"opt{i}" for i in range(11)]
    write_wave(tmp_path, "W9", {"BIG": ("q", refs, list(range(11))), "OK": ("q", ["a", "b"], [1, 2])},
               {"SEX": {"BIG": {"Male": {"opt0": 1}}, "OK": {"Male": {"a": 1}}}})
    skips = SkipLog()
    assert [r.question_key for r in load_opinionqa(tmp_path, skips=skips)] == ["OK"]
    assert "11 options" in str(skips.entries[0]) and "info.csv: BIG: options" in str(skips.entries[0])


def test_missing_files_raise_with_the_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_opinionqa(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no OpinionQA wave folder"):
        load_opinionqa(tmp_path / "empty")
    wave = write_wave(tmp_path / "hr", "W1", {"Q": ("q", ["a", "b"], [1, 2])}, {"SEX": {"Q": {"Male": {"a": 1}}}})
    (wave / "metadata.csv").unlink()
    with pytest.raises(DataError, match="metadata.csv: missing file"):
        load_opinionqa(tmp_path / "hr")


def test_invalid_json_names_the_file(tiny):
    (tiny / "American_Trends_Panel_W1" / "SEX_data.json").write_text("{not json")
    with pytest.raises(DataError, match="SEX_data.json: invalid JSON"):
        load_opinionqa(tiny)


# --------------------------------------------------------------------------- steerable release


def test_steerable_release_with_and_without_ordinal_lookup(tmp_path, tiny):
    rows = [
        {"question": "Question: How safe is it?\nOptions: A. Very safe B. Somewhat safe C. Not safe\nAnswer:",
         "options": ["Very safe", "Somewhat safe", "Not safe"], "attribute": "SEX_Male",
         "gold_distribution": [0.3, 0.5, 0.2], "pred_distribution": None, "id": 7},
        {"question": "Question: Unknown?\nOptions: A. x B. y\nAnswer:", "options": ["x", "y"],
         "attribute": "POLPARTY_Democrat", "gold_distribution": [2, 2], "id": 8},
        {"question": "Question: Broken?\nOptions: A. x\nAnswer:", "options": ["x", "y"],
         "attribute": "SEX_Male", "gold_distribution": [1.0], "id": 9},
    ]
    path = tmp_path / "steer.json"
    path.write_text(json.dumps(rows))
    skips = SkipLog()
    recs = load_opinionqa_steerable(path, human_resp=tiny, skips=skips)
    assert [r.question_key for r in recs] == ["Q1_W1", "steerable8"]
    assert recs[0].options[-1] == "Refused" and recs[0].ordinal == (1.0, 2.0, 3.0)
    assert recs[1].ordinal == (1.0, 2.0) and recs[1].distribution == (0.5, 0.5)
    assert "steer.json: 9: gold_distribution" in str(skips.entries[0])


# --------------------------------------------------------------------------- real data


def independent_records(wave: Path, attr: str) -> dict[tuple[str, str], tuple[list[float], float]]:
    """Distributions derived straight from the raw files, without the loader's helpers."""
    info = {}
    with (wave / "info.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            info[row["key"]] = (ast.literal_eval(row["references"]), ast.literal_eval(row["option_ordinal"]))
    out = {}
    for key, entry in json.loads((wave / f"{attr}_data.json").read_text()).items():
        refs, ordinal = info[key]
        lower = [r.lower() for r in refs]
        for group, counts in entry.items():
            if group in ("MC_options", "question_text", "Refused", "nan"):
                continue
            vec = [0.0] * len(ordinal)
            for option, c in counts.items():
                i = lower.index(option.lower())
                if i < len(ordinal):
                    vec[i] += c
            total = sum(vec)
            if total > 0:
                out[(key, group)] = ([v / total for v in vec], total)
    return out


@pytest.fixture(scope="module")
def real(shared_data):
    return load_opinionqa(shared_data / "opinionqa" / "human_resp", groups="every")


def test_real_release_shape(real, shared_data):
    waves = {r.source.split("/")[0] for r in real}
    assert len(waves) == 14
    assert len({r.question_key for r in real}) == 618
    groups = {(r.attribute, r.group) for r in real}
    assert ("POLPARTY", "Democrat") in groups and ("RELIG", "Jewish") not in groups  # no RELIG file here
    assert sum(r.attribute == "OVERALL" for r in real) == 618


def test_real_records_match_independent_derivation(real, shared_data):
    recs = by_id(real)
    rng = random.Random(20261123)
    waves = sorted((shared_data / "opinionqa" / "human_resp").glob("American_Trends_Panel_W*"))
    checked = 0
    for wave in rng.sample(waves, 4):
        for attr in rng.sample(["SEX", "RACE", "POLIDEOLOGY", "INCOME", "EDUCATION", "CREGION", "AGE", "POLPARTY"], 3):
            derived = independent_records(wave, attr)
            for (key, group) in rng.sample(sorted(derived), min(15, len(derived))):
                dist, n = derived[(key, group)]
                r = recs.get(f"opinionqa:{key}:{attr}:{group}")
                assert r is not None, (wave.name, attr, key, group)
                assert r.distribution == pytest.approx(dist, abs=1e-12)
                assert r.n == n
                checked += 1
    assert checked > 100


def test_real_steerable_release(shared_data):
    skips = SkipLog()
    recs = load_opinionqa_steerable(shared_data / "opinionqa" / "steerable" / "steerable_test_opinionqa_small.json", skips=skips)
    assert len(recs) + len(skips) == 4475
    assert len({(r.attribute, r.group) for r in recs}) == 22
    assert sum(r.question_key.startswith("steerable") for r in recs) < len(recs) / 5
