"""Wahl-o-Mat loader: real qual-o-mat data (checked against an independent reading of
the raw JSON) and tiny elections written here in the original layout."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from opinbench.data import registry
from opinbench.data.splits import split_questions
from opinbench.data.wahlomat import OPTIONS, load_wahlomat, party_group, read_party_groups
from opinbench.errors import ConfigError, DataError, SkipLog

# --------------------------------------------------------------------------- real data


def _raw(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wom_root(shared_data: Path) -> Path:
    root = shared_data / "wahl-o-mat"
    if not (root / "election.json").is_file():
        pytest.skip(f"no Wahl-o-Mat data at {root}")
    return root


@pytest.fixture(scope="module")
def loaded(wom_root: Path):
    skips = SkipLog()
    return load_wahlomat(wom_root, skips=skips), skips


@pytest.fixture(scope="module")
def raw_elections(wom_root: Path) -> list[dict]:
    """election.json entries whose folder exists, read without the loader."""
    return [e for e in _raw(wom_root / "election.json") if (wom_root / e["path"]).is_dir()]


def test_real_counts(loaded, raw_elections, wom_root):
    records, skips = loaded
    listed = _raw(wom_root / "election.json")
    # Independent totals straight from the files.
    n_opinions = sum(len(_raw(wom_root / e["path"] / "opinion.json")) for e in raw_elections)
    n_parties = sum(len(_raw(wom_root / e["path"] / "party.json")) for e in raw_elections)
    n_theses = sum(len(_raw(wom_root / e["path"] / "statement.json")) for e in raw_elections)

    assert len({r.meta["election_key"] for r in records}) == len(raw_elections)
    assert len({r.meta["individual"] for r in records}) == n_parties
    assert len({r.question_key for r in records}) == n_theses
    assert len(records) == n_opinions  # every party answered every thesis in this release
    assert len({r.id for r in records}) == len(records)
    # Every listed election is read, or its absence is counted.
    assert len(raw_elections) + len(skips) == len(listed)
    assert all("is missing" in e.reason and e.field == "path" for e in skips.entries)
    # Sanity bounds for the 2002-2024 release (69 elections, ~1,100 party-elections, ~42,000 answers).
    assert len(raw_elections) >= 60 and n_parties > 1000 and len(records) > 40000
    assert set(Counter(r.answer for r in records)) == set(OPTIONS)
    assert all(r.dataset == "wom" and r.options == OPTIONS for r in records)


def _expected(wom_root: Path, election: dict) -> dict[str, dict]:
    """Record id -> expected fields, derived directly from one election's raw JSON."""
    folder = wom_root / election["path"]
    messages = {a["id"]: a["message"] for a in _raw(folder / "answer.json")}
    option_of = {"Stimme zu": "Yes", "Stimme nicht zu": "No", "Neutral": "Neutral"}
    parties = {p["id"]: p["name"] for p in _raw(folder / "party.json")}
    theses = {s["id"]: s["text"] for s in _raw(folder / "statement.json")}
    comments = (
        {c["id"]: c["text"] for c in _raw(folder / "comment.json")}
        if (folder / "comment.json").exists()
        else {}
    )
    key = election["path"][len("data/") :]
    out = {}
    for op in _raw(folder / "opinion.json"):
        comment = comments.get(op["comment"]) if op["comment"] is not None else None
        if comment is not None:
            comment = comment.strip()
            if comment.startswith('"') and comment.endswith('"'):
                comment = comment[1:-1].strip()
        out[f"wom:{key}:{op['party']}:{op['statement']}"] = {
            "subject": parties[op["party"]].strip(),
            "question": theses[op["statement"]].strip(),
            "answer": option_of[messages[op["answer"]]],
            "context": f"{election['name']} {election['date'][:4]}",
            "comment": comment or None,
            "question_key": f"{key}/{op['statement']}",
        }
    return out


