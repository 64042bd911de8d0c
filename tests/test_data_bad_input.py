"""No silent wrong score: bad input found by trying it, each a regression test.

Every case here was accepted (a wrong record, a silent drop, a wrong count) or
ended in a traceback before the fix; now it is a `DataError` naming where it
is, or a skip counted once per record lost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.data.files import csv_rows, parse_json, read_csv, read_json
from opinbench.data.opinionqa import load_opinionqa
from opinbench.data.records import DistributionRecord, require_records
from opinbench.data.subpop import load_subpop
from opinbench.data.vk import load_vk
from opinbench.data.wahlomat import load_wahlomat
from opinbench.errors import DataError, SkipLog
from tests.helpers.opinionqa_files import write_tiny_release
from tests.test_data_subpop import ROW
from tests.test_data_subpop import write_jsonl as write_subpop_jsonl
from tests.test_data_vk import GOOD, write_csv, write_json
from tests.test_data_wahlomat import write_release

WAVE = "American_Trends_Panel_W1"


@pytest.fixture
def oqa(tmp_path: Path) -> Path:
    """A tiny OpinionQA release: 3 questions x (SEX: Male, Female; POLPARTY: Democrat, Republican)."""
    return write_tiny_release(tmp_path / "human_resp", 3)


def ids(records) -> set[str]:
    return {r.id for r in records}


# --------------------------------------------------------------------------- shared readers


def test_json_reader_refuses_duplicate_keys(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1, "b": {"c": 1, "c": 2}}')
    with pytest.raises(DataError, match=r"x.json: c: duplicate key 'c'"):
        read_json(path)
    assert parse_json('{"a": [1, {"b": 2}]}', file="f") == {"a": [1, {"b": 2}]}
    with pytest.raises(DataError, match="f: line 3: duplicate key"):
        parse_json('{"a": 1, "a": 1}', file="f", key="line 3")


def test_csv_reader_names_the_row_of_a_bad_byte_and_refuses_duplicates(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"key,text\nQ1,fine\nQ2,caf\xe9\n")
    columns, rows = csv_rows(path)
    assert columns == ["key", "text"]
    assert next(rows) == ("row 1", {"key": "Q1", "text": "fine"})
    with pytest.raises(DataError, match=r"t.csv: row 2: not UTF-8"):
        next(rows)
    path.write_text("key,text\nQ1,a\nQ1,b\n")
    with pytest.raises(DataError, match=r"t.csv: Q1: key: duplicate key \(first in row 1, again in row 2\)"):
        read_csv(path, ("key",), key="key")
    path.write_text("key,key\nQ1,a\n")
    with pytest.raises(DataError, match=r"t.csv: header: duplicate column"):
        read_csv(path)
    path.write_text("\ufeffkey,text\n\nQ1,a\n")  # BOM and blank line: skipped
    assert read_csv(path) == [{"key": "Q1", "text": "a"}]
    # a row with more or fewer fields than the header: the values would land in the wrong columns
    path.write_text("key,text\n\nQ1,a,extra\n")
    with pytest.raises(DataError, match=r"t.csv: row 1: 3 fields where the header has 2 \(line 3"):
        read_csv(path)
    path.write_text("key,text\nQ1,a\nQ2\n")
    with pytest.raises(DataError, match=r"t.csv: row 2: 1 fields where the header has 2"):
        read_csv(path)


# --------------------------------------------------------------------------- 2. finite numbers


def record(**kw) -> DistributionRecord:
    base = dict(id="d:q:A:g", dataset="d", question_key="q", question="?", options=("a", "b", "c"),
                ordinal=(1.0, 2.0, 3.0), attribute="A", group="g", distribution=(0.0, 1.0, 0.0), n=None, source="s")
    return DistributionRecord(**(base | kw))


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"ordinal": (1.0, math.nan, 3.0)}, "ordinal"),
        ({"ordinal": (1.0, math.inf, 3.0)}, "ordinal"),
        ({"ordinal": (1.0, "2", 3.0)}, "ordinal"),
        ({"distribution": (math.nan, 1.0, 0.0)}, "distribution"),
        ({"distribution": (-0.5, 1.5, 0.0)}, "distribution"),
    ],
)
def test_records_check_finiteness_when_built(kw, field):
    with pytest.raises(DataError, match=f"s: q: {field}:"):
        record(**kw)
    assert record().ordinal == (1.0, 2.0, 3.0)  # valid data unchanged


@pytest.mark.parametrize("ordinal", [[1.0, float("nan"), 3.0], [1.0, "high", 3.0], [1.0, None, 3.0]])
def test_subpop_nan_or_non_numeric_ordinal_is_a_named_skip(tmp_path, ordinal):
    row = ROW | {"options": ["a", "b", "c", "Refused"], "ordinal": ordinal, "responses": [0.0, 1.0, 0.0]}
    write_subpop_jsonl(tmp_path / "subpop_eval.jsonl", [ROW | {"qkey": "fine"}, row])
    skips = SkipLog()
    recs = load_subpop(tmp_path, split="eval", skips=skips)
    assert [r.question_key for r in recs] == ["fine"]  # not a record scoring wd 0.0 on a hidden option
    [err] = skips.entries
    assert (Path(err.file).name, err.key, err.field) == ("subpop_eval.jsonl", "owngun", "ordinal")
    assert "(line 2)" in str(err)
    with pytest.raises(DataError, match="subpop_eval.jsonl: owngun: ordinal: .*line 2"):
        load_subpop(tmp_path, split="eval", strict=True)


def test_subpop_metadata_ordinal_must_be_numbers(tmp_path):
    meta = tmp_path / "metadata" / "subpop-eval" / "processed" / "refined_qkey_dict.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"owngun": {"ordinal": "not a list"}}))
    write_subpop_jsonl(tmp_path / "subpop_eval.jsonl", [ROW])
    with pytest.raises(DataError, match="refined_qkey_dict.json: owngun: ordinal"):
        load_subpop(tmp_path, split="eval")


# --------------------------------------------------------------------------- 3. duplicate keys


def test_opinionqa_question_key_twice_in_a_data_file(oqa):
    path = oqa / WAVE / "SEX_data.json"
    text = path.read_text()
    payload = json.loads(text)
    second = json.dumps({"Q1_W1": payload["Q1_W1"] | {"Female": {"Very safe": 1}}})[1:-1]
    path.write_text(text[:-1] + ", " + second + "}")  # Q1_W1 twice: json.loads keeps the second
    with pytest.raises(DataError, match=r"SEX_data.json: Q1_W1: duplicate key 'Q1_W1'"):
        load_opinionqa(oqa)


def test_opinionqa_duplicate_info_row_is_a_counted_skip(oqa):
    clean = load_opinionqa(oqa, groups="every")
    info = oqa / WAVE / "info.csv"
    lines = info.read_text().splitlines()
    row = next(ln for ln in lines if ",Q1_W1," in ln)
    info.write_text("\n".join(lines + [row.replace("How safe is place 1?", "How unsafe is place 1?")]) + "\n")
    skips = SkipLog()
    recs = load_opinionqa(oqa, groups="every", skips=skips)
    lost = {r.id for r in clean if r.question_key == "Q1_W1"}
    assert ids(recs) == ids(clean) - lost and len(lost) == 5  # overall + 4 groups, none silently
    assert len(skips) == len(lost)
    assert all(e.key == "Q1_W1" and e.file.endswith("info.csv") for e in skips.entries)
    with pytest.raises(DataError, match="info.csv: Q1_W1: key: key listed in 2 rows"):
        load_opinionqa(oqa, strict=True)


def test_opinionqa_duplicate_attribute_in_metadata(oqa):
    meta = oqa / WAVE / "metadata.csv"
    meta.write_text(meta.read_text() + "9,SEX,\"['Other']\"\n")
    with pytest.raises(DataError, match="metadata.csv: SEX: key: duplicate key"):
        load_opinionqa(oqa)


def test_wahlomat_field_twice_in_one_opinion(tmp_path):
    folder = write_release(tmp_path)
    path = folder / "opinion.json"
    # opinion 0 says "answer": 0 (Yes), then "answer": 1 (No); the last used to win
    path.write_text(path.read_text().replace('"answer": 0,', '"answer": 0, "answer": 1,', 1))
    with pytest.raises(DataError, match=r"opinion.json: answer: duplicate key 'answer'"):
        load_wahlomat(tmp_path)


def test_vk_field_twice_in_one_object(tmp_path):
    path = write_json(tmp_path / "steerable_test_valuekaleidoscope_small.json", GOOD)
    path.write_text(path.read_text().replace('"label_text": "Either",', '"label_text": "Either", "label_text": "Supports",', 1))
    with pytest.raises(DataError, match=r"steerable_test_valuekaleidoscope_small.json: label_text: duplicate key"):
        load_vk(path)


def test_valueprism_jsonl_field_twice_is_a_skipped_line(tmp_path):
    path = tmp_path / "valence_test.jsonl"
    good = {"situation": "S", "text": "Honesty", "valence": "Supports"}
    path.write_text(json.dumps(good) + "\n" + '{"situation": "S", "text": "T", "valence": "Opposes", "valence": "Either"}\n')
    skips = SkipLog()
    assert len(load_vk(path, skips=skips)) == 1
    assert "line 2" in str(skips.entries[0]) and "duplicate key 'valence'" in str(skips.entries[0])


# --------------------------------------------------------------------------- 4. nothing vanishes without a word


def test_wave_folder_without_info_csv_is_counted(oqa):
    second = write_tiny_release(oqa.parent / "other", 2) / WAVE
    second.rename(oqa / "American_Trends_Panel_W2")
    (oqa / "American_Trends_Panel_W2" / "info.csv").unlink()
    skips = SkipLog()
    load_opinionqa(oqa, skips=skips)
    assert skips.summary() != "nothing skipped"
    [err] = skips.entries
    assert "American_Trends_Panel_W2/info.csv" in str(err) and "wave folder without info.csv" in str(err)
    with pytest.raises(DataError, match="wave folder without info.csv"):
        load_opinionqa(oqa, strict=True)


def test_one_bad_group_costs_one_record_and_one_count(oqa):
    clean = load_opinionqa(oqa)
    path = oqa / WAVE / "SEX_data.json"
    payload = json.loads(path.read_text())
    payload["Q1_W1"]["Male"] = {"Very safe": -1}
    path.write_text(json.dumps(payload))
    skips = SkipLog()
    recs = load_opinionqa(oqa, skips=skips)
    # "skipped 1" used to remove Male *and* Female (the loop stopped at the first bad group)
    assert ids(clean) - ids(recs) == {"opinionqa:Q1_W1:SEX:Male"}
    assert len(skips) == 1 and skips.summary().startswith("skipped 1")


def test_no_overall_distribution_is_counted(tmp_path):
    from tests.helpers.opinionqa_files import write_wave

    q = {"Q": ("q?", ["a", "b", "Refused"], [1.0, 2.0])}
    write_wave(tmp_path, "W1", q, {"SEX": {"Q": {"Male": {"a": 1}, "Female": {"a": "x"}}}})
    skips = SkipLog()
    recs = load_opinionqa(tmp_path, groups="every", skips=skips)
    assert ids(recs) == {"opinionqa:Q:SEX:Male"}
    assert sorted(e.field for e in skips.entries) == ["Female", "Overall"]


def test_empty_vk_file_is_an_error(tmp_path):
    path = tmp_path / "steerable_test_valuekaleidoscope_small.json"
    path.write_text("[]")
    with pytest.raises(DataError, match="no rows"):
        load_vk(path)
    csv_path = write_csv(tmp_path / "valence_test.csv", ["situation", "text", "valence"], [])
    with pytest.raises(DataError, match="valence_test.csv: no rows"):
        load_vk(csv_path)


def test_empty_wahlomat_opinion_list_is_an_error(tmp_path):
    folder = write_release(tmp_path)
    (folder / "opinion.json").write_text("[]")
    with pytest.raises(DataError, match="opinion.json: no opinions"):
        load_wahlomat(tmp_path)


def test_a_load_with_zero_records_is_an_error(oqa):
    with pytest.raises(DataError, match="no usable records"):
        load_opinionqa(oqa, groups="SEX:Nobody")
    skips = SkipLog()
    skips.note("x")
    with pytest.raises(DataError, match=r"src: no usable records \(1 x x\)"):
        require_records([], source="src", skips=skips)
    assert require_records([1], source="src") == [1]


def test_export_with_zero_records_fails(oqa, tmp_path, monkeypatch, capsys):
    from opinbench.data import registry

    monkeypatch.setattr(registry, "load", lambda *a, **k: [])
    out = tmp_path / "out.jsonl"
    assert main(["data", "export", "opinionqa", "--source", str(oqa), "--out", str(out)]) != 0
    assert not out.exists()
    assert "no records to export" in capsys.readouterr().err


# --------------------------------------------------------------------------- 5. DataError, not a traceback


def test_non_utf8_info_csv(oqa):
    info = oqa / WAVE / "info.csv"
    info.write_bytes(info.read_bytes().replace(b"place 1?", b"place \xe9?"))
    with pytest.raises(DataError, match=r"info.csv: row 2: not UTF-8"):
        load_opinionqa(oqa)


@pytest.mark.parametrize("options", ["5", "'Male'", "[1, 2]"])
def test_metadata_options_not_a_list_of_names(oqa, options):
    meta = oqa / WAVE / "metadata.csv"
    meta.write_text(f',key,options\n0,SEX,"{options}"\n')
    with pytest.raises(DataError, match="metadata.csv: SEX: options: not a list of group names"):
        load_opinionqa(oqa)


def test_export_out_is_a_folder(oqa, tmp_path, capsys):
    assert main(["data", "export", "opinionqa", "--source", str(oqa), "--out", str(tmp_path)]) != 0
    assert "--out is a folder" in capsys.readouterr().err


def test_valueprism_bad_byte_in_row_2_names_row_2(tmp_path):
    path = tmp_path / "valence_test.csv"
    path.write_bytes(b"situation,text,valence\nS,Honesty,Supports\nS,caf\xe9,Opposes\n" + b"S,x,Either\n" * 2000)
    with pytest.raises(DataError) as exc:
        load_vk(path)
    assert "valence_test.csv: row 2: not UTF-8" in str(exc.value)
