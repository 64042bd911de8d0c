"""smartvote (Switzerland) -> `AnswerRecord`s: candidates' answers, binarised to Yes / No.

Two inputs are read, each in the layout of the smartvote REST API v2.0
(``api.smartvote.ch``, undocumented; its responses are shown in the
jvamvas/smartvote-api client and its ``example.ipynb``):

* **Questionnaire** (``GET /2.0/elections/{id}/questionnaires``), a JSON
  object ``{id, cleavages: [{id, name}], categories: [{id, name, type,
  description, questions: [{id, name, type, text, info, pro, contra,
  isInRapide, cleavages: [{id, value}], budget?}]}]}``. ``type`` is
  ``AGREEMENT`` for the yes/no questions and ``BUDGET`` for the
  spend-more/spend-less items of the federal budget. The data folder holds the
  2015 National Council questionnaire (75 questions, English) as
  ``jvamvas_smartvote-api/example.ipynb__get_questionnaire_CH_NR_15.json``;
  any ``*questionnaire*.json`` under ``source`` is found, or pass the file.

* **Candidate answers**: no public copy could be had, so the user supplies an
  export (``answers=`` path) in one of two layouts:

  - JSON, the API responses saved together::

        {"election":   {id, name, date, identifier},        # GET /2.0/elections/{id}   (optional)
         "parties":    [{id, abbreviation, name, partyColorGroup}],  # .../parties     (optional)
         "candidates": [{id, firstname, lastname, _links: {party: ".../parties/<id>"}}
                        or {id, firstname, lastname, party: "<abbreviation>"}],  # .../candidates (optional)
         "answers":    {"<candidate id>": [{id, questionId, value, comment,
                                             hasComment, weightId, weightLabel}]}}

    where each ``answers`` value is one ``GET .../answers?responderId=<id>``
    response (the API wraps the list in a one-element list; either is read),
    or ``answers`` is a list of ``{responderId, answers: [...], party?,
    firstname?, lastname?}``.
  - CSV (``,``, ``;`` or tab separated), one row per candidate and question,
    with the API's field names: ``responderId, questionId, value`` and
    optionally ``comment, party, firstname, lastname``.

**Binarisation.** smartvote's candidates answer AGREEMENT questions on a
four-point scale stored as ``value`` 0 (No), 25 (Rather no), 75 (Rather yes)
and 100 (Yes); the example answers in the API client show 100 and 25. The
scale has no midpoint, so ``value > 50`` -> ``Yes`` and ``value < 50`` ->
``No`` splits it into its two halves; a value of exactly 50 (not on the scale,
but the middle of 0-100) is neither and is skipped (counted), and other values
in 0..100 are binarised by the same rule but counted in the notes. BUDGET
items ask for a five-point spending preference on a topic, not a yes/no
position, and are left out (counted). ``meta`` keeps the raw value and its
four-point label.

Each candidate is an individual: ``subject`` is the candidate id (names and
party are in ``meta``), the split is `split_questions` over the questions the
candidate answered, and ``subject_group`` (Left / Center / Right) comes from the
candidate's party via ``resources/party_ideology_ch.yaml``; candidates with no
party, or one the mapping does not list, get ``None`` (counted in the notes).
``context`` is the election ("Elections to the National Council 2015"): from the
export's ``election``, else looked up in ``elections.csv`` (jvamvas/smartvote-api,
shipped in the data folder) by its id or by the questionnaire file name
(``..._CH_NR_15.json`` -> ``15_ch_nr``).

Bad input -> `DataError` naming file, key and field: missing or malformed
files, wrong shapes, duplicate ids, a value that is not a number in 0..100, an
answer to a question the questionnaire does not have, two answers of one
candidate to one question. A question without text, an unanswered question
(``value: null``, or no entry) and the value 50 are skipped and counted.
"""

from __future__ import annotations

import csv
import html
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from opinbench.data.files import read_json
from opinbench.data.records import AnswerRecord, question_answer, require_records
from opinbench.data.splits import DEFAULT_SEED, DEFAULT_TEST_FRACTION, split_questions
from opinbench.data.wahlomat import normalise_party, read_party_groups
from opinbench.errors import DataError, SkipLog

DATASET = "smartvote"
OPTIONS = ("Yes", "No")
YES_NO_TYPE = "AGREEMENT"
SCALE = {0: "No", 25: "Rather no", 75: "Rather yes", 100: "Yes"}
"""smartvote's four-point agreement scale: stored value -> label."""
IDEOLOGY_FILE = Path(__file__).parent / "resources" / "party_ideology_ch.yaml"