def test_real_records_match_raw_json(loaded, raw_elections, wom_root):
    records, _ = loaded
    by_id = {r.id: r for r in records}
    rng = random.Random(20240607)
    chosen = [e for e in raw_elections if e["path"] == "data/2021/deutschland"] + [
        rng.choice(raw_elections)
    ]
    for election in chosen:
        expected = _expected(wom_root, election)
        got = {rid: r for rid, r in by_id.items() if r.meta["election_key"] == election["path"][5:]}
        assert set(got) == set(expected), election["path"]
        for rid in rng.sample(sorted(expected), 15):
            r, want = got[rid], expected[rid]
            assert (r.subject, r.question, r.answer, r.context, r.question_key) == (
                want["subject"],
                want["question"],
                want["answer"],
                want["context"],
                want["question_key"],
            ), rid
            assert r.meta["comment"] == want["comment"]
        # And the whole election, as a multiset of answers per party.
        assert Counter((r.subject, r.answer) for r in got.values()) == Counter(
            (w["subject"], w["answer"]) for w in expected.values()
        )


def test_real_bundestagswahl_2021(loaded):
    records, _ = loaded
    btw = [r for r in records if r.meta["election_key"] == "2021/deutschland"]
    assert len(btw) == 38 * 38
    assert {r.context for r in btw} == {"Bundestagswahl 2021"}
    spd = {r.meta["statement_id"]: r for r in btw if r.subject == "SPD"}
    # Thesis 0: "Auf allen Autobahnen soll ein generelles Tempolimit gelten." The SPD agreed.
    assert spd[0].question.startswith("Auf allen Autobahnen soll ein generelles Tempolimit gelten")
    assert spd[0].answer == "Yes" and spd[0].meta["raw_message"] == "Stimme zu"


def test_real_splits_per_party(loaded, wom_root):
    records, _ = loaded
    per: dict[str, list] = defaultdict(list)
    for r in records:
        per[r.meta["individual"]].append(r)
    for individual, rs in per.items():
        n_test = sum(r.split == "test" for r in rs)
        assert n_test == round(0.3 * len(rs)), individual
        # The stored split is split_questions over that party's keys in that election.
        assert split_questions(rs[0].subject, [r.question_key for r in rs]) == {
            r.question_key: r.split for r in rs
        }
    share = sum(r.split == "test" for r in records) / len(records)
    assert 0.28 < share < 0.32
    # Deterministic across loads; another seed gives another split.
    again = load_wahlomat(wom_root, elections="2021/deutschland")
    assert {r.id: r.split for r in again} == {
        r.id: r.split for r in records if r.meta["election_key"] == "2021/deutschland"
    }
    other = load_wahlomat(wom_root, elections="2021/deutschland", seed=1)
    assert {r.id: r.split for r in other} != {r.id: r.split for r in again}


def test_real_ideology_groups(loaded):
    records, skips = loaded
    group = {}
    for r in records:
        group.setdefault(r.subject, set()).add(r.subject_group)
    expect = {
        "SPD": "Left",
        "GRÜNE": "Left",
        "DIE LINKE": "Left",
        "BÜNDNIS 90/DIE GRÜNEN": "Left",
        "PDS": "Left",
        "CDU": "Right",
        "CSU": "Right",
        "CDU/CSU": "Right",
        "CDU / CSU": "Right",
        "AfD": "Right",
        "FDP": "Right",
        "NPD": "Right",
        "FREIE WÄHLER": "Center",
        "ÖDP": "Center",
        "ödp": "Center",
    }
    for party, g in expect.items():
        assert group[party] == {g}, party
    assert group["BSW"] == {None} and group["Volt"] == {None}
    # Every election has a Left and a Right party; unmapped parties are counted.
    by_election = defaultdict(set)
    for r in records:
        by_election[r.meta["election_key"]].add(r.subject_group)
    assert all({"Left", "Right"} <= gs for gs in by_election.values())
    unmapped = {r.meta["individual"] for r in records if r.subject_group is None}
    assert sum(skips.notes.values()) == len(unmapped) > 0


def test_registry_default_path(shared_data, monkeypatch):
    monkeypatch.setenv(registry.DATA_DIR_ENV, str(shared_data))
    records = registry.load("wom", elections=["2002/deutschland"])
    assert {r.subject for r in records} == {
        "SPD",
        "CDU/CSU",
        "PDS",
        "Bündnis 90/ Die Grünen",
        "FDP",
    }
    assert all(r.meta["comment"] is None for r in records)  # 2002 has no comment.json


