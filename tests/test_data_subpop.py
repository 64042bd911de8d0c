"""SubPOP loader: the public release layout (files the tests write) and the shared metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opinbench.data.subpop import load_subpop
from opinbench.errors import DataError, SkipLog

ROW = {
    "qkey": "owngun", "attribute": "CREGION", "group": "Northeast",
    "question": "Do you happen to have in your home (or garage) any guns or revolvers?",
    "options": ["Yes", "No", "Refused"], "ordinal": [1.0, 2.0],
    "responses": [0.181, 0.819], "refusal_rate": 0.0094,
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_release_rows_become_records(tmp_path):
    rows = [ROW, ROW | {"attribute": "POLPARTY", "group": "Democrat", "responses": [0.1, 0.3]}]
    write_jsonl(tmp_path / "subpop_eval.jsonl", rows)
    recs = load_subpop(tmp_path, split="eval", groups="all")
    assert [r.id for r in recs] == ["subpop_eval:owngun:CREGION:Northeast", "subpop_eval:owngun:POLPARTY:Democrat"]
    r = recs[1]
    assert r.options == ("Yes", "No", "Refused") and r.ordinal == (1.0, 2.0)
    assert r.distribution == pytest.approx((0.25, 0.75)) and r.n is None
    assert r.question.startswith("Do you happen")
    # the 22 standard groups only
    assert [r.group for r in load_subpop(tmp_path, split="eval", groups="standard")] == ["Northeast", "Democrat"]


def test_list_columns_written_as_python_literals(tmp_path):
    row = ROW | {"options": str(ROW["options"]), "ordinal": str(ROW["ordinal"]), "responses": str(ROW["responses"])}
    (tmp_path / "subpop_train.json").write_text(json.dumps([row]))
    recs = load_subpop(tmp_path / "subpop_train.json", split="train")
    assert recs[0].dataset == "subpop_train" and recs[0].ordinal == (1.0, 2.0)


def test_flat_ordinal_is_replaced_from_question_metadata(tmp_path):
    (tmp_path / "metadata" / "subpop-eval" / "processed").mkdir(parents=True)
    (tmp_path / "metadata" / "subpop-eval" / "processed" / "refined_qkey_dict.json").write_text(
        json.dumps({"owngun": {"ordinal": [1.0, 2.0]}, "other": {"ordinal": [1.0, 2.0, 3.0]}})
    )
    rows = [ROW | {"ordinal": [1.0, 1.0]}, ROW | {"qkey": "other", "options": ["a", "b", "c", "Refused"], "ordinal": [1.0, 1.0, 1.0], "responses": [1, 1, 2]}, ROW | {"qkey": "nometa", "ordinal": [1.0, 1.0]}]
    write_jsonl(tmp_path / "subpop_eval.jsonl", rows)
    skips = SkipLog()
    recs = {r.question_key: r for r in load_subpop(tmp_path, split="eval", groups="all", skips=skips)}
    assert recs["owngun"].has_scale and recs["other"].ordinal == (1.0, 2.0, 3.0)
    assert not recs["nometa"].has_scale  # kept; the WD tasks leave it out with a counted warning
    assert sum(skips.notes.values()) == 2


@pytest.mark.parametrize(
    "row, where",
    [
        (ROW | {"responses": [0.5]}, "owngun: responses"),
        (ROW | {"responses": [float("nan"), 1.0]}, "owngun: responses"),
        (ROW | {"responses": [0.0, 0.0]}, "owngun: responses"),
        (ROW | {"options": [f"o{i}" for i in range(11)], "ordinal": [1.0, 2.0]}, "owngun: options"),
        ({k: v for k, v in ROW.items() if k != "ordinal"}, "owngun: ordinal"),
        ("{not json", "line 1"),
    ],
)
def test_bad_rows_are_skipped_with_file_key_field(tmp_path, row, where):
    write_jsonl(tmp_path / "subpop_eval.jsonl", [row, ROW | {"qkey": "fine"}])
    skips = SkipLog()
    recs = load_subpop(tmp_path, split="eval", groups="all", skips=skips)
    assert [r.question_key for r in recs] == ["fine"]
    assert f"subpop_eval.jsonl: {where}" in str(skips.entries[0])
    with pytest.raises(DataError, match="subpop_eval.jsonl"):
        load_subpop(tmp_path, split="eval", strict=True)


def test_missing_release_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="subpop_eval.jsonl .*gated"):
        load_subpop(tmp_path, split="eval")
    with pytest.raises(DataError, match="unknown SubPOP split"):
        load_subpop(tmp_path, split="dev")


def test_shared_metadata_and_synthbench_overall(shared_data):
    skips = SkipLog()
    recs = load_subpop(shared_data / "subpop", split="train", groups="every", skips=skips)
    assert len(recs) == 200 and all(r.attribute == "OVERALL" for r in recs)
    raw = json.loads(next((shared_data / "subpop" / "synthbench" / "leaderboard-results").glob("subpop_*.json")).read_text())
    q = {x["key"]: x for x in raw["per_question"]}
    for r in recs[:20]:
        src = q[r.question_key]
        k = len(r.ordinal)
        shares = [src["human_distribution"][o] for o in src["options"][:k]]
        assert r.distribution == pytest.approx([s / sum(shares) for s in shares])
        assert src["options"][k].lower() in ("refused", "not sure", "don't know") or k == len(src["options"])
    assert skips.notes  # ordinal taken from option order: counted
    with pytest.raises(DataError, match="gated"):
        load_subpop(shared_data / "subpop", split="eval")