ANSWER_LAYOUT = (
    "a JSON file {'election': {...}, 'parties': [...], 'candidates': [...], "
    "'answers': {'<candidate id>': [{'questionId': <int>, 'value': 0|25|75|100, 'comment': ...}]}} "
    "(smartvote API v2.0 responses), or a CSV with columns responderId, questionId, value "
    "[, comment, party, firstname, lastname]; see opinbench.data.smartvote"
)
UNMAPPED_NOTE = ("candidate without an ideology group (no party, or party not in the mapping): kept, "
                 "scored overall but in no Left/Center/Right breakdown")


# --------------------------------------------------------------------------- questionnaire


@dataclass(frozen=True)
class SmartvoteQuestion:
    """One question of a smartvote questionnaire."""

    id: int
    text: str
    type: str  # AGREEMENT (yes/no) or BUDGET (spend more / less)
    category: str | None
    category_id: int | None
    questionnaire_id: int | None
    in_rapide: bool | None  # part of the short "rapide" questionnaire
    cleavages: tuple[tuple[int, int], ...] = ()  # (smartspider axis id, direction)
    info: str | None = None  # background text, HTML removed
    source: str = ""

    @property
    def key(self) -> str:
        return str(self.id)

    @property
    def is_yes_no(self) -> bool:
        return self.type == YES_NO_TYPE


def find_questionnaire(source: str | Path) -> Path:
    """The questionnaire JSON: ``source`` itself, or the one ``*questionnaire*.json`` under it."""
    source = Path(source)
    if not source.exists():
        raise DataError("no such file or directory", file=source)
    if source.is_file():
        return source
    found = sorted(p for p in source.rglob("*.json") if "questionnaire" in p.name.lower())
    if not found:
        raise DataError("no smartvote questionnaire (*questionnaire*.json) found", file=source)
    if len(found) > 1:
        raise DataError(
            f"several questionnaires found ({[str(p) for p in found]}); pass one file", file=source
        )
    return found[0]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plain(text: Any) -> str | None:
    """HTML fragment -> plain text (tags dropped, entities decoded), or None."""
    if not isinstance(text, str):
        return None
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


def _question(q: Any, qi: int, cat: dict[str, Any], ckey: str, *, path: Path, seen: set[int],
              questionnaire_id: int | None, skips: SkipLog) -> SmartvoteQuestion | None:
    """One question of a category, checked (None: no text, skipped)."""
    if not isinstance(q, dict):
        raise DataError(f"question is a {type(q).__name__}, not an object", file=path, key=f"{ckey}, question {qi}")
    if not _is_int(q.get("id")):
        raise DataError(f"question id {q.get('id')!r} is not an integer", file=path, key=f"{ckey}, question {qi}",
                        field="id")
    qkey = f"question {q['id']}"
    if q["id"] in seen:
        raise DataError("duplicate question id", file=path, key=qkey, field="id")
    seen.add(q["id"])
    qtype = q.get("type", cat.get("type"))
    if not isinstance(qtype, str) or not qtype:
        raise DataError(f"question type {qtype!r} is not a string", file=path, key=qkey, field="type")
    text = q.get("text")
    if not isinstance(text, str) or not text.strip():
        skips.skip(DataError(f"empty question text {text!r}", file=path, key=qkey, field="text"))
        return None
    cleavages = []
    for cl in q.get("cleavages") or []:
        if isinstance(cl, dict) and _is_int(cl.get("id")) and _is_int(cl.get("value")):
            cleavages.append((cl["id"], cl["value"]))
    rapide = q.get("isInRapide")
    cname = cat.get("name") if isinstance(cat.get("name"), str) else None
    return SmartvoteQuestion(
        id=q["id"],
        text=text.strip(),
        type=qtype,
        category=cname.strip() if cname else None,
        category_id=cat.get("id") if _is_int(cat.get("id")) else None,
        questionnaire_id=questionnaire_id,
        in_rapide=rapide if isinstance(rapide, bool) else None,
        cleavages=tuple(cleavages),
        info=_plain(q.get("info")),
        source=path.name,
    )