# --------------------------------------------------------------------------- tiny elections


ANSWERS = [
    {"id": 0, "message": "Stimme zu"},
    {"id": 1, "message": "Stimme nicht zu"},
    {"id": 2, "message": "Neutral"},
]


def write_release(
    root: Path, *, n_theses: int = 10, year: str = "2099", region: str = "testland"
) -> Path:
    """A two-party election in the qual-o-mat layout; returns the election folder."""
    folder = root / "data" / year / region
    folder.mkdir(parents=True)
    files = {
        "overview.json": {
            "title": "Landtagswahl Testland",
            "date": f"{year}-05-01",
            "info": "x",
            "slug": "x",
            "data_source": "x",
        },
        "party.json": [
            {"id": 0, "name": "SPD", "longname": "Sozialdemokratische Partei Deutschlands"},
            {"id": 1, "name": "Testpartei", "longname": "Partei der Tests"},
        ],
        "statement.json": [
            {"id": i, "category": None, "label": f"T{i}", "text": f"These {i}."}
            for i in range(n_theses)
        ],
        "answer.json": ANSWERS,
        "opinion.json": [
            {
                "id": p * n_theses + i,
                "party": p,
                "statement": i,
                "answer": (i + p) % 3,
                "comment": p * n_theses + i,
            }
            for p in (0, 1)
            for i in range(n_theses)
        ],
        "comment.json": [{"id": j, "text": f'"Kommentar {j}"'} for j in range(2 * n_theses)],
    }
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    elections = root / "election.json"
    listed = json.loads(elections.read_text()) if elections.exists() else []
    listed.append(
        {
            "id": len(listed),
            "name": "Landtagswahl Testland",
            "date": f"{year}-05-01",
            "path": f"data/{year}/{region}",
        }
    )
    elections.write_text(json.dumps(listed), encoding="utf-8")
    return folder


