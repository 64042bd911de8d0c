"""Value Kaleidoscope loader: the real steerable release, and small files in both layouts."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from opinbench.data import registry
from opinbench.data.vk import (
    OPTIONS,
    binary_subset,
    guess_vrd_type,
    is_binary,
    label_counts,
    load_valueprism,
    load_vk,
    load_vk_steerable,
    situation_key,
)
from opinbench.errors import DataError, SkipLog

STEERABLE_SMALL = "steerable_test_valuekaleidoscope_small.json"
OVERTON_SMALL = "overton_test_valuekaleidoscope_small.json"


def assert_names(err: DataError, *, file: str | Path, key: str | None = None, field: str | None = None) -> None:
    """The error names the file (by name), and the key and field where given."""
    assert Path(err.file or "").name == Path(file).name, str(err)
    assert Path(file).name in str(err)
    if key is not None:
        assert err.key == key, str(err)
        assert key in str(err)
    if field is not None:
        assert err.field == field, str(err)
        assert field in str(err)


# --------------------------------------------------------------------------- the real release


@pytest.fixture(scope="module")
def vk_dir(shared_data: Path) -> Path:
    d = shared_data / "value_kaleidoscope"
    if not (d / STEERABLE_SMALL).is_file():
        pytest.skip(f"{d / STEERABLE_SMALL} not found")
    return d


@pytest.fixture(scope="module")
def raw_rows(vk_dir: Path) -> list[dict]:
    return json.loads((vk_dir / STEERABLE_SMALL).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real(vk_dir: Path) -> list:
    return load_vk(vk_dir)


def test_real_counts(real, raw_rows):
    assert len(raw_rows) == 4368  # README: 4,368 rows
    assert len(real) == 4368
    assert label_counts(real) == Counter({"Supports": 2196, "Opposes": 1470, "Either": 702})
    assert {r.split for r in real} == {"test"}
    assert {r.options for r in real} == {OPTIONS}
    assert {r.dataset for r in real} == {"vk"}
    assert len({r.id for r in real}) == 4368
    # The release gives no value/right/duty type.
    assert {r.subject_group for r in real} == {None}
    # 2,429 distinct situation strings, 4 of them differing from another only in case.
    assert len({r.question for r in real}) == 2429
    assert len({r.question_key for r in real}) == 2425
    assert len(binary_subset(real)) == 2196 + 1470


def test_real_records_match_raw_json(real, raw_rows):
    """Independent derivation: the prompt split by hand, the letter mapped by hand."""
    by_id = {r.id: r for r in real}
    letter = {"A": "Supports", "B": "Opposes", "C": "Either"}
    picks = [0, 1, 2, len(raw_rows) - 1] + random.Random(7).sample(range(len(raw_rows)), 20)
    for i in picks:
        raw = raw_rows[i]
        rec = by_id[f"vk:{raw['id']}"]
        head, rest = raw["input"].split("\n\nSituation: ", 1)
        situation, rest = rest.split("\n\nValue/right/duty: ", 1)
        vrd, tail = rest.split("\n\n", 1)
        assert tail == "A. Support B. Oppose C. Either\nAnswer:"
        assert rec.question == raw["situation"] == situation
        assert rec.subject == raw["vrd"] == vrd
        assert rec.answer == letter[raw["label"]] == raw["label_text"]
        assert rec.meta["id"] == raw["id"]
        assert rec.meta["label"] == raw["label"]
        assert rec.source == STEERABLE_SMALL
    first = by_id["vk:19029"]
    assert (first.question, first.subject, first.answer) == ("Helping refugees", "Right to a safe environment", "Either")


def test_real_explanations_from_overton(real, vk_dir):
    overton = json.loads((vk_dir / OVERTON_SMALL).read_text(encoding="utf-8"))
    pairs: dict[tuple[str, str], set[str]] = {}
    for row in overton:
        for v, e in zip(row["vrd"], row["explanation"]):
            pairs.setdefault((row["situation"], v), set()).add(e)
    with_expl = [r for r in real if r.meta["explanation"] is not None]
    expected = [r for r in real if len(pairs.get((r.question, r.subject), ())) == 1]
    assert len(with_expl) == len(expected) == 876
    for r in with_expl[:50]:
        assert {r.meta["explanation"]} == pairs[(r.question, r.subject)]
        assert r.meta["explanation_source"] == "overton"
    assert all(r.meta["explanation"] is None for r in load_vk(vk_dir / STEERABLE_SMALL, explanations=False))


def test_real_via_registry_and_file(vk_dir, real):
    assert registry.get("vk").subpath == "value_kaleidoscope"
    via_registry = registry.load("vk", vk_dir)
    assert [r.to_json() for r in via_registry] == [r.to_json() for r in real]
    assert len(load_vk(vk_dir / STEERABLE_SMALL)) == 4368
    json.dumps([r.to_json() for r in real[:100]])  # JSON types only


def test_real_overton_file_is_refused(vk_dir):
    with pytest.raises(DataError) as exc:
        load_vk(vk_dir / OVERTON_SMALL, strict=True)
    assert_names(exc.value, file=OVERTON_SMALL, key="2167", field="vrd")
    assert "Overton" in str(exc.value)


def test_vrd_type_guess_on_real(real):
    guesses = Counter(r.meta["vrd_type_guess"] for r in real)
    assert guesses == Counter({"Value": 2146, "Duty": 1394, "Right": 828})
    assert [guess_vrd_type(t) for t in ("Duty not to harm", "Child's right to care", "Justice", "Filial duty")] == [
        "Duty",
        "Right",
        "Value",
        "Duty",
    ]


# --------------------------------------------------------------------------- steerable layout, written here


def prompt(situation: str, vrd: str) -> str:
    return (
        "Question: given a situation and a relevant value, right, or duty, does the value/right/duty support, "
        "oppose, or either support or oppose the situation?\n\n"
        f"Situation: {situation}\n\nValue/right/duty: {vrd}\n\nA. Support B. Oppose C. Either\nAnswer:"
    )


def srow(i: int, situation: str, vrd: str, letter: str) -> dict:
    text = {"A": "Supports", "B": "Opposes", "C": "Either"}[letter]
    return {
        "situation": situation,
        "vrd": vrd,
        "label_text": text,
        "label": letter,
        "input": prompt(situation, vrd),
        "output": None,
        "id": i,
    }


GOOD = [
    srow(1, "Lying to a friend", "Honesty", "B"),
    srow(2, "Lying to a friend", "Duty to protect others", "C"),
    srow(3, "Donating a kidney", "Right to bodily autonomy", "A"),
]


def write_json(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_steerable_good(tmp_path):
    path = write_json(tmp_path / "value_kaleidoscope" / STEERABLE_SMALL, GOOD)
    recs = load_vk(path.parent)
    assert [(r.id, r.question, r.subject, r.answer, r.split) for r in recs] == [
        ("vk:1", "Lying to a friend", "Honesty", "Opposes", "test"),
        ("vk:2", "Lying to a friend", "Duty to protect others", "Either", "test"),
        ("vk:3", "Donating a kidney", "Right to bodily autonomy", "Supports", "test"),
    ]
    assert recs[0].question_key == recs[1].question_key == situation_key(" lying  to a FRIEND ")
    assert [r.meta["vrd_type_guess"] for r in recs] == ["Value", "Duty", "Right"]
    assert [r.id for r in binary_subset(recs)] == ["vk:1", "vk:3"]
    two = binary_subset(recs, two_options=True)
    assert {r.options for r in two} == {("Supports", "Opposes")}
    assert [is_binary(r) for r in recs] == [True, False, True]


def test_steerable_prefers_full_file_and_reads_prompt_only_rows(tmp_path):
    d = tmp_path / "vk"
    write_json(d / STEERABLE_SMALL, GOOD)
    only_prompt = [{"input": prompt("Eating meat", "Animal welfare"), "label": "B", "id": 9}]
    write_json(d / "steerable_test_valuekaleidoscope.json", only_prompt)
    recs = load_vk(d)
    assert [(r.question, r.subject, r.answer) for r in recs] == [("Eating meat", "Animal welfare", "Opposes")]


def test_steerable_explanations_beside(tmp_path):
    path = write_json(tmp_path / STEERABLE_SMALL, GOOD)
    write_json(
        tmp_path / OVERTON_SMALL,
        [
            {
                "situation": "Lying to a friend",
                "vrd": ["Honesty", "Loyalty"],
                "explanation": ["Lying breaks honesty.", "Loyalty may support it."],
                "input": "Please comment on the following situation: Lying to a friend.",
                "output": None,
                "id": 5,
            },
            {"situation": "broken", "vrd": ["A"], "explanation": []},  # misaligned: ignored, counted
        ],
    )
    skips = SkipLog()
    recs = load_vk_steerable(path, skips=skips)
    assert recs[0].meta["explanation"] == "Lying breaks honesty."
    assert recs[0].meta["explanation_source"] == "overton"
    assert recs[1].meta["explanation"] is None and recs[2].meta["explanation"] is None
    assert len(skips) == 0 and sum(skips.notes.values()) == 1


BAD_STEERABLE = [
    # (row, key, field, words in the message)
    ({**srow(11, "S", "V", "A"), "label_text": "Maybe"}, "11", "label_text", "unknown label"),
    ({**srow(12, "S", "V", "A"), "label": "B"}, "12", "label", "disagrees"),
    ({**srow(13, "S", "V", "A"), "label": "Z", "label_text": None}, "13", "label", "unknown label"),
    ({**srow(14, "S", "V", "A"), "situation": "Other"}, "14", "input", "prompt says"),
    ({**srow(15, "S", "V", "A"), "situation": None, "input": "Situation: S\nAnswer:"}, "15", "input", "does not match"),
    ({k: v for k, v in srow(16, "S", "V", "A").items() if k not in ("situation", "input")}, "16", "situation", "missing"),
    ({k: v for k, v in srow(17, "S", "V", "A").items() if k not in ("label", "label_text")}, "17", "label_text", "missing"),
    ({**srow(18, "S", "V", "A"), "vrd": ["V", "W"]}, "18", "vrd", "Overton"),
    ({**srow(19, "S", "V", "A"), "situation": 42}, "19", "situation", "expected text"),
    (["not", "an", "object"], "row 2", None, "not an object"),
]


@pytest.mark.parametrize("row,key,field,words", BAD_STEERABLE)
def test_steerable_bad_row(tmp_path, row, key, field, words):
    path = write_json(tmp_path / "steer.json", [GOOD[0], row])
    with pytest.raises(DataError) as exc:
        load_vk(path, strict=True)
    assert_names(exc.value, file=path, key=key, field=field)
    assert words in str(exc.value)
    # Not strict: the row is skipped and counted, the good one kept.
    skips = SkipLog()
    recs = load_vk(path, skips=skips)
    assert [r.id for r in recs] == ["vk:1"]
    assert len(skips) == 1 and skips.entries[0].key == key


def test_steerable_duplicate_id(tmp_path):
    path = write_json(tmp_path / "steer.json", [GOOD[0], srow(1, "Other", "Thing", "A")])
    skips = SkipLog()
    assert len(load_vk(path, skips=skips)) == 1
    assert_names(skips.entries[0], file=path, key="1", field="id")


@pytest.mark.parametrize(
    "content,words",
    [("{not json", "invalid JSON"), ('{"a": 1}', "JSON list"), (None, "no such file")],
)
def test_steerable_bad_file(tmp_path, content, words):
    path = tmp_path / "steerable_test_valuekaleidoscope_small.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_vk(path)
    assert_names(exc.value, file=path)
    assert words in str(exc.value)


def test_steerable_all_rows_bad(tmp_path):
    path = write_json(tmp_path / "steer.json", [{**srow(1, "S", "V", "A"), "label_text": "?"}])
    with pytest.raises(DataError) as exc:
        load_vk(path)
    assert "no usable row" in str(exc.value)
    assert_names(exc.value, file=path)


# --------------------------------------------------------------------------- ValuePrism layout, written here

VP_COLUMNS = ["situation", "vrd", "text", "valence", "explanation"]
VP_ROWS = [
    ["Biking to work", "Value", "Health", "Supports", "Exercise is good for you."],
    ["Biking to work", "Right", "Right to safety", "Either", "Traffic can be dangerous."],
    ["Biking to work", "Duty", "Duty to abide by traffic laws", "Opposes", ""],
    ["Telling a white lie", "Value", "Honesty", "Opposes", "A lie is not honest."],
]


def write_csv(path: Path, columns, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_valueprism_csv_split_from_file_name(tmp_path):
    train = write_csv(tmp_path / "valence" / "valence_train.csv", VP_COLUMNS, VP_ROWS[:3])
    val = write_csv(tmp_path / "valence" / "valence_val.csv", VP_COLUMNS, VP_ROWS[3:])
    recs = load_vk(train)
    assert [(r.subject, r.subject_group, r.answer, r.split) for r in recs] == [
        ("Health", "Value", "Supports", "train"),
        ("Right to safety", "Right", "Either", "train"),
        ("Duty to abide by traffic laws", "Duty", "Opposes", "train"),
    ]
    assert recs[0].question == "Biking to work"
    assert recs[0].meta["explanation"] == "Exercise is good for you."
    assert recs[0].meta["explanation_source"] == "valueprism"
    assert recs[2].meta["explanation"] is None
    assert recs[0].meta["release_split"] == "train"
    assert recs[0].source == "valence_train.csv"
    [v] = load_vk(val)
    assert v.split == "train" and v.meta["release_split"] == "val"
    # The folder (HF layout: valence/ subfolder) reads all its tables.
    write_csv(tmp_path / "valence" / "valence_test.csv", VP_COLUMNS, [["Stealing bread", "Value", "Fairness", "opposes", ""]])
    folder = load_vk(tmp_path)
    assert Counter(r.split for r in folder) == Counter({"train": 4, "test": 1})
    assert {r.source for r in folder} == {"valence/valence_train.csv", "valence/valence_val.csv", "valence/valence_test.csv"}


def test_valueprism_seeded_split_by_situation(tmp_path):
    rows = [[f"Situation {i}", "Value", f"Value {j}", OPTIONS[(i + j) % 3], ""] for i in range(40) for j in range(3)]
    path = write_csv(tmp_path / "full.csv", VP_COLUMNS, rows)
    recs = load_vk(path)
    assert len(recs) == 120
    by_sit: dict[str, set[str]] = {}
    for r in recs:
        by_sit.setdefault(r.question_key, set()).add(r.split)
    assert all(len(s) == 1 for s in by_sit.values())  # a situation is never split
    assert sum(s == {"test"} for s in by_sit.values()) == 12  # round(0.3 * 40)
    assert [r.split for r in load_vk(path)] == [r.split for r in recs]  # deterministic
    assert [r.split for r in load_vk(path, seed=1)] != [r.split for r in recs]
    assert sum(s == {"test"} for s in {r.question_key: {r.split} for r in load_vk(path, test_fraction=0.5)}.values()) == 20
    assert all("release_split" not in r.meta for r in recs)


def test_valueprism_jsonl_numeric_labels_and_typed_text(tmp_path):
    path = write_jsonl(
        tmp_path / "export.jsonl",
        [
            {"situation": "Recycling", "text": "Value: Environmentalism", "label": 0, "split": "test"},
            {"situation": "Recycling", "text": "Duty: Duty to save time", "label": "1", "split": "train"},
            {"situation": "Recycling", "vrd": "rights", "text": "Right to choose", "label": 2.0, "split": "validation"},
        ],
    )
    skips = SkipLog()
    recs = load_vk(path, skips=skips)
    assert [(r.subject, r.subject_group, r.answer, r.split) for r in recs] == [
        ("Environmentalism", "Value", "Supports", "test"),
        ("Duty to save time", "Duty", "Opposes", "train"),
        ("Right to choose", "Right", "Either", "train"),
    ]
    assert recs[1].meta["label_raw"] == "1"
    assert len(skips) == 0 and sum(skips.notes.values()) == 3  # numeric codes are counted


def test_valueprism_parquet_and_json_list(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "situation": ["Adopting a dog", "Adopting a dog"],
            "vrd": ["Value", "Duty"],
            "text": ["Compassion", "Duty to care for animals"],
            "valence": ["Supports", None],
            "explanation": ["Kind to animals.", None],
        }
    )
    path = tmp_path / "valence_test.parquet"
    pq.write_table(table, path)
    skips = SkipLog()
    recs = load_vk(path, skips=skips)
    assert [(r.subject, r.answer, r.split) for r in recs] == [("Compassion", "Supports", "test")]
    assert_names(skips.entries[0], file=path, key="row 2", field="valence")
    # A JSON list in the ValuePrism layout is told apart from the steerable one.
    jpath = write_json(tmp_path / "vp.json", [{"situation": "A", "vrd": "Value", "text": "B", "valence": "Either"}])
    [r] = load_vk(jpath)
    assert (r.subject, r.subject_group, r.answer) == ("B", "Value", "Either")


BAD_VP = [
    # (row, field, words)
    (["Biking", "Value", "Health", "Great", ""], "valence", "unknown label"),
    (["Biking", "Value", "Health", "7", ""], "valence", "unknown label"),
    (["Biking", "Virtue", "Health", "Supports", ""], "vrd", "unknown type"),
    (["", "Value", "Health", "Supports", ""], "situation", "missing"),
    (["Biking", "Value", "  ", "Supports", ""], "text", "missing"),
    (["Biking", "Value", "", "", ""], "text", "missing"),
    (["Biking", "Right", "Duty: Duty to ride", "Supports", ""], "vrd", "disagrees"),
]


@pytest.mark.parametrize("row,field,words", BAD_VP)
def test_valueprism_bad_row(tmp_path, row, field, words):
    path = write_csv(tmp_path / "full.csv", VP_COLUMNS, [VP_ROWS[0], row])
    with pytest.raises(DataError) as exc:
        load_vk(path, strict=True)
    assert_names(exc.value, file=path, key="row 2", field=field)
    assert words in str(exc.value)
    skips = SkipLog()
    assert len(load_vk(path, skips=skips)) == 1
    assert skips.counts.total() == 1


def test_valueprism_bad_jsonl_line_and_duplicates(tmp_path):
    good = {"situation": "A", "vrd": "Value", "text": "B", "valence": "Supports"}
    path = write_jsonl(tmp_path / "x.jsonl", [good, "{broken", good, '"a string"'])
    skips = SkipLog()
    recs = load_vk(path, skips=skips)
    assert len(recs) == 1
    assert [(e.key, e.field) for e in skips.entries] == [("line 2", None), ("line 3", "text"), ("line 4", None)]
    assert "duplicate" in str(skips.entries[1])
    assert all(Path(e.file).name == "x.jsonl" for e in skips.entries)


def test_valueprism_split_column_unknown(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"situation": "A", "text": "B", "valence": "Supports", "split": "holdout"}])
    with pytest.raises(DataError) as exc:
        load_vk(path, strict=True)
    assert_names(exc.value, file=path, key="line 1", field="split")


def test_valueprism_ids_are_kept(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl",
        [
            {"id": 7, "situation": "A", "text": "B", "valence": "Supports"},
            {"id": 7, "situation": "C", "text": "D", "valence": "Opposes"},
        ],
    )
    skips = SkipLog()
    [r] = load_vk(path, skips=skips)
    assert r.id == "vk:7" and r.meta["id"] == 7
    assert skips.entries[0].field == "id" and skips.entries[0].key == "line 2"


@pytest.mark.parametrize(
    "name,columns,words",
    [
        ("full.csv", ["situation", "vrd", "text", "explanation"], "missing column"),
        ("full.csv", ["situation", "vrd", "valence"], "missing column"),
        ("relevance_train.csv", ["situation", "vrd", "text", "label"], "relevance"),
        ("data.tsv", ["situation", "text", "valence"], "unsupported file type"),
    ],
)
def test_valueprism_bad_file(tmp_path, name, columns, words):
    path = write_csv(tmp_path / name, columns, [["A"] * len(columns)])
    with pytest.raises(DataError) as exc:
        load_vk(path)
    assert_names(exc.value, file=path)
    assert words in str(exc.value)


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(DataError) as exc:
        load_vk(tmp_path / "nope")
    assert_names(exc.value, file=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        load_vk(tmp_path / "empty")
    assert "no Value Kaleidoscope data" in str(exc.value)
    with pytest.raises(DataError):
        load_valueprism([tmp_path / "nope.csv"])


def test_explicit_explanations_file(tmp_path):
    path = write_json(tmp_path / "mine.json", GOOD)
    other = write_json(
        tmp_path / "elsewhere" / "expl.json",
        [{"situation": "Donating a kidney", "vrd": ["Right to bodily autonomy"], "explanation": ["Her body."]}],
    )
    recs = load_vk(path, explanations=other)
    assert [r.meta["explanation"] for r in recs] == [None, None, "Her body."]
    with pytest.raises(DataError) as exc:
        load_vk(path, explanations=tmp_path / "missing.json")
    assert_names(exc.value, file="missing.json")


def test_no_usable_row_names_the_first_problem(tmp_path):
    path = write_csv(tmp_path / "full.csv", VP_COLUMNS, [["A", "Value", "B", "Great", ""], ["A", "Value", "C", "Fine", ""]])
    with pytest.raises(DataError) as exc:
        load_vk(path)
    assert "no usable row among 2" in str(exc.value)
    assert "row 1: valence: unknown label 'Great'" in str(exc.value)


def test_valueprism_column_case_and_unreadable_csv(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["Situation", "VRD", "Text", "Valence"], [["A", "duties", "B", "EITHER"]])
    [r] = load_vk(path)
    assert (r.question, r.subject, r.subject_group, r.answer) == ("A", "B", "Duty", "Either")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("situation,text,valence\n".encode() + "caf\xe9,B,Supports\n".encode("latin-1"))
    with pytest.raises(DataError) as exc:
        load_vk(bad)
    assert_names(exc.value, file=bad)
