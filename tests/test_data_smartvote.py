"""smartvote loader: the real 2015 questionnaire (checked against the raw JSON) and
answer exports written here in the smartvote API layout (no public answer file exists)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from opinbench.data import registry
from opinbench.data.smartvote import (
    UNMAPPED_NOTE,
    OPTIONS,
    binarise,
    load_smartvote,
    load_smartvote_questions,
    party_group,
    read_answer_export,
)
from opinbench.data.splits import split_questions
from opinbench.errors import DataError, SkipLog

QUESTIONNAIRE = "jvamvas_smartvote-api/example.ipynb__get_questionnaire_CH_NR_15.json"


# --------------------------------------------------------------------------- real questionnaire


@pytest.fixture(scope="module")
def sv_root(shared_data: Path) -> Path:
    root = shared_data / "smartvote"
    if not (root / QUESTIONNAIRE).is_file():
        pytest.skip(f"no smartvote questionnaire at {root / QUESTIONNAIRE}")
    return root


def test_real_questionnaire(sv_root):
    raw = json.loads((sv_root / QUESTIONNAIRE).read_text(encoding="utf-8"))
    # Independent reading: every question of every category, in order.
    flat = [(c["name"], q) for c in raw["categories"] for q in c["questions"]]
    questions = load_smartvote_questions(
        sv_root
    )  # the folder: the one *questionnaire*.json is found
    assert len(questions) == len(flat) == 75
    assert Counter(q.type for q in questions) == Counter({"AGREEMENT": 65, "BUDGET": 10})
    assert len({q.category for q in questions}) == len(raw["categories"]) == 13
    assert [q.id for q in questions] == [q["id"] for _, q in flat]
    assert {q.questionnaire_id for q in questions} == {raw["id"]} == {87}
    rng = random.Random(15)
    for i in rng.sample(range(len(flat)), 10):
        cat, q = flat[i]
        got = questions[i]
        assert (got.text, got.type, got.category, got.in_rapide) == (
            q["text"].strip(),
            q["type"],
            cat,
            q["isInRapide"],
        )
    first = questions[0]
    assert first.id == 1433 and first.text.startswith(
        "Do you support a raise in the retirement age"
    )
    assert first.cleavages == ((7, -1),) and "<p" not in (first.info or "")


def test_real_questionnaire_without_answers_is_a_clear_error(sv_root, shared_data, monkeypatch):
    with pytest.raises(DataError) as info:
        load_smartvote(sv_root)
    msg = str(info.value)
    assert (
        "needs candidate answers" in msg
        and "answers=" in msg
        and "questionId" in msg
        and "CSV" in msg
    )
    assert info.value.field == "answers"
    monkeypatch.setenv(registry.DATA_DIR_ENV, str(shared_data))
    with pytest.raises(DataError, match="needs candidate answers"):
        registry.load("smartvote")


def test_real_questionnaire_with_written_answers(sv_root, tmp_path):
    questions = [q for q in load_smartvote_questions(sv_root) if q.type == "AGREEMENT"]
    rng = random.Random(7)
    values = [0, 25, 75, 100]
    answers = {
        str(18800000000 + c): [
            {"questionId": q.id, "value": rng.choice(values), "comment": None} for q in questions
        ]
        for c in range(3)
    }
    # A budget answer is read but left out.
    answers["18800000000"].append({"questionId": 1498, "value": 50})
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"answers": answers}), encoding="utf-8")
    skips = SkipLog()
    records = load_smartvote(sv_root, answers=path, skips=skips)
    assert len(records) == 3 * 65 and len(skips) == 0
    # No election in the export: named from elections.csv via the questionnaire's file name.
    assert {r.context for r in records} == {"Elections to the National Council 2015"}
    assert {r.meta["election_id"] for r in records} == {95}
    for r in records:
        raw = next(a for a in answers[r.subject] if a["questionId"] == int(r.question_key))
        assert (
            r.answer == ("Yes" if raw["value"] >= 75 else "No")
            and r.meta["raw_value"] == raw["value"]
        )
    assert skips.notes["answer to a question that is not yes/no (left out)"] == 1
    assert skips.notes["BUDGET question left out (not a yes/no question)"] == 10
    for c in answers:
        assert sum(r.split == "test" for r in records if r.subject == c) == round(0.3 * 65)


# --------------------------------------------------------------------------- written files


def write_questionnaire(path: Path, n: int = 10) -> Path:
    """A questionnaire in the API layout: n yes/no questions and one budget item."""
    data = {
        "id": 1,
        "cleavages": [
            {"id": 1, "name": "Open foreign policy", "drawingName": "Open foreign policy"}
        ],
        "categories": [
            {
                "id": 1,
                "name": "Tests",
                "type": "AGREEMENT",
                "description": None,
                "questions": [
                    {
                        "id": 100 + i,
                        "name": "Standard-4",
                        "type": "AGREEMENT",
                        "text": f"Question {i}?",
                        "info": "<p>Info &amp; more</p>",
                        "pro": "",
                        "contra": "",
                        "isInRapide": i < 3,
                        "cleavages": [{"id": 1, "value": 1}],
                    }
                    for i in range(n)
                ],
            },
            {
                "id": 12,
                "name": "Federal budget",
                "type": "BUDGET",
                "description": "Spend more or less?",
                "questions": [
                    {
                        "id": 900,
                        "name": "Budget-5",
                        "type": "BUDGET",
                        "text": "National defence",
                        "info": "",
                        "pro": "",
                        "contra": "",
                        "isInRapide": False,
                        "cleavages": [],
                        "budget": "5'000 Mio. CHF",
                    }
                ],
            },
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def api_export(n: int = 10) -> dict:
    """Three candidates as the API returns them (candidate 3 has no party in the export)."""
    return {
        "election": {
            "id": 95,
            "name": "Elections to the National Council",
            "date": "2015-10-18",
            "identifier": "15_ch_nr",
        },
        "parties": [
            {
                "id": 11,
                "abbreviation": "SP",
                "name": "Sozialdemokratische Partei",
                "partyColorGroup": "sp",
            },
            {
                "id": 12,
                "abbreviation": "SVP",
                "name": "Schweizerische Volkspartei",
                "partyColorGroup": "svp",
            },
        ],
        "candidates": [
            {
                "id": 1,
                "firstname": "Anna",
                "lastname": "A",
                "_links": {"party": "/elections/95/parties/11"},
            },
            {
                "id": 2,
                "firstname": "Beat",
                "lastname": "B",
                "_links": {"party": "/elections/95/parties/12"},
            },
            {"id": 3, "firstname": "Cla", "lastname": "C", "_links": {}},
        ],
        "answers": {
            # One GET .../answers?responderId= response each: a list wrapped in a list.
            "1": [
                [
                    {
                        "id": 1000 + i,
                        "questionId": 100 + i,
                        "value": [0, 25, 75, 100][i % 4],
                        "comment": f"c{i}",
                        "hasComment": True,
                        "weightId": "SAME",
                        "weightLabel": "=",
                    }
                    for i in range(n)
                ]
            ],
            "2": [
                {"questionId": 100 + i, "value": 100 - [0, 25, 75, 100][i % 4]} for i in range(n)
            ],
            "3": [{"questionId": 100 + i, "value": 75} for i in range(n - 1)]
            + [{"questionId": 100 + n - 1, "value": None}],
        },
    }


@pytest.fixture
def files(tmp_path):
    q = write_questionnaire(tmp_path / "get_questionnaire.json")
    a = tmp_path / "answers.json"
    a.write_text(json.dumps(api_export()), encoding="utf-8")
    return q, a


def test_api_export(files):
    q, a = files
    skips = SkipLog()
    records = load_smartvote(q, answers=a, skips=skips)
    assert len(records) == 10 + 10 + 9
    by = {r.id: r for r in records}
    r = by["smartvote:1:101"]  # value 25 = "Rather no"
    assert (r.subject, r.subject_group, r.answer, r.question, r.options) == (
        "1",
        "Left",
        "No",
        "Question 1?",
        OPTIONS,
    )
    assert {
        "raw_value": 25,
        "raw_label": "Rather no",
        "comment": "c1",
        "party": "SP",
        "firstname": "Anna",
        "weight": "SAME",
        "category": "Tests",
    }.items() <= r.meta.items()
    assert r.context == "Elections to the National Council 2015" and r.source == "answers.json"
    assert by["smartvote:2:101"].answer == "Yes" and by["smartvote:2:101"].subject_group == "Right"
    assert Counter(by[f"smartvote:1:{100 + i}"].answer for i in range(10)) == Counter(
        {"No": 6, "Yes": 4}
    )  # 0,25,75,100,0,25,75,100,0,25
    assert {r.subject_group for r in records if r.subject == "3"} == {None}
    # Candidate 3 left one question unanswered: skipped and counted; no party: a note.
    (err,) = skips.entries
    assert (err.key, err.field) == ("candidate 3, question 109", "value")
    # the note says what happened to the candidate: kept, outside the ideology breakdown
    assert skips.notes[UNMAPPED_NOTE] == 1 and "kept" in UNMAPPED_NOTE
    # Split: per candidate, deterministic, 30 %.
    for cand, n in (("1", 10), ("3", 9)):
        mine = {r.question_key: r.split for r in records if r.subject == cand}
        assert list(mine.values()).count("test") == round(0.3 * n)
        assert mine == split_questions(cand, mine)
    assert [r.split for r in load_smartvote(q, answers=a)] == [r.split for r in records]
    assert [r.split for r in load_smartvote(q, answers=a, seed=3)] != [r.split for r in records]
    json.dumps([r.to_json() for r in records])
    with pytest.raises(DataError, match="no answer"):
        load_smartvote(q, answers=a, strict=True)


def test_binarisation():
    assert [binarise(v, file="f", key="k") for v in (0, 25, 75, 100)] == [
        ("No", "No"),
        ("No", "Rather no"),
        ("Yes", "Rather yes"),
        ("Yes", "Yes"),
    ]
    assert binarise(50, file="f", key="k") == (None, None)
    assert binarise(60.0, file="f", key="k") == ("Yes", None)
    for bad in (150, -1, "75", True, float("nan")):
        with pytest.raises(DataError) as info:
            binarise(bad, file="f", key="k")
        assert info.value.field == "value"


def test_midpoint_and_off_scale_values(files):
    q, a = files
    export = api_export()
    export["answers"]["2"][0]["value"] = 50
    export["answers"]["2"][1]["value"] = 60
    a.write_text(json.dumps(export), encoding="utf-8")
    skips = SkipLog()
    records = load_smartvote(q, answers=a, skips=skips)
    assert "smartvote:2:100" not in {r.id for r in records}
    assert next(r for r in records if r.id == "smartvote:2:101").answer == "Yes"
    assert (
        Counter(e.reason for e in skips.entries)["value 50 is the midpoint: neither yes nor no"]
        == 1
    )
    assert skips.notes["value not on the 0/25/75/100 scale, binarised at 50"] == 1


def test_csv_export_and_list_layout(tmp_path):
    q = write_questionnaire(tmp_path / "q_questionnaire.json", n=4)
    rows = ["responderId;questionId;value;party;firstname;lastname;comment"]
    rows += [f"7;{100 + i};{v};CVP;Dora;D;" for i, v in enumerate(["100", "0", "", "75"])]
    csv_path = tmp_path / "answers.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    skips = SkipLog()
    records = load_smartvote(q, answers=csv_path, skips=skips)
    assert [(r.question_key, r.answer) for r in records] == [
        ("100", "Yes"),
        ("101", "No"),
        ("103", "Yes"),
    ]
    assert {r.subject_group for r in records} == {"Center"} and records[0].meta["raw_value"] == 100
    assert len(skips) == 1  # the empty value
    # No election given and none to be found: context None, counted.
    assert records[0].context is None and any("election unknown" in n for n in skips.notes)
    # The list-of-responders JSON layout.
    listed = {
        "answers": [
            {"responderId": 8, "party": "PLR", "answers": [{"questionId": 100, "value": 25}]}
        ]
    }
    path = tmp_path / "listed.json"
    path.write_text(json.dumps(listed), encoding="utf-8")
    (r,) = [r for r in load_smartvote(q, answers=path) if r.question_key == "100"]
    assert (r.subject, r.subject_group, r.answer) == ("8", "Right", "No")


def test_party_groups():
    for party, group in {
        "SP": "Left",
        "PS": "Left",
        "Grüne": "Left",
        "JUSO": "Left",
        "CVP": "Center",
        "Die Mitte": "Center",
        "glp": "Center",
        "BDP": "Center",
        "EVP": "Center",
        "FDP": "Right",
        "PLR": "Right",
        "SVP": "Right",
        "UDC": "Right",
        "EDU": "Right",
    }.items():
        assert party_group(party) == group, party
    assert party_group("CSP") is None and party_group(None) is None


def _set(path: Path, fn) -> None:
    path.write_text(json.dumps(fn(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def _answers_of(cand, fn):
    def edit(export):
        export["answers"][cand] = fn(export["answers"][cand])
        return export

    return edit


BAD_ANSWERS = {
    # case: (edit the export, key, field, message fragment)
    "value not a number": (
        _answers_of("2", lambda a: [dict(a[0], value="yes")] + a[1:]),
        "candidate 2, question 100",
        "value",
        "not a number",
    ),
    "value out of range": (
        _answers_of("2", lambda a: [dict(a[0], value=150)] + a[1:]),
        "candidate 2, question 100",
        "value",
        "outside 0..100",
    ),
    "answer to a question that does not exist": (
        _answers_of("2", lambda a: a + [{"questionId": 4242, "value": 100}]),
        "candidate 2, question 4242",
        "questionId",
        "not in the questionnaire",
    ),
    "two answers to one question": (
        _answers_of("2", lambda a: a + [{"questionId": 100, "value": 0}]),
        "candidate 2, question 100",
        "questionId",
        "second answer",
    ),
    "answer without questionId": (
        _answers_of("2", lambda a: [{"value": 0}] + a),
        "candidate 2, answer 0",
        "questionId",
        "missing field",
    ),
    "questionId not an integer": (
        _answers_of("2", lambda a: [{"questionId": "q1", "value": 0}] + a),
        "candidate 2, answer 0",
        "questionId",
        "not an integer",
    ),
    "answers not a list": (
        _answers_of("2", lambda a: {"questionId": 100}),
        "candidate 2",
        "answers",
        "expected a list",
    ),
    "no answers field": (
        lambda e: {k: v for k, v in e.items() if k != "answers"},
        None,
        "answers",
        "'answers' field",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_bad_answer_export_names_file_key_field(files, case):
    q, a = files
    fn, key, field, fragment = BAD_ANSWERS[case]
    _set(a, fn)
    with pytest.raises(DataError) as info:
        load_smartvote(q, answers=a)
    err = info.value
    assert (Path(err.file).name, err.key, err.field) == ("answers.json", key, field), str(err)
    assert fragment in str(err)


def test_bad_files(files, tmp_path):
    q, a = files
    with pytest.raises(DataError, match="missing answer file") as info:
        load_smartvote(q, answers=tmp_path / "none.json")
    assert info.value.file.endswith("none.json")
    a.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON") as info:
        load_smartvote(q, answers=a)
    assert info.value.file == str(a)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("candidate,question,answer\n1,100,75\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing column\(s\)"):
        read_answer_export(bad_csv)
    # Questionnaire problems.
    _set(q, lambda d: {k: v for k, v in d.items() if k != "categories"})
    with pytest.raises(DataError) as info:
        load_smartvote_questions(q)
    assert (Path(info.value.file).name, info.value.field) == (q.name, "categories")
    write_questionnaire(q)
    _set(
        q,
        lambda d: (
            d["categories"][0]["questions"].append(dict(d["categories"][0]["questions"][0])),
            d,
        )[1],
    )
    with pytest.raises(DataError, match="duplicate question id") as info:
        load_smartvote_questions(q)
    assert (info.value.key, info.value.field) == ("question 100", "id")
    write_questionnaire(q)
    _set(q, lambda d: (d["categories"][0]["questions"][2].update(text=""), d)[1])
    skips = SkipLog()
    assert len(load_smartvote_questions(q, skips=skips)) == 10
    assert skips.entries[0].key == "question 102" and skips.entries[0].field == "text"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no smartvote questionnaire"):
        load_smartvote(tmp_path / "empty")
    with pytest.raises(DataError, match="no such file"):
        load_smartvote(tmp_path / "nowhere")