def edit(folder: Path, name: str, fn) -> None:
    path = folder / name
    path.write_text(json.dumps(fn(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def test_tiny_election(tmp_path):
    write_release(tmp_path)
    skips = SkipLog()
    records = load_wahlomat(tmp_path, skips=skips)
    assert len(records) == 20 and len(skips) == 0
    r = next(r for r in records if r.id == "wom:2099/testland:0:4")
    # answer code (4 + 0) % 3 = 1 = "Stimme nicht zu"
    assert (r.subject, r.subject_group, r.answer, r.question, r.context) == (
        "SPD",
        "Left",
        "No",
        "These 4.",
        "Landtagswahl Testland 2099",
    )
    assert (
        r.meta["comment"] == "Kommentar 4" and r.meta["raw_answer"] == 1 and r.meta["label"] == "T4"
    )
    assert r.question_key == "2099/testland/4" and r.source == "data/2099/testland/opinion.json"
    assert Counter(r.answer for r in records if r.subject == "Testpartei") == Counter(
        {"No": 4, "Neutral": 3, "Yes": 3}
    )
    # Unknown party: no group, counted once for its election.
    assert {r.subject_group for r in records if r.subject == "Testpartei"} == {None}
    assert sum(skips.notes.values()) == 1
    for party in ("SPD", "Testpartei"):
        assert sum(r.split == "test" for r in records if r.subject == party) == 3
    json.dumps([r.to_json() for r in records])  # plain JSON types only


def test_source_forms_and_selection(tmp_path):
    write_release(tmp_path / "wahl-o-mat", year="2098", region="alpha")
    folder = write_release(tmp_path / "wahl-o-mat", year="2099", region="beta")
    assert len(load_wahlomat(tmp_path)) == 40  # a folder holding wahl-o-mat/
    single = load_wahlomat(folder)  # one election folder
    assert {r.meta["election_key"] for r in single} == {"2099/beta"}
    assert single[0].meta["election_id"] == 1  # taken from the election.json around it
    for sel in ("2099/beta", "data/2099/beta", "2099", 1, ["2099/beta"]):
        assert {
            r.meta["election_key"] for r in load_wahlomat(tmp_path / "wahl-o-mat", elections=sel)
        } == {"2099/beta"}
    with pytest.raises(ConfigError, match="2097"):
        load_wahlomat(tmp_path, elections="2097/gamma")
    # Without election.json the data/<year>/<region> folders are scanned.
    (tmp_path / "wahl-o-mat" / "election.json").unlink()
    assert len(load_wahlomat(tmp_path / "wahl-o-mat")) == 40


def test_missing_answers_are_skipped_and_counted(tmp_path):
    folder = write_release(tmp_path)
    edit(folder, "opinion.json", lambda ops: [o for o in ops if o["id"] != 3])
    edit(
        folder,
        "opinion.json",
        lambda ops: [dict(o, answer=None) if o["id"] == 5 else o for o in ops],
    )
    edit(
        folder, "statement.json", lambda st: [dict(s, text="  ") if s["id"] == 7 else s for s in st]
    )
    skips = SkipLog()
    records = load_wahlomat(tmp_path, skips=skips)
    # Thesis 7 is gone for both parties; SPD (party 0) has no answer to theses 3 and 5.
    assert len(records) == 20 - 2 - 2
    assert len(skips) == 3
    reasons = Counter(e.reason for e in skips.entries)
    assert reasons["the party gave no answer"] == 2
    assert any(e.field == "text" and e.key == "id 7" for e in skips.entries)
    with pytest.raises(DataError, match="empty thesis text"):  # the first skip, raised
        load_wahlomat(tmp_path, strict=True)


def test_missing_election_folder_is_counted(tmp_path):
    write_release(tmp_path)
    listed = json.loads((tmp_path / "election.json").read_text())
    listed.append(
        {"id": 9, "name": "Bundestagswahl", "date": "2100-01-01", "path": "data/2100/deutschland"}
    )
    (tmp_path / "election.json").write_text(json.dumps(listed))
    skips = SkipLog()
    assert len(load_wahlomat(tmp_path, skips=skips)) == 20
    (err,) = skips.entries
    assert err.file.endswith("election.json") and err.key == "election 9" and err.field == "path"
    with pytest.raises(DataError, match="missing"):
        load_wahlomat(tmp_path, strict=True)


def _drop(name):
    return lambda folder: (folder / name).unlink()


def _write(name, text):
    return lambda folder: (folder / name).write_text(text, encoding="utf-8")


def _edit(name, fn):
    return lambda folder: edit(folder, name, fn)


BAD_INPUTS = {
    # case: (break the election, file, key, field, message fragment)
    "missing party.json": (_drop("party.json"), "party.json", None, None, "missing file"),
    "malformed opinion.json": (
        _write("opinion.json", "[{"),
        "opinion.json",
        None,
        None,
        "invalid JSON",
    ),
    "opinion.json not a list": (
        _write("opinion.json", "{}"),
        "opinion.json",
        None,
        None,
        "expected a JSON list",
    ),
    "unknown answer code": (
        _edit("opinion.json", lambda ops: [dict(o, answer=7) if o["id"] == 2 else o for o in ops]),
        "opinion.json",
        "id 2",
        "answer",
        "not defined in answer.json",
    ),
    "answer for a thesis that does not exist": (
        _edit(
            "opinion.json",
            lambda ops: (
                ops + [{"id": 99, "party": 0, "statement": 42, "answer": 0, "comment": None}]
            ),
        ),
        "opinion.json",
        "id 99",
        "statement",
        "thesis 42",
    ),
    "answer of a party that does not exist": (
        _edit(
            "opinion.json",
            lambda ops: (
                ops + [{"id": 99, "party": 5, "statement": 0, "answer": 0, "comment": None}]
            ),
        ),
        "opinion.json",
        "id 99",
        "party",
        "party 5",
    ),
    "two answers to one thesis": (
        _edit(
            "opinion.json",
            lambda ops: (
                ops + [{"id": 99, "party": 0, "statement": 0, "answer": 0, "comment": None}]
            ),
        ),
        "opinion.json",
        "id 99",
        "statement",
        "second opinion",
    ),
    "answer code not an integer": (
        _edit(
            "opinion.json", lambda ops: [dict(o, answer="0") if o["id"] == 1 else o for o in ops]
        ),
        "opinion.json",
        "id 1",
        "answer",
        "integer",
    ),
    "opinion without comment field": (
        _edit(
            "opinion.json",
            lambda ops: [
                {k: v for k, v in o.items() if k != "comment"} if o["id"] == 4 else o for o in ops
            ],
        ),
        "opinion.json",
        "id 4",
        "comment",
        "missing field",
    ),
    "unknown comment": (
        _edit(
            "opinion.json", lambda ops: [dict(o, comment=500) if o["id"] == 6 else o for o in ops]
        ),
        "opinion.json",
        "id 6",
        "comment",
        "comment 500",
    ),
    "unknown answer message": (
        _edit(
            "answer.json",
            lambda a: [dict(x, message="Vielleicht") if x["id"] == 2 else x for x in a],
        ),
        "answer.json",
        "id 2",
        "message",
        "Vielleicht",
    ),
    "party without name": (
        _edit(
            "party.json",
            lambda ps: [
                {k: v for k, v in p.items() if k != "name"} if p["id"] == 1 else p for p in ps
            ],
        ),
        "party.json",
        "id 1",
        "name",
        "missing field",
    ),
    "duplicate party id": (
        _edit("party.json", lambda ps: ps + [dict(ps[0], name="Andere")]),
        "party.json",
        "id 0",
        "id",
        "duplicate",
    ),
    "duplicate party name": (
        _edit("party.json", lambda ps: ps + [dict(ps[0], id=7)]),
        "party.json",
        "id 7",
        "name",
        "used twice",
    ),
    "thesis id not an integer": (
        _edit(
            "statement.json",
            lambda st: st + [{"id": "x", "category": None, "label": "", "text": "t"}],
        ),
        "statement.json",
        "entry 10",
        "id",
        "integer",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_key_field(tmp_path, case):
    folder = write_release(tmp_path)
    breaker, file, key, field, fragment = BAD_INPUTS[case]
    breaker(folder)
    with pytest.raises(DataError) as info:
        load_wahlomat(tmp_path)
    err = info.value
    assert Path(err.file).name == file and err.key == key and err.field == field, str(err)
    assert fragment in str(err)
    assert str(err).startswith(err.file)


def test_bad_election_json(tmp_path):
    write_release(tmp_path)
    (tmp_path / "election.json").write_text(
        json.dumps([{"id": 0, "name": "X", "date": "2099-01-01", "path": "elsewhere"}])
    )
    with pytest.raises(DataError) as info:
        load_wahlomat(tmp_path)
    assert (Path(info.value.file).name, info.value.key, info.value.field) == (
        "election.json",
        "election 0",
        "path",
    )
    with pytest.raises(DataError, match="no such file"):
        load_wahlomat(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no Wahl-o-Mat data"):
        load_wahlomat(tmp_path / "data")


def test_ideology_mapping(tmp_path):
    assert (
        party_group("SPD") == "Left"
        and party_group("CDU / CSU") == "Right"
        and party_group("Die Linke.") == "Left"
    )
    assert party_group("Unbekannt", "BÜNDNIS 90/DIE GRÜNEN") == "Left"  # long name as fallback
    assert party_group("Volt") is None
    custom = tmp_path / "groups.yaml"
    custom.write_text("Center:\n  - Testpartei\n", encoding="utf-8")
    write_release(tmp_path / "release")
    records = load_wahlomat(tmp_path / "release", ideology=custom)
    assert {r.subject: r.subject_group for r in records} == {"SPD": None, "Testpartei": "Center"}
    custom.write_text("Middle:\n  - X\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown group") as info:
        read_party_groups(custom)
    assert info.value.key == "Middle"
    custom.write_text("Left: [A]\nRight: [a]\n", encoding="utf-8")
    with pytest.raises(DataError, match="both"):
        read_party_groups(custom)