def load_smartvote_questions(
    source: str | Path,
    *,
    strict: bool = False,
    skips: SkipLog | None = None,
) -> list[SmartvoteQuestion]:
    """Every question of the questionnaire, in questionnaire order, of every type.

    Args:
        source: the questionnaire JSON, or a folder holding exactly one
            ``*questionnaire*.json`` (e.g. the shared ``smartvote`` folder).
        strict: raise on a question without text instead of skipping it.
        skips: collects skipped questions.
    """
    skips = skips if skips is not None else SkipLog(strict=strict)
    path = find_questionnaire(source)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", file=path)
    if not isinstance(data.get("categories"), list):
        raise DataError("missing or not a list", file=path, field="categories")
    qid_of_file = data.get("id") if _is_int(data.get("id")) else None
    out: list[SmartvoteQuestion] = []
    seen: set[int] = set()
    for ci, cat in enumerate(data["categories"]):
        ckey = f"category {cat.get('id', ci) if isinstance(cat, dict) else ci}"
        if not isinstance(cat, dict):
            raise DataError(
                f"category is a {type(cat).__name__}, not an object", file=path, key=ckey
            )
        if not isinstance(cat.get("questions"), list):
            raise DataError("missing or not a list", file=path, key=ckey, field="questions")
        for qi, q in enumerate(cat["questions"]):
            question = _question(q, qi, cat, ckey, path=path, seen=seen, questionnaire_id=qid_of_file, skips=skips)
            if question is not None:
                out.append(question)
    return out


# --------------------------------------------------------------------------- party ideology


@cache
def _default_groups() -> dict[str, str]:
    return read_party_groups(IDEOLOGY_FILE)


def party_group(party: str | None, groups: dict[str, str] | None = None) -> str | None:
    """Left / Center / Right for a Swiss party abbreviation (any language), else ``None``."""
    if not party:
        return None
    groups = _default_groups() if groups is None else groups
    return groups.get(normalise_party(party))


# --------------------------------------------------------------------------- answers


@dataclass
class Candidate:
    id: str
    firstname: str | None = None
    lastname: str | None = None
    party: str | None = None


@dataclass
class RawAnswer:
    candidate: str
    question: int
    value: Any
    key: str  # where in the file, for errors
    comment: str | None = None
    weight: str | None = None


@dataclass
class AnswerExport:
    """What an answer export holds, before it is matched with the questionnaire."""

    path: Path
    answers: list[RawAnswer]
    candidates: dict[str, Candidate] = field(default_factory=dict)
    election: dict[str, Any] = field(default_factory=dict)


def _candidate_id(value: Any, *, file: Path, key: str, field_: str) -> str:
    # Ids are integers in the API and strings as JSON object keys; keep them as text.
    if _is_int(value) or (isinstance(value, str) and value.strip()):
        return str(value).strip()
    raise DataError(
        f"candidate id {value!r} is neither an integer nor a non-empty string",
        file=file,
        key=key,
        field=field_,
    )


def _question_id(value: Any, *, file: Path, key: str) -> int:
    if _is_int(value):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise DataError(
        f"question id {value!r} is not an integer", file=file, key=key, field="questionId"
    )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _answer_items(items: Any, rid: str, *, file: Path, key: str) -> list[RawAnswer]:
    # GET .../answers?responderId=<id> returns [[answer, ...]]: unwrap the outer list.
    if isinstance(items, list) and len(items) == 1 and isinstance(items[0], list):
        items = items[0]
    if not isinstance(items, list):
        raise DataError(
            f"expected a list of answers, got {type(items).__name__}",
            file=file,
            key=key,
            field="answers",
        )
    out = []
    for i, item in enumerate(items):
        where = f"{key}, answer {i}"
        if not isinstance(item, dict):
            raise DataError(
                f"answer is a {type(item).__name__}, not an object", file=file, key=where
            )
        for f in ("questionId", "value"):
            if f not in item:
                raise DataError("missing field", file=file, key=where, field=f)
        qid = _question_id(item["questionId"], file=file, key=where)
        out.append(
            RawAnswer(
                candidate=rid,
                question=qid,
                value=item["value"],
                key=f"candidate {rid}, question {qid}",
                comment=_text(item.get("comment")),
                weight=_text(item.get("weightId")),
            )
        )
    return out


