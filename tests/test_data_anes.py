"""ANES loader: the real 2022 and 2024 pilots, and small files in both layouts (codes, labels)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest

from opinbench.data import registry
from opinbench.data.anes import (
    OPTIONS,
    find_csvs,
    load_anes,
    load_mapping,
    norm_value,
    release_of,
    shipped_mappings,
)
from opinbench.data.records import AnswerRecord
from opinbench.errors import ConfigError, DataError, SkipLog

CSV_2022 = "pilot_2022/anes_pilot_2022_20221214.csv"
CSV_2024 = "pilot_2024/anes_pilot_2024_20240319.csv"
RESPONDENTS = {"pilot_2022": 1585, "pilot_2024": 1909}


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


def notes_matching(skips: SkipLog, *parts: str) -> int:
    return sum(n for what, n in skips.notes.items() if all(p in what for p in parts))


# --------------------------------------------------------------------------- the real pilots


@pytest.fixture(scope="module")
def anes_dir(shared_data: Path) -> Path:
    d = shared_data / "anes"
    for rel in (CSV_2022, CSV_2024):
        if not (d / rel).is_file():
            pytest.skip(f"{d / rel} not found")
    return d


@pytest.fixture(scope="module")
def loaded(anes_dir: Path) -> dict[str, tuple[list[AnswerRecord], SkipLog]]:
    out = {}
    for scheme in ("conservative", "aggressive"):
        skips = SkipLog()
        records = load_anes(anes_dir, scheme=scheme, skips=skips)
        out[scheme] = (records, skips)
    return out


@pytest.fixture(scope="module")
def raw(anes_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw columns the independent derivations below need, read straight from the CSVs."""
    cols = {
        "pilot_2022": ["caseid", "weight", "ideo5", "roe", "roefollow", "abort_4pta", "transsport2"],
        "pilot_2024": ["caseid", "weight", "ideo5", "border_milit", "abrtpre_standard", "treatcrime_abort"],
    }
    files = {"pilot_2022": CSV_2022, "pilot_2024": CSV_2024}
    return {
        r: pd.read_csv(anes_dir / files[r], usecols=c, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        for r, c in cols.items()
    }


def by_release(records: list[AnswerRecord], release: str) -> list[AnswerRecord]:
    return [r for r in records if r.meta["release"] == release]


def test_registry_points_here(anes_dir: Path) -> None:
    assert registry.get("anes").load_fn() is load_anes
    assert sorted(shipped_mappings()) == ["pilot_2022", "pilot_2024"]
    recs = registry.load("anes", anes_dir / "pilot_2022", skips=SkipLog())
    assert {r.meta["release"] for r in recs} == {"pilot_2022"}


@pytest.mark.parametrize("scheme", ["conservative", "aggressive"])
def test_every_respondent_is_accounted_for(loaded, raw, scheme: str) -> None:
    records, skips = loaded[scheme]
    for release, n in RESPONDENTS.items():
        assert len(raw[release]) == n
        subjects = {r.subject for r in by_release(records, release)}
        without = notes_matching(skips, release, "without a usable answer")
        # Every respondent has records or is counted as having none.
        assert len(subjects) + without == n
        assert subjects <= {f"{release}:{c}" for c in raw[release]["caseid"]}
    assert len(skips) == 0, skips.summary()  # the shipped mappings know every value in the files


def test_record_shape(loaded) -> None:
    records, _ = loaded["conservative"]
    assert len({r.id for r in records}) == len(records)
    for r in records[:: max(1, len(records) // 500)]:
        assert r.dataset == "anes"
        assert r.options == OPTIONS == ("Yes", "Neutral", "No")
        assert r.subject.startswith(r.meta["release"] + ":")
        assert r.context in ("ANES 2022 pilot", "ANES 2024 pilot")
        assert r.meta["scheme"] == "conservative"
        assert r.meta["category"] in ("clear_yes", "neutral", "clear_no")
        assert r.question.strip() and r.question_key in r.id
        assert r.to_json()["options"] == list(OPTIONS)


def test_weights_present(loaded, raw) -> None:
    records, skips = loaded["aggressive"]
    for release in RESPONDENTS:
        expected = {
            f"{release}:{c}": (float(w) if w.strip() else None)
            for c, w in zip(raw[release]["caseid"], raw[release]["weight"])
        }
        recs = by_release(records, release)
        assert all(r.weight == expected[r.subject] for r in recs)
        weighted = [r for r in recs if r.weight is not None]
        assert len(weighted) > 0.75 * len(recs)
        assert all(r.weight > 0 for r in weighted)
        blank = sum(w is None for w in expected.values())
        assert notes_matching(skips, release, "without survey weight") == blank
    # ANES left 85 (2022) and 409 (2024) respondents unweighted.
    assert notes_matching(skips, "pilot_2022", "without survey weight") == 85
    assert notes_matching(skips, "pilot_2024", "without survey weight") == 409


def test_answer_distribution_is_plausible(loaded) -> None:
    records, _ = loaded["aggressive"]
    per_q: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in records:
        per_q[(r.meta["release"], r.question_key)][r.answer] += 1
    assert sum(1 for rel, _ in per_q if rel == "pilot_2022") >= 10
    assert sum(1 for rel, _ in per_q if rel == "pilot_2024") >= 15
    for (release, key), c in per_q.items():
        n = sum(c.values())
        assert n >= 500, (release, key, c)  # split-ballot forms reach about half the sample
        # Every policy question divides opinion: neither side is (almost) empty.
        assert 0.05 < c["Yes"] / n < 0.9, (release, key, c)
        assert 0.05 < c["No"] / n < 0.9, (release, key, c)
    totals = Counter(r.answer for r in records)
    assert all(totals[o] > 0.15 * len(records) for o in OPTIONS), totals


def test_conservative_keeps_fewer_yes_no_than_aggressive(loaded) -> None:
    cons, cons_skips = loaded["conservative"]
    aggr, _ = loaded["aggressive"]
    count = lambda recs: Counter((r.meta["release"], r.question_key, r.answer) for r in recs)  # noqa: E731
    c, a = count(cons), count(aggr)
    for release, key, answer in a:
        if answer == "Neutral":
            assert c[(release, key, answer)] == a[(release, key, answer)]
        else:
            assert c[(release, key, answer)] <= a[(release, key, answer)]
    yes_no = lambda cnt: sum(v for (_, _, ans), v in cnt.items() if ans != "Neutral")  # noqa: E731
    assert yes_no(c) < yes_no(a)
    # What the conservative scheme leaves out is counted, and is exactly the difference.
    assert notes_matching(cons_skips, "leaning answer left out") == len(aggr) - len(cons)
    # Conservative records are a subset of the aggressive ones, with the same answer and split.
    by_id = {r.id: r for r in aggr}
    for r in cons:
        twin = by_id[r.id]
        assert (r.answer, r.split, r.subject_group, r.weight) == (twin.answer, twin.split, twin.subject_group, twin.weight)


def _side(
    value: str, yes: set[str], lean_yes: set[str], neutral: set[str], lean_no: set[str], no: set[str], scheme: str
) -> str | None:
    if value in yes:
        return "Yes"
    if value in no:
        return "No"
    if value in neutral:
        return "Neutral"
    if scheme == "aggressive" and value in lean_yes:
        return "Yes"
    if scheme == "aggressive" and value in lean_no:
        return "No"
    return None


@pytest.mark.parametrize("scheme", ["conservative", "aggressive"])
def test_records_match_an_independent_derivation(loaded, raw, scheme: str) -> None:
    records, _ = loaded[scheme]
    got: dict[tuple[str, str], str] = {(r.subject, r.question_key): r.answer for r in records}

    expected: dict[tuple[str, str], str] = {}
    d22 = raw["pilot_2022"]
    for cid, roe, follow, abort, sport in zip(d22.caseid, d22.roe, d22.roefollow, d22.abort_4pta, d22.transsport2):
        s = f"pilot_2022:{cid}"
        # roe: 1 favor / 2 oppose / 3 neither; follow-up 1 a great deal, 2 moderately, 3 a little.
        if roe == "3":
            expected[(s, "roe")] = "Neutral"
        elif roe in ("1", "2") and (follow in ("1", "2") or (follow == "3" and scheme == "aggressive")):
            expected[(s, "roe")] = "Yes" if roe == "1" else "No"
        # Four-point abortion item: 4 = always as personal choice; 3 leans no; 5 (other) is no answer.
        a = _side(abort, {"4"}, set(), set(), {"3"}, {"1", "2"}, scheme)
        if a:
            expected[(s, "abort_4pta")] = a
        a = _side(sport, {"1"}, {"2"}, {"3"}, {"4"}, {"5"}, scheme)
        if a:
            expected[(s, "transsport2")] = a
    d24 = raw["pilot_2024"]
    for cid, milit, std, crime in zip(d24.caseid, d24.border_milit, d24.abrtpre_standard, d24.treatcrime_abort):
        s = f"pilot_2024:{cid}"
        a = _side(milit, {"Strongly favor"}, {"Somewhat favor"}, {"Neither favor nor oppose"},
                  {"Somewhat oppose"}, {"Strongly oppose"}, scheme)
        if a:
            expected[(s, "border_milit")] = a
        if std.startswith("By law, a woman should always"):
            expected[(s, "abrtpre_standard")] = "Yes"
        elif std.startswith("By law, abortion should never") or std.startswith("The law should permit abortion only"):
            expected[(s, "abrtpre_standard")] = "No"
        elif std.startswith("The law should permit abortion for reasons other") and scheme == "aggressive":
            expected[(s, "abrtpre_standard")] = "No"
        serious = {"Extremely serious", "Very serious", "Moderately serious"}
        a = _side(crime, serious, {"Slightly serious"}, set(), set(), {"Not a crime"}, scheme)
        if a:
            expected[(s, "treatcrime_abort")] = a

    keys = {"roe", "abort_4pta", "transsport2", "border_milit", "abrtpre_standard", "treatcrime_abort"}
    mine = {k: v for k, v in got.items() if k[1] in keys}
    assert mine == expected
    # Spot checks on the first respondents of each file.
    assert got[("pilot_2022:1", "roe")] == "Neutral"  # roe = 3
    assert got[("pilot_2022:3", "roe")] == "No"  # roe = 2, roefollow = 1


def test_raw_values_are_kept(loaded) -> None:
    records, _ = loaded["aggressive"]
    r = next(r for r in records if r.subject == "pilot_2022:3" and r.question_key == "roe")
    assert r.meta["raw"] == "2/1" and r.meta["variables"] == ["roe", "roefollow"] and r.meta["category"] == "clear_no"
    r = next(r for r in records if r.meta["release"] == "pilot_2024" and r.question_key == "border_milit")
    assert r.meta["raw"] in (
        "Strongly favor", "Somewhat favor", "Neither favor nor oppose", "Somewhat oppose", "Strongly oppose"
    )


def test_splits_are_deterministic_and_about_30_percent(anes_dir: Path, loaded) -> None:
    records, _ = loaded["aggressive"]
    again = load_anes(anes_dir / "pilot_2022", scheme="aggressive", skips=SkipLog())
    first = {r.id: r.split for r in by_release(records, "pilot_2022")}
    assert {r.id: r.split for r in again} == first
    other_seed = load_anes(anes_dir / "pilot_2022", scheme="aggressive", seed=1, skips=SkipLog())
    assert {r.id: r.split for r in other_seed} != first

    per_subject: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        per_subject[r.subject][r.split] += 1
    # Under the aggressive scheme every substantive answer is a record, so each respondent
    # has exactly round(0.3 * n) test questions.
    for c in per_subject.values():
        n = c["train"] + c["test"]
        assert c["test"] == round(0.3 * n)
    share = sum(c["test"] for c in per_subject.values()) / len(records)
    assert 0.25 < share < 0.35


def test_ideology_groups_from_self_placement(loaded, raw) -> None:
    records, skips = loaded["conservative"]
    ideo5 = {
        "pilot_2022": {"1": "Left", "2": "Left", "3": "Center", "4": "Right", "5": "Right"},
        "pilot_2024": {"Very liberal": "Left", "Liberal": "Left", "Moderate": "Center",
                       "Conservative": "Right", "Very conservative": "Right"},
    }
    for release, table in ideo5.items():
        d = raw[release]
        expected = {f"{release}:{c}": table.get(v) for c, v in zip(d.caseid, d.ideo5)}
        recs = by_release(records, release)
        assert all(r.subject_group == expected[r.subject] for r in recs)
        assert notes_matching(skips, release, "without ideology group") == sum(g is None for g in expected.values())
        groups = Counter(expected.values())
        assert all(groups[g] > 0.2 * len(expected) for g in ("Left", "Center", "Right")), groups
    # Groups mean something: the left opposes overturning Roe, the right favors it.
    roe = defaultdict(Counter)
    for r in by_release(records, "pilot_2022"):
        if r.question_key == "roe":
            roe[r.subject_group][r.answer] += 1
    assert roe["Left"]["No"] > 5 * roe["Left"]["Yes"]
    assert roe["Right"]["Yes"] > 2 * roe["Right"]["No"]


def test_the_persona_yaml_beside_the_2022_csv_is_not_a_mapping(anes_dir: Path) -> None:
    persona = anes_dir / "pilot_2022" / "anes-mapping.yaml"
    if not persona.is_file():
        pytest.skip("anes-mapping.yaml not shipped with this copy")
    with pytest.raises(DataError) as e:
        load_anes(anes_dir, mapping=persona)
    assert_names(e.value, file=persona, field="questions")


def test_one_release_and_one_file(anes_dir: Path) -> None:
    recs = load_anes(anes_dir, releases=["pilot_2024"], skips=SkipLog())
    assert {r.meta["release"] for r in recs} == {"pilot_2024"}
    one = load_anes(anes_dir / CSV_2022, skips=SkipLog())
    assert {r.meta["release"] for r in one} == {"pilot_2022"}
    assert one[0].source == "anes_pilot_2022_20221214.csv"
    assert load_anes(anes_dir.parent, releases="pilot_2022", skips=SkipLog())[0].source == CSV_2022
    with pytest.raises(DataError) as e:
        load_anes(anes_dir, releases=["pilot_2030"])
    assert_names(e.value, file=anes_dir, field="releases")


# --------------------------------------------------------------------------- small files, both layouts

NUMERIC_MAPPING = """\
release: pilot_2098
context: ANES 2098 pilot
respondent_id: caseid
weight: weight
missing: {"-1": inapplicable, "-7": no answer, "-9": refused}
ideology:
  variable: ideo5
  groups: {1: Left, 2: Left, 3: Center, 4: Right, 5: Right}
  none: {6: not sure}
questions:
  fav:
    question: Do you favor the policy?
    columns: [fav, favstr]
    answers:
      clear_yes: ["1/1", "1/2"]
      lean_yes: ["1/3"]
      neutral: ["3/-1"]
      lean_no: ["2/3"]
      clear_no: ["2/1", "2/2"]
  five:
    question: Should it be easier?
    answers:
      clear_yes: [1]
      lean_yes: [2]
      neutral: [3]
      lean_no: [4]
      clear_no: [5]
    missing: {8: other}
"""

NUMERIC_CSV = """\
\ufeffcaseid,weight,ideo5,fav,favstr,five,extra
1,1.5,1,1,1,1,x
2, ,4,1,3,2,x
3,.75,6,3,-1,3,x
4,2,5,2,2,5,x
5,1,3,2,3,4,x
6,1,-7,-7,-1,8,x
7,1.0,2,1.0,2.0,-9,x
"""

TEXT_MAPPING = """\
release: pilot_2099
context: ANES 2099 pilot
respondent_id: caseid
weight: weight
missing: ["inapplicable, legitimate skip", No Answer]
ideology:
  variable: ideo5
  groups: {Very liberal: Left, Liberal: Left, Moderate: Center, Conservative: Right, Very conservative: Right}
  none: [Not sure]
questions:
  aid:
    question: Do you favor aid?
    answers:
      clear_yes: [Strongly favor]
      lean_yes: [Somewhat favor]
      neutral: [Neither favor nor oppose]
      lean_no: [Somewhat oppose]
      clear_no: [Strongly oppose]
  felon:
    question: Should felons serve?
    answers:
      clear_yes: [Favor]
      neutral: [Neither favor nor oppose]
      clear_no: [Oppose]
"""

TEXT_CSV = """\
caseid,weight,ideo5,aid,felon
11,0.9,Very liberal,Strongly favor,Oppose
12,,Very conservative,Somewhat oppose,Favor
13,1.1,Not sure,"inapplicable, legitimate skip",Neither favor nor oppose
14,1.2,Moderate,Neither favor nor oppose,No Answer
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> dict[str, Path]:
    return {
        "numeric_csv": write(tmp_path / "anes" / "pilot_2098" / "anes_pilot_2098_20981231.csv", NUMERIC_CSV),
        "text_csv": write(tmp_path / "anes" / "pilot_2099" / "anes_pilot_2099_csv_20990101.csv", TEXT_CSV),
        "numeric_map": write(tmp_path / "maps" / "anes_pilot_2098.yaml", NUMERIC_MAPPING),
        "text_map": write(tmp_path / "maps" / "anes_pilot_2099.yaml", TEXT_MAPPING),
        "root": tmp_path / "anes",
        "maps": tmp_path / "maps",
    }


def answers(records: list[AnswerRecord]) -> dict[tuple[str, str], str]:
    return {(r.subject, r.question_key): r.answer for r in records}


def test_numeric_layout_conservative_and_aggressive(small) -> None:
    skips = SkipLog()
    cons = load_anes(small["numeric_csv"], mapping=small["numeric_map"], skips=skips)
    assert answers(cons) == {
        ("pilot_2098:1", "fav"): "Yes", ("pilot_2098:1", "five"): "Yes",
        ("pilot_2098:3", "fav"): "Neutral", ("pilot_2098:3", "five"): "Neutral",
        ("pilot_2098:4", "fav"): "No", ("pilot_2098:4", "five"): "No",
        ("pilot_2098:7", "fav"): "Yes",  # "1.0/2.0" read as "1/2"
    }
    assert notes_matching(skips, "leaning answer left out") == 4  # 2: fav 1/3, five 2; 5: fav 2/3, five 4
    assert notes_matching(skips, "skipped non-answer -7 = no answer") == 1  # respondent 6, fav -7/-1
    assert notes_matching(skips, "skipped non-answer 8 = other") == 1
    assert notes_matching(skips, "skipped non-answer -9 = refused") == 1
    assert notes_matching(skips, "without a usable answer") == 3  # 2, 5 (only leaning), 6 (none)
    assert notes_matching(skips, "without survey weight") == 1
    assert notes_matching(skips, "without ideology group (ideo5 6 = not sure)") == 1
    assert notes_matching(skips, "without ideology group (ideo5 -7 = no answer)") == 1
    assert len(skips) == 0

    aggr = load_anes(small["numeric_csv"], mapping=small["numeric_map"], scheme="aggressive", skips=SkipLog())
    got = answers(aggr)
    assert got[("pilot_2098:2", "fav")] == "Yes" and got[("pilot_2098:2", "five")] == "Yes"
    assert got[("pilot_2098:5", "fav")] == "No" and got[("pilot_2098:5", "five")] == "No"
    assert len(aggr) == len(cons) + 4

    r = next(r for r in cons if r.subject == "pilot_2098:1" and r.question_key == "fav")
    assert r.subject_group == "Left" and r.weight == 1.5 and r.context == "ANES 2098 pilot"
    assert r.meta == {"release": "pilot_2098", "raw": "1/1", "variables": ["fav", "favstr"],
                      "category": "clear_yes", "scheme": "conservative", "ideology": "1"}
    assert r.id == "anes:pilot_2098:1:fav" and r.source == "anes_pilot_2098_20981231.csv"
    groups = {r.subject: r.subject_group for r in aggr}
    assert groups["pilot_2098:2"] == "Right" and groups["pilot_2098:3"] is None and groups["pilot_2098:5"] == "Center"
    weights = {r.subject: r.weight for r in aggr}
    assert weights["pilot_2098:2"] is None and weights["pilot_2098:3"] == 0.75


def test_text_layout(small) -> None:
    skips = SkipLog()
    recs = load_anes(small["text_csv"], mapping=small["text_map"], scheme="aggressive", skips=skips)
    assert answers(recs) == {
        ("pilot_2099:11", "aid"): "Yes", ("pilot_2099:11", "felon"): "No",
        ("pilot_2099:12", "aid"): "No", ("pilot_2099:12", "felon"): "Yes",
        ("pilot_2099:13", "felon"): "Neutral",
        ("pilot_2099:14", "aid"): "Neutral",
    }
    assert notes_matching(skips, "skipped non-answer inapplicable, legitimate skip") == 1
    assert notes_matching(skips, "skipped non-answer No Answer") == 1
    g = {r.subject: r.subject_group for r in recs}
    assert g == {"pilot_2099:11": "Left", "pilot_2099:12": "Right", "pilot_2099:13": None, "pilot_2099:14": "Center"}
    cons = load_anes(small["text_csv"], mapping=small["text_map"], skips=SkipLog())
    assert ("pilot_2099:12", "aid") not in answers(cons)  # "Somewhat oppose" leans


def test_folder_with_both_layouts_and_a_mapping_folder(small) -> None:
    recs = load_anes(small["root"], mapping=small["maps"], skips=SkipLog())
    assert {r.meta["release"] for r in recs} == {"pilot_2098", "pilot_2099"}
    assert {r.source for r in recs} == {
        "pilot_2098/anes_pilot_2098_20981231.csv",
        "pilot_2099/anes_pilot_2099_csv_20990101.csv",
    }
    only = load_anes(small["root"], mapping=small["maps"], releases="pilot_2099", skips=SkipLog())
    assert {r.meta["release"] for r in only} == {"pilot_2099"}
    # Releases come in sorted order, respondents in file order, questions in mapping order.
    releases = [r.meta["release"] for r in recs]
    assert releases == sorted(releases)
    numeric = [r.subject for r in recs if r.meta["release"] == "pilot_2098"]
    assert numeric == sorted(numeric, key=lambda s: int(s.split(":")[1]))
    assert [r.question_key for r in recs if r.subject == "pilot_2098:1"] == ["fav", "five"]


def test_split_is_per_respondent_and_seeded(tmp_path: Path) -> None:
    qs = "\n".join(f"  q{i}:\n    question: Q{i}?\n    answers: {{clear_yes: [1], clear_no: [2]}}" for i in range(10))
    m = write(tmp_path / "anes_pilot_2097.yaml", f"release: pilot_2097\nrespondent_id: id\nquestions:\n{qs}\n")
    header = "id," + ",".join(f"q{i}" for i in range(10))
    rows = [f"{i}," + ",".join("1" if (i + j) % 2 else "2" for j in range(10)) for i in range(20)]
    csv = write(tmp_path / "anes_pilot_2097_x.csv", "\n".join([header, *rows]) + "\n")
    recs = load_anes(csv, mapping=m, skips=SkipLog())
    per = defaultdict(Counter)
    for r in recs:
        per[r.subject][r.split] += 1
        assert r.weight is None and r.subject_group is None and r.context == "ANES pilot_2097"
    assert all(c == {"train": 7, "test": 3} for c in per.values())
    def tests(rs: list[AnswerRecord]) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for r in rs:
            if r.split == "test":
                out[r.subject].add(r.question_key)
        return {k: frozenset(v) for k, v in out.items()}

    assert tests(recs) == tests(load_anes(csv, mapping=m, skips=SkipLog()))
    assert len(set(tests(recs).values())) > 1  # respondents get different test questions
    half = load_anes(csv, mapping=m, test_fraction=0.5, seed=3, skips=SkipLog())
    assert Counter(r.split for r in half) == {"train": 100, "test": 100}


def test_shipped_mapping_is_found_from_the_file_name(tmp_path: Path) -> None:
    # A small file in the 2024 layout, every mapped column filled with its first clear answer.
    m = load_mapping(shipped_mappings()["pilot_2024"])
    row = {"caseid": "1", "weight": "0.5", "ideo5": "Liberal"}
    for q in m.questions:
        value = next(v for v, c in q.categories.items() if c == "clear_yes")
        for col, part in zip(q.columns, value.split("/")):
            row[col] = part
    df = pd.DataFrame([row, {**row, "caseid": "2", "ideo5": "Not sure", "weight": ""}])
    csv = tmp_path / "anes_pilot_2024_20240319.csv"
    df.to_csv(csv, index=False)
    recs = load_anes(csv, skips=SkipLog())
    assert len(recs) == 2 * len(m.questions)
    assert {r.answer for r in recs} == {"Yes"}
    assert {(r.subject, r.subject_group, r.weight) for r in recs} == {
        ("pilot_2024:1", "Left", 0.5),
        ("pilot_2024:2", None, None),
    }


def test_helpers() -> None:
    assert release_of("anes_pilot_2022_20221214.csv") == "pilot_2022"
    assert release_of("ANES_Pilot_2024_csv_20240319.csv") == "pilot_2024"
    assert release_of("anes-mapping.yaml") is None and release_of("pilot_2022.csv") is None
    assert norm_value(" 1.0 ") == "1" and norm_value(-1) == "-1" and norm_value("a  b") == "a b"
    assert norm_value(".75") == ".75"


# --------------------------------------------------------------------------- bad input


def test_missing_file_or_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_anes(tmp_path / "anes_pilot_2022_x.csv")
    assert_names(e.value, file="anes_pilot_2022_x.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        find_csvs(tmp_path / "empty")
    assert_names(e.value, file="empty")


def test_missing_column_names_file_key_and_field(small) -> None:
    csv = write(small["numeric_csv"], NUMERIC_CSV.replace(",favstr", ",strength"))
    with pytest.raises(DataError) as e:
        load_anes(csv, mapping=small["numeric_map"])
    assert_names(e.value, file=csv, key="fav", field="favstr")
    csv = write(small["text_csv"], TEXT_CSV.replace("ideo5", "ideology"))
    with pytest.raises(DataError) as e:
        load_anes(csv, mapping=small["text_map"])
    assert_names(e.value, file=csv, key="ideology", field="ideo5")


def test_unmapped_value_is_a_counted_skip_or_a_strict_error(small) -> None:
    csv = write(small["text_csv"], TEXT_CSV.replace("Somewhat oppose", "Oppose a bit"))
    skips = SkipLog()
    recs = load_anes(csv, mapping=small["text_map"], scheme="aggressive", skips=skips)
    assert ("pilot_2099:12", "aid") not in answers(recs)
    assert ("pilot_2099:12", "felon") in answers(recs)
    assert len(skips) == 1
    assert_names(skips.entries[0], file=csv, key="aid", field="aid")
    assert "'Oppose a bit'" in str(skips.entries[0]) and "12" in str(skips.entries[0])
    with pytest.raises(DataError) as e:
        load_anes(csv, mapping=small["text_map"], strict=True)
    assert_names(e.value, file=csv, key="aid", field="aid")
    # Numeric layout, two-column question: the field names both columns.
    csv = write(small["numeric_csv"], NUMERIC_CSV.replace("4,2,5,2,2,5", "4,2,5,2,4,5"))
    with pytest.raises(DataError) as e:
        load_anes(csv, mapping=small["numeric_map"], strict=True)
    assert_names(e.value, file=csv, key="fav", field="fav/favstr")
    assert "'2/4'" in str(e.value)


def test_bad_rows_are_counted(small) -> None:
    extra = (
        "11,1,Liberal,Strongly favor,Favor\n"  # duplicate respondent
        "15,heavy,Left-ish,Strongly favor,Favor\n"  # weight and ideology not usable
        ",1,Liberal,Favor,Favor\n"  # no respondent id
    )
    csv = write(small["text_csv"], TEXT_CSV + extra)
    skips = SkipLog()
    recs = load_anes(csv, mapping=small["text_map"], skips=skips)
    kinds = [(Path(e.file or "").name, e.key, e.field) for e in skips.entries]
    assert kinds == [
        (csv.name, "11", "caseid"),  # the duplicate respondent is left out
        (csv.name, "15", "weight"),
        (csv.name, "15", "ideo5"),
        (csv.name, "row 8", "caseid"),
    ]
    r15 = [r for r in recs if r.subject == "pilot_2099:15"]
    assert r15 and all(r.weight is None and r.subject_group is None for r in r15)
    with pytest.raises(DataError):
        load_anes(csv, mapping=small["text_map"], strict=True)


@pytest.mark.parametrize(
    ("edit", "key", "field"),
    [
        (lambda t: t + "  broken: [unclosed\n", "line 26", "yaml"),
        (lambda t: t.replace("questions:", "items:"), None, "questions"),
        (lambda t: t.replace("clear_yes: [Favor]", "yes: [Favor]"), "felon", "answers"),
        (lambda t: t.replace("clear_yes: [Favor]", "clear_yes: [Yes]"), "felon", "answers.clear_yes"),
        (lambda t: t.replace("clear_yes: [Favor]", "maybe: [Favor]"), "felon", "answers"),
        (lambda t: t.replace("neutral: [Neither favor nor oppose]\n      clear_no", "neutral: [Favor]\n      clear_no"), "felon", "answers.neutral"),
        (lambda t: t.replace("      clear_no: [Oppose]\n", ""), "felon", "answers"),
        (lambda t: t.replace("    question: Should felons serve?\n", ""), "felon", "question"),
        (lambda t: t.replace("Moderate: Center", "Moderate: Middle"), "ideology", "groups"),
        (lambda t: t.replace("release: pilot_2099", "release: 2099"), "release", "release"),
        (lambda t: t.replace("    answers:\n      clear_yes: [Favor]", "    anwsers:\n      clear_yes: [Favor]"), "felon", "anwsers"),
    ],
    ids=["syntax", "no-questions", "unquoted-yes-key", "unquoted-yes-value", "unknown-category",
         "value-twice", "no-no-side", "no-question-text", "bad-group", "bad-release", "typo"],
)
def test_malformed_mapping_names_file_key_and_field(small, edit, key: str | None, field: str) -> None:
    bad = write(small["maps"] / "anes_pilot_2099.yaml", edit(TEXT_MAPPING))
    with pytest.raises(DataError) as e:
        load_anes(small["text_csv"], mapping=bad)
    assert_names(e.value, file=bad, key=key, field=field)


def test_release_and_mapping_problems(small, tmp_path: Path) -> None:
    # No mapping for the release the file name tells.
    csv = write(tmp_path / "x" / "anes_pilot_1990_19900101.csv", TEXT_CSV)
    with pytest.raises(DataError) as e:
        load_anes(csv)
    assert_names(e.value, file=csv, key="pilot_1990", field="mapping")
    # A name that tells no release, and no mapping to say it.
    odd = write(tmp_path / "y" / "survey.csv", TEXT_CSV)
    with pytest.raises(DataError) as e:
        load_anes(odd)
    assert_names(e.value, file=odd, field="file name")
    assert len(load_anes(odd, mapping=small["text_map"], skips=SkipLog())) > 0  # one file + one mapping is enough
    # Two files for one release.
    write(small["root"] / "pilot_2099" / "anes_pilot_2099_20990202.csv", TEXT_CSV)
    with pytest.raises(DataError) as e:
        load_anes(small["root"], mapping=small["maps"])
    assert e.value.field == "release" and e.value.key == "pilot_2099"
    with pytest.raises(DataError) as e:
        load_anes(small["numeric_csv"], mapping=tmp_path / "nowhere.yaml")
    assert_names(e.value, file="nowhere.yaml")


def test_bad_options(small) -> None:
    with pytest.raises(ConfigError):
        load_anes(small["text_csv"], mapping=small["text_map"], scheme="moderate")
    with pytest.raises(ConfigError):
        load_anes(small["text_csv"], mapping=small["text_map"], test_fraction=1.5)


def test_bad_csv(small) -> None:
    bad = small["text_csv"]
    bad.write_bytes(b"\xff\xfe\x00garbage\x00\n\x00")
    with pytest.raises(DataError) as e:
        load_anes(bad, mapping=small["text_map"])
    assert_names(e.value, file=bad)


def test_truncated_csv_is_an_error_naming_the_file_and_row(small) -> None:
    # A download cut mid-row: the last respondent has fewer fields than the header. Before, its
    # missing cells were read as blanks and its first answers became records, with no warning.
    csv = write(small["numeric_csv"], NUMERIC_CSV.rstrip("\n").rsplit(",", 3)[0] + "\n")
    with pytest.raises(DataError) as e:
        load_anes(csv, mapping=small["numeric_map"])
    assert_names(e.value, file=csv, key="row 7")
    assert "4 fields where the header has 7" in str(e.value)


def test_truncated_real_release_is_refused(anes_dir: Path, tmp_path: Path) -> None:
    # The file: the 2022 pilot cut after its last respondent's 482nd of 577 fields.
    import csv as csvlib

    with (anes_dir / CSV_2022).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csvlib.reader(fh))
    assert len(rows[0]) == 577 and len(rows) == RESPONDENTS["pilot_2022"] + 1
    cut = tmp_path / "anes_pilot_2022_20221214.csv"
    with cut.open("w", encoding="utf-8", newline="") as fh:
        csvlib.writer(fh).writerows(rows[:-1] + [rows[-1][:482]])
    with pytest.raises(DataError) as e:
        load_anes(cut, skips=SkipLog())
    assert_names(e.value, file=cut, key=f"row {RESPONDENTS['pilot_2022']}")
    assert "482 fields where the header has 577" in str(e.value)