def _read_candidates(data: dict[str, Any], path: Path, export: AnswerExport) -> None:
    """The export's ``candidates`` (with their parties' short names) into ``export.candidates``."""
    party_names: dict[str, str] = {}
    for i, p in enumerate(data.get("parties") or []):
        if not isinstance(p, dict) or "id" not in p:
            raise DataError(
                "expected an object with an id", file=path, key=f"party {i}", field="parties"
            )
        pid = _candidate_id(p["id"], file=path, key=f"party {i}", field_="id")
        abbr = (
            _text(p.get("abbreviation")) or _text(p.get("partyColorGroup")) or _text(p.get("name"))
        )
        if abbr:
            party_names[pid] = abbr

    for i, c in enumerate(data.get("candidates") or []):
        if not isinstance(c, dict) or "id" not in c:
            raise DataError(
                "expected an object with an id", file=path, key=f"candidate {i}", field="candidates"
            )
        cid = _candidate_id(c["id"], file=path, key=f"candidate {i}", field_="id")
        party = _text(c.get("party"))
        link = (c.get("_links") or {}).get("party") if isinstance(c.get("_links"), dict) else None
        if party is None and isinstance(link, str):
            # "_links": {"party": "/elections/95/parties/18800003412"} -> the party's id.
            party = party_names.get(link.rstrip("/").rsplit("/", 1)[-1])
        if cid in export.candidates:
            raise DataError("duplicate candidate id", file=path, key=f"candidate {cid}", field="id")
        export.candidates[cid] = Candidate(
            cid, _text(c.get("firstname")), _text(c.get("lastname")), party
        )


def __read_json_export(path: Path) -> AnswerExport:
    data = read_json(path)
    if not isinstance(data, dict) or "answers" not in data:
        raise DataError(
            f"expected a JSON object with an 'answers' field: {ANSWER_LAYOUT}",
            file=path,
            field="answers",
        )
    export = AnswerExport(path=path, answers=[])
    election = data.get("election")
    if election is not None and not isinstance(election, dict):
        raise DataError("expected an object", file=path, field="election")
    export.election = election or {}

    _read_candidates(data, path, export)

    answers = data["answers"]
    if isinstance(answers, dict):
        for rid, items in answers.items():
            rid = _candidate_id(rid, file=path, key=f"candidate {rid}", field_="answers")
            export.answers += _answer_items(items, rid, file=path, key=f"candidate {rid}")
    elif isinstance(answers, list):
        for i, entry in enumerate(answers):
            if not isinstance(entry, dict):
                raise DataError(
                    f"entry is a {type(entry).__name__}, not an object",
                    file=path,
                    key=f"answers entry {i}",
                )
            if "responderId" not in entry:
                raise DataError(
                    "missing field", file=path, key=f"answers entry {i}", field="responderId"
                )
            rid = _candidate_id(
                entry["responderId"], file=path, key=f"answers entry {i}", field_="responderId"
            )
            export.answers += _answer_items(
                entry.get("answers"), rid, file=path, key=f"candidate {rid}"
            )
            if rid not in export.candidates:
                export.candidates[rid] = Candidate(
                    rid,
                    _text(entry.get("firstname")),
                    _text(entry.get("lastname")),
                    _text(entry.get("party")),
                )
    else:
        raise DataError(
            f"expected an object or a list, got {type(answers).__name__}",
            file=path,
            field="answers",
        )
    return export


def _read_csv_export(path: Path) -> AnswerExport:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc})", file=path) from None
    first = text.splitlines()[0] if text.strip() else ""
    # The separator is the one of , ; tab that the header line uses most.
    delimiter = max(",;\t", key=first.count)
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    missing = [
        c for c in ("responderId", "questionId", "value") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; columns are {reader.fieldnames}; expected {ANSWER_LAYOUT}",
            file=path,
        )
    export = AnswerExport(path=path, answers=[])
    for line, row in enumerate(reader, start=2):
        where = f"line {line}"
        rid = _candidate_id(row["responderId"], file=path, key=where, field_="responderId")
        qid = _question_id(row["questionId"], file=path, key=where)
        raw = (row["value"] or "").strip()
        value: Any = None
        if raw:
            try:
                value = float(raw)
                value = int(value) if value.is_integer() else value
            except ValueError:
                value = raw  # refused with the file, key and field below
        export.answers.append(
            RawAnswer(
                rid,
                qid,
                value,
                f"candidate {rid}, question {qid} ({where})",
                _text(row.get("comment")),
            )
        )
        cand = export.candidates.setdefault(rid, Candidate(rid))
        for attr in ("firstname", "lastname", "party"):
            if getattr(cand, attr) is None:
                setattr(cand, attr, _text(row.get(attr)))
    return export


def read_answer_export(path: str | Path) -> AnswerExport:
    """Read a candidate answer export (JSON or CSV, see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing answer file; expected {ANSWER_LAYOUT}", file=path)
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return _read_csv_export(path)
    return __read_json_export(path)


def binarise(value: Any, *, file: Path | str, key: str) -> tuple[str | None, str | None]:
    """A stored answer value -> (``"Yes"``/``"No"`` or None for 50, four-point label or None).

    Raises `DataError` for anything that is not a number in 0..100.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(
            f"answer value {value!r} is not a number", file=file, key=key, field="value"
        )
    if not 0 <= value <= 100:
        raise DataError(
            f"answer value {value!r} is outside 0..100", file=file, key=key, field="value"
        )
    label = SCALE.get(int(value)) if float(value).is_integer() else None
    if value == 50:
        return None, label
    return ("Yes" if value > 50 else "No"), label


# --------------------------------------------------------------------------- election name


def _elections_csv(folder: Path) -> list[list[str]]:
    """Rows ``id, name, date, url`` of jvamvas/smartvote-api's elections.csv under ``folder``."""
    for path in sorted(folder.rglob("elections.csv")) if folder.is_dir() else []:
        with path.open(newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if len(row) >= 4]
    return []


def _election_info(
    export: AnswerExport, questionnaire: Path, source: Path, skips: SkipLog
) -> dict[str, Any]:
    """Name, date and id of the election, from the export, else from elections.csv."""
    info = {
        k: export.election.get(k)
        for k in ("id", "name", "date", "identifier")
        if export.election.get(k) is not None
    }
    if info.get("name") and info.get("date"):
        return info
    rows = _elections_csv(source if source.is_dir() else source.parent)
    wanted_id = str(info["id"]) if "id" in info else None
    ident = info.get("identifier")
    if ident is None:
        # Questionnaire snapshots are named after the client's constants: ..._CH_NR_15.json -> 15_ch_nr.
        m = re.search(r"_([A-Z]{2})_([A-Z]{2,3})_([0-9]{2})\.json$", questionnaire.name)
        ident = f"{m.group(3)}_{m.group(1)}_{m.group(2)}".lower() if m else None
    for row in rows:
        if (wanted_id is not None and row[0].strip() == wanted_id) or (
            wanted_id is None and ident and f"/{ident}/" in row[3]
        ):
            info.setdefault("id", int(row[0]) if row[0].strip().isdigit() else row[0].strip())
            info.setdefault("name", row[1].strip())
            info.setdefault("date", row[2].strip())
            info.setdefault("identifier", ident)
            return info
    skips.note(
        "election unknown (no 'election' in the answer export, none found in elections.csv): context None"
    )
    return info


# --------------------------------------------------------------------------- loader


def _answers_by_candidate(
    export: Any, questions: dict[int, SmartvoteQuestion], yes_no: dict[int, SmartvoteQuestion], questionnaire: Path
) -> dict[str, dict[int, RawAnswer]]:
    """Candidate -> question -> answer, every answer checked first: bad input is an error wherever it is."""
    by_candidate: dict[str, dict[int, RawAnswer]] = {}
    for a in export.answers:
        if a.question not in questions:
            raise DataError(
                f"answer to question {a.question}, which is not in the questionnaire {questionnaire.name}",
                file=export.path,
                key=a.key,
                field="questionId",
            )
        if a.value is not None and a.question in yes_no:
            # Only yes/no answers are checked: the scale of BUDGET answers is not documented.
            binarise(a.value, file=export.path, key=a.key)
        seen = by_candidate.setdefault(a.candidate, {})
        if a.question in seen:
            raise DataError(
                "second answer of the candidate to this question",
                file=export.path,
                key=a.key,
                field="questionId",
            )
        seen[a.question] = a
    if not by_candidate:
        raise DataError(f"no answers; expected {ANSWER_LAYOUT}", file=export.path, field="answers")
    return by_candidate


def _usable_answers(
    rid: str, answers: dict[int, RawAnswer], yes_no: dict[int, SmartvoteQuestion], file: Path, skips: SkipLog
) -> list[tuple[SmartvoteQuestion, RawAnswer, str, str | None]]:
    """One candidate's binarised yes/no answers; no answer and the midpoint are skipped."""
    usable: list[tuple[SmartvoteQuestion, RawAnswer, str, str | None]] = []
    for qid, q in yes_no.items():
        a = answers.get(qid)
        if a is None or a.value is None:
            skips.skip(
                DataError(
                    "the candidate gave no answer",
                    file=file,
                    key=f"candidate {rid}, question {qid}",
                    field="value",
                )
            )
            continue
        option, label = binarise(a.value, file=file, key=a.key)
        if option is None:
            skips.skip(
                DataError(
                    f"value {a.value!r} is the midpoint: neither yes nor no",
                    file=file,
                    key=a.key,
                    field="value",
                )
            )
            continue
        if label is None:
            skips.note("value not on the 0/25/75/100 scale, binarised at 50")
        usable.append((q, a, option, label))
    return usable


def _record(rid: str, q: SmartvoteQuestion, a: RawAnswer, option: str, label: str | None, *, cand: Candidate,
            group: str | None, split: str, context: str | None, election: dict[str, Any], source: str) -> AnswerRecord:
    """One candidate's binarised answer to one question."""
    return question_answer(
        DATASET, (rid, q.id), q, subject=rid, group=group, answer=option, options=OPTIONS, split=split,
        context=context, source=source,
        meta={
            "candidate_id": rid,
            "firstname": cand.firstname,
            "lastname": cand.lastname,
            "party": cand.party,
            "election": election.get("name"),
            "election_id": election.get("id"),
            "date": election.get("date"),
            "questionnaire_id": q.questionnaire_id,
            "category": q.category,
            "raw_value": a.value,
            "raw_label": label,
            "comment": a.comment,
            "weight": a.weight,
        },
    )


def load_smartvote(
    source: str | Path,
    *,
    strict: bool = False,
    skips: SkipLog | None = None,
    answers: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    ideology: str | Path | None = None,
) -> list[AnswerRecord]:
    """Candidates' binarised answers to the questionnaire's yes/no questions.

    Args:
        source: the questionnaire JSON, or a folder holding one (the shared
            ``smartvote`` folder).
        answers: the candidate answer export (JSON or CSV, see the module
            docstring). Required: the data folder has no answers.
        strict: raise on the first skipped question or answer.
        skips: collects what was skipped and why; a warning with the counts is logged.
        seed, test_fraction: the per-candidate split (`split_questions`).
        ideology: a YAML party -> group mapping replacing the shipped one.
    """
    skips = skips if skips is not None else SkipLog(strict=strict)
    source = Path(source)
    questionnaire = find_questionnaire(source)
    if answers is None:
        raise DataError(
            "smartvote needs candidate answers, which the questionnaire does not contain: "
            f"pass answers=<file>, {ANSWER_LAYOUT}",
            file=source,
            field="answers",
        )
    questions = {q.id: q for q in load_smartvote_questions(questionnaire, skips=skips)}
    export = read_answer_export(answers)
    groups = read_party_groups(Path(ideology)) if ideology is not None else None
    election = _election_info(export, questionnaire, source, skips)
    context = (
        f"{election['name']} {str(election['date'])[:4]}"
        if election.get("name") and election.get("date")
        else None
    )
    rel = export.path.name

    yes_no = {qid: q for qid, q in questions.items() if q.is_yes_no}
    for q in questions.values():
        if not q.is_yes_no:
            # By design (BUDGET items ask for a spending level), so a note, not a skip that strict=True would raise.
            skips.note(f"{q.type} question left out (not a yes/no question)")

    by_candidate = _answers_by_candidate(export, questions, yes_no, questionnaire)
    records: list[AnswerRecord] = []
    for rid in sorted(by_candidate, key=lambda r: (len(r), r)):
        cand = export.candidates.get(rid, Candidate(rid))
        group = party_group(cand.party, groups)
        if group is None:
            skips.note(UNMAPPED_NOTE)
        usable = _usable_answers(rid, by_candidate[rid], yes_no, export.path, skips)
        split = split_questions(
            rid, [q.key for q, _, _, _ in usable], seed=seed, test_fraction=test_fraction
        )
        records += [_record(rid, q, a, option, label, cand=cand, group=group, split=split[q.key], context=context,
                            election=election, source=rel) for q, a, option, label in usable]
    n_ignored = sum(1 for per in by_candidate.values() for qid in per if qid not in yes_no)
    if n_ignored:
        skips.notes["answer to a question that is not yes/no (left out)"] += n_ignored
    skips.warn(f"smartvote {export.path}")
    return require_records(records, source=export.path, skips=skips)
