"""Wahl-o-Mat (Germany) -> `AnswerRecord`s: each party's answer to each thesis.

The source is the qual-o-mat-data release (github.com/gockelhahn/qual-o-mat-data),
which converts every Wahl-o-Mat of the Bundeszentrale für politische Bildung
since 2002 into one stable JSON layout (JSON schemas in its ``schema/`` folder)::

    election.json             [{id, name, date, path: "data/<year>/<region>"}]
    list.json                 deprecated list of the same paths (not read)
    data/<year>/<region>/
        overview.json         {title, date, info, slug, data_source}
        party.json            [{id, name (short name), longname}]
        statement.json        [{id, category (id or null), label (short title), text}]
        answer.json           [{id, message}]: 0 "Stimme zu", 1 "Stimme nicht zu", 2 "Neutral"
        opinion.json          [{id, party, statement, answer, comment (id or null)}]
        comment.json          [{id, text}]: the party's justification (absent for 2002)
        category.json         [{id, label}] (only some elections)

Ids are local to their file and election. One record is made per
(election, party, statement) with options ``("Yes", "Neutral", "No")``; the
answer codes are read from each election's ``answer.json`` by their message
("Stimme zu" -> Yes, "Neutral" -> Neutral, "Stimme nicht zu" -> No) rather
than assumed, so a release that renumbers them is still read correctly.

Each party *in one election* is one individual: ``subject`` is the party's
short name, ``context`` names the election ("Bundestagswahl 2021"), and
``question_key`` (``"<year>/<region>/<statement id>"``) carries the election,
so the per-individual split from `opinbench.data.splits.split_questions` is
made over that party's theses in that election only. ``meta["individual"]``
(``"<year>/<region>:<party>"``) names the individual explicitly.

``subject_group`` (Left / Center / Right) comes from the shipped mapping
``resources/party_ideology_de.yaml`` (see its header for the basis); parties
it does not list get ``None`` and are counted in the `SkipLog` notes.

What goes wrong, and what happens:

* missing or malformed files, wrong JSON shapes, duplicate ids, an answer code
  that ``answer.json`` does not define (or defines with an unknown message), an
  opinion for a party or thesis that does not exist, two opinions for one
  (party, thesis) pair -> `DataError` naming file, key and field;
* a thesis with no text, a party that gave no answer to a thesis (missing
  opinion, or ``answer: null``), or an election listed in ``election.json``
  whose folder is absent -> skipped and counted in the `SkipLog` (raised with
  ``strict=True``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from opinbench.data.files import read_json
from opinbench.data.records import AnswerRecord, make_record, require_records
from opinbench.data.splits import DEFAULT_SEED, DEFAULT_TEST_FRACTION, split_questions
from opinbench.errors import ConfigError, DataError, SkipLog

DATASET = "wom"
OPTIONS = ("Yes", "Neutral", "No")
GROUPS = ("Left", "Center", "Right")
IDEOLOGY_FILE = Path(__file__).parent / "resources" / "party_ideology_de.yaml"

# answer.json messages (compared case- and space-insensitively) -> option.
ANSWER_MESSAGES = {"stimme zu": "Yes", "neutral": "Neutral", "stimme nicht zu": "No"}

UNMAPPED_NOTE = ("party in an election without an ideology group (subject_group None): kept, "
                 "scored overall but in no Left/Center/Right breakdown")

_ELECTION_PATH = re.compile(r"^data/(?P<year>[0-9]{4})/(?P<region>[A-Za-z0-9_-]+)$")


# --------------------------------------------------------------------------- party ideology


def normalise_party(name: str) -> str:
    """Party name -> lookup key: case-folded, white space collapsed and removed
    around "/", trailing dots dropped ("CDU / CSU" == "CDU/CSU", "DIE LINKE." == "Die Linke")."""
    key = re.sub(r"\s+", " ", name).strip().casefold()
    key = re.sub(r"\s*/\s*", "/", key)
    return key.rstrip(".").strip()


def read_party_groups(path: Path) -> dict[str, str]:
    """A ``{Left: [names], Center: [...], Right: [...]}`` YAML file -> ``{normalised name: group}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("missing file", file=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise DataError(f"expected a mapping of {list(GROUPS)} to lists of party names", file=path)
    out: dict[str, str] = {}
    for group, names in data.items():
        if group not in GROUPS:
            raise DataError(
                f"unknown group {group!r}; expected one of {list(GROUPS)}",
                file=path,
                key=str(group),
            )
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise DataError("expected a list of party names", file=path, key=group)
        for name in names:
            key = normalise_party(name)
            if out.get(key, group) != group:
                raise DataError(
                    f"{name!r} is listed under both {out[key]} and {group}", file=path, key=group
                )
            out[key] = group
    return out


@cache
def _default_groups() -> dict[str, str]:
    return read_party_groups(IDEOLOGY_FILE)


def party_group(
    name: str, longname: str | None = None, groups: dict[str, str] | None = None
) -> str | None:
    """Left / Center / Right for a German party by short name (then long name), else ``None``."""
    groups = _default_groups() if groups is None else groups
    for candidate in (name, longname):
        if candidate:
            group = groups.get(normalise_party(candidate))
            if group is not None:
                return group
    return None


# --------------------------------------------------------------------------- elections


@dataclass(frozen=True)
class Election:
    """One Wahl-o-Mat: where its files are and how to name it."""

    id: int | None  # id in election.json; None when read without one
    name: str  # "Bundestagswahl", "Landtagswahl Bayern", ...
    date: str  # ISO date of the election
    path: str  # "data/<year>/<region>", relative to the release root
    folder: Path

    @property
    def key(self) -> str:
        """``"<year>/<region>"``: the election's stable key."""
        return self.path.removeprefix("data/")

    @property
    def year(self) -> int:
        return int(self.key.split("/")[0])

    @property
    def region(self) -> str:
        return self.key.split("/")[1]

    @property
    def context(self) -> str:
        """What the prompt shows, e.g. ``"Bundestagswahl 2021"``."""
        return f"{self.name} {self.date[:4]}"


def _str_field(
    item: dict[str, Any], name: str, *, file: Path, key: str, allow_empty: bool = True
) -> str:
    if name not in item:
        raise DataError("missing field", file=file, key=key, field=name)
    value = item[name]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise DataError(
            f"expected a non-empty string, got {value!r}", file=file, key=key, field=name
        )
    return value


def _int_field(
    item: dict[str, Any], name: str, *, file: Path, key: str, nullable: bool = False
) -> int | None:
    if name not in item:
        raise DataError("missing field", file=file, key=key, field=name)
    value = item[name]
    if value is None and nullable:
        return None
    # bool is an int in Python; the schema means a real integer id.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(
            f"expected a non-negative integer, got {value!r}", file=file, key=key, field=name
        )
    return value


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, object)`` of a file holding a JSON list of objects; anything else is a `DataError`."""
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"expected a JSON list, got {type(rows).__name__}", file=path)
    for i, item in enumerate(rows):
        if not isinstance(item, dict):
            raise DataError(f"entry is a {type(item).__name__}, not an object", file=path, key=f"entry {i}")
        yield i, item


def _table(path: Path, fields: Iterable[str]) -> dict[int, dict[str, Any]]:
    """A ``[{id, ...}]`` file -> ``{id: item}``, refusing non-objects, missing fields and duplicate ids."""
    out: dict[int, dict[str, Any]] = {}
    for i, item in _entries(path):
        rid = _int_field(item, "id", file=path, key=f"entry {i}")
        assert rid is not None
        for f in fields:
            if f not in item:
                raise DataError("missing field", file=path, key=f"id {rid}", field=f)
        if rid in out:
            raise DataError("duplicate id", file=path, key=f"id {rid}", field="id")
        out[rid] = item
    return out


def _election_from_overview(folder: Path, path: str, election_id: int | None) -> Election:
    file = folder / "overview.json"
    overview = read_json(file)
    if not isinstance(overview, dict):
        raise DataError("expected a JSON object", file=file)
    name = _str_field(overview, "title", file=file, key=path, allow_empty=False).strip()
    date = _str_field(overview, "date", file=file, key=path, allow_empty=False).strip()
    return Election(election_id, name, date, path, folder)


def find_elections(source: str | Path, skips: SkipLog | None = None) -> list[Election]:
    """The elections under ``source``, oldest first.

    ``source`` is the release root (the folder with ``election.json``), a
    folder holding ``wahl-o-mat/``, or one election folder
    (``data/<year>/<region>``). Without ``election.json`` the
    ``data/<year>/<region>`` folders are scanned and named from their
    ``overview.json``. A listed election whose folder is missing is skipped.
    """
    skips = skips if skips is not None else SkipLog()
    source = Path(source)
    if not source.exists():
        raise DataError("no such file or directory", file=source)
    if (source / "party.json").is_file() or (source / "opinion.json").is_file():
        # One election folder; take its id and name from the release around it if there is one.
        root = source.parent.parent.parent
        path = f"data/{source.parent.name}/{source.name}"
        if (root / "election.json").is_file():
            for e in find_elections(root, SkipLog()):
                if e.path == path:
                    return [e]
        return [_election_from_overview(source, path, None)]
    for root in (source, source / "wahl-o-mat"):
        if (root / "election.json").is_file():
            return _listed_elections(root, skips)
    for root in (source, source / "wahl-o-mat"):
        if (root / "data").is_dir():
            found = [
                _election_from_overview(folder, f"data/{folder.parent.name}/{folder.name}", None)
                for folder in sorted((root / "data").glob("*/*"))
                if folder.is_dir() and (folder / "opinion.json").is_file()
            ]
            if found:
                return sorted(found, key=lambda e: (e.date, e.path))
    raise DataError(
        "no Wahl-o-Mat data found: expected election.json and data/<year>/<region>/ (qual-o-mat-data layout)",
        file=source,
    )


def _listed_elections(root: Path, skips: SkipLog) -> list[Election]:
    file = root / "election.json"
    out: list[Election] = []
    seen: set[int] = set()
    for i, item in _entries(file):
        eid = _int_field(item, "id", file=file, key=f"entry {i}")
        assert eid is not None
        key = f"election {eid}"
        if eid in seen:
            raise DataError("duplicate id", file=file, key=key, field="id")
        seen.add(eid)
        name = _str_field(item, "name", file=file, key=key, allow_empty=False).strip()
        date = _str_field(item, "date", file=file, key=key, allow_empty=False).strip()
        path = _str_field(item, "path", file=file, key=key, allow_empty=False).strip().strip("/")
        if not _ELECTION_PATH.match(path):
            raise DataError(
                f"{path!r} is not data/<year>/<region>", file=file, key=key, field="path"
            )
        folder = root / path
        if not folder.is_dir():
            skips.skip(
                DataError(f"election folder {path!r} is missing", file=file, key=key, field="path")
            )
            continue
        out.append(Election(eid, name, date, path, folder))
    return sorted(out, key=lambda e: (e.date, e.path))


def select_elections(elections: list[Election], wanted: Any) -> list[Election]:
    """Keep the elections matching ``wanted``: an election.json id (int), a
    ``"<year>/<region>"`` or ``"data/<year>/<region>"`` path, a year
    (``"2021"`` or 2021 when no id matches), or a comma-separated string or list of these."""
    if wanted is None:
        return elections
    if isinstance(wanted, (str, int)):
        wanted = (
            [w.strip() for w in wanted.split(",") if w.strip()]
            if isinstance(wanted, str)
            else [wanted]
        )
    keep: list[Election] = []
    for sel in wanted:
        if isinstance(sel, bool) or not isinstance(sel, (str, int)):
            raise ConfigError(
                f"election selector {sel!r} is not an id, a year or a <year>/<region> path"
            )
        text = str(sel).strip().strip("/").removeprefix("data/")
        hits = [e for e in elections if isinstance(sel, int) and e.id == sel]
        hits = hits or [e for e in elections if e.key == text or str(e.year) == text]
        if not hits:
            known = ", ".join(e.key for e in elections)
            raise ConfigError(f"no Wahl-o-Mat election matches {sel!r}; known: {known}")
        keep += [e for e in hits if e not in keep]
    return sorted(keep, key=lambda e: (e.date, e.path))


# --------------------------------------------------------------------------- one election


def _answer_codes(folder: Path) -> dict[int, tuple[str, str]]:
    """answer.json -> ``{code: (option, message)}``; an unknown message is refused."""
    file = folder / "answer.json"
    out = {}
    for code, item in _table(file, ("message",)).items():
        message = _str_field(item, "message", file=file, key=f"id {code}", allow_empty=False)
        option = ANSWER_MESSAGES.get(re.sub(r"\s+", " ", message).strip().casefold())
        if option is None:
            raise DataError(
                f"unknown answer message {message!r}; expected one of {sorted(ANSWER_MESSAGES)}",
                file=file,
                key=f"id {code}",
                field="message",
            )
        out[code] = (option, message)
    return out


def _clean_comment(text: str) -> str | None:
    # The release wraps most party comments in literal double quotes; drop one pair.
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    return text or None


def _party_names(parties: dict[int, dict[str, Any]], file: Path) -> dict[int, str]:
    """Party id -> short name, the subject, so it must be unique within the election."""
    names: dict[int, str] = {}
    for pid, party in parties.items():
        name = _str_field(party, "name", file=file, key=f"id {pid}", allow_empty=False).strip()
        if name in names.values():
            raise DataError(f"short name {name!r} is used twice", file=file, key=f"id {pid}", field="name")
        names[pid] = name
    return names


def _usable_statements(statements: dict[int, dict[str, Any]], file: Path, skips: SkipLog) -> dict[int, str]:
    """Statement id -> thesis text; statements without text cannot be asked (skipped)."""
    usable: dict[int, str] = {}
    for sid, statement in statements.items():
        text = statement["text"]
        if not isinstance(text, str) or not text.strip():
            skips.skip(DataError(f"empty thesis text {text!r}", file=file, key=f"id {sid}", field="text"))
            continue
        usable[sid] = text.strip()
    return usable


def _answered(
    opinions: dict[int, dict[str, Any]],
    *,
    parties: dict[int, Any],
    statements: dict[int, Any],
    codes: dict[int, Any],
    comments: dict[int, dict[str, Any]] | None,
    file: Path,
) -> dict[tuple[int, int], tuple[int, dict[str, Any]]]:
    """(party id, statement id) -> (opinion id, opinion), every reference checked."""
    answered: dict[tuple[int, int], tuple[int, dict[str, Any]]] = {}
    for oid, op in opinions.items():
        key = f"id {oid}"
        pid = _int_field(op, "party", file=file, key=key)
        sid = _int_field(op, "statement", file=file, key=key)
        code = _int_field(op, "answer", file=file, key=key, nullable=True)
        cid = _int_field(op, "comment", file=file, key=key, nullable=True)
        assert pid is not None and sid is not None
        if pid not in parties:
            raise DataError(f"party {pid} is not in party.json", file=file, key=key, field="party")
        if sid not in statements:
            raise DataError(f"thesis {sid} is not in statement.json", file=file, key=key, field="statement")
        if code is not None and code not in codes:
            raise DataError(f"answer code {code} is not defined in answer.json (codes: {sorted(codes)})",
                            file=file, key=key, field="answer")
        if cid is not None and comments is None:
            raise DataError(f"comment {cid} given but comment.json is missing", file=file, key=key, field="comment")
        if cid is not None and comments is not None and cid not in comments:
            raise DataError(f"comment {cid} is not in comment.json", file=file, key=key, field="comment")
        if (pid, sid) in answered:
            other = answered[(pid, sid)][0]
            raise DataError(f"second opinion of party {pid} on thesis {sid} (first: id {other})",
                            file=file, key=key, field="statement")
        answered[(pid, sid)] = (oid, op)
    return answered


def _record(
    election: Election, *, pid: int, sid: int, oid: int, op: dict[str, Any], name: str, group: str | None,
    longname: str | None, qkey: str, question: str, split: str, statement: dict[str, Any],
    codes: dict[int, Any], categories: dict[int, dict[str, Any]], comments: dict[int, dict[str, Any]] | None,
    source: str,
) -> AnswerRecord:
    """One party's answer to one thesis."""
    option, message = codes[op["answer"]]
    cat = statement.get("category")
    category = categories.get(cat, {}).get("label") if isinstance(cat, int) and not isinstance(cat, bool) else None
    comment = None
    if op["comment"] is not None and comments is not None:
        raw = comments[op["comment"]]["text"]
        comment = _clean_comment(raw) if isinstance(raw, str) else None
    label = statement.get("label")
    return make_record(
        AnswerRecord,
        DATASET,
        (election.key, pid, sid),
        subject=name,
        subject_group=group,
        question_key=qkey,
        question=question,
        options=OPTIONS,
        answer=option,
        split=split,
        context=election.context,
        meta={
            "individual": f"{election.key}:{name}",
            "election": election.name,
            "election_id": election.id,
            "election_key": election.key,
            "date": election.date,
            "year": election.year,
            "region": election.region,
            "party_id": pid,
            "party_longname": longname,
            "statement_id": sid,
            "label": label.strip() if isinstance(label, str) else None,
            "category": category,
            "comment": comment,
            "raw_answer": op["answer"],
            "raw_message": message,
            "opinion_id": oid,
        },
        source=source,
    )


def iter_election(
    election: Election,
    *,
    skips: SkipLog,
    root: Path,
    groups: dict[str, str] | None = None,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[AnswerRecord]:
    """The records of one election, by party id then statement id."""
    folder = election.folder
    codes = _answer_codes(folder)
    parties = _table(folder / "party.json", ("name", "longname"))
    statements = _table(folder / "statement.json", ("text",))
    categories: dict[int, dict[str, Any]] = {}
    if (folder / "category.json").is_file():
        categories = _table(folder / "category.json", ("label",))
    comments: dict[int, dict[str, Any]] | None = None
    if (folder / "comment.json").is_file():
        comments = _table(folder / "comment.json", ("text",))
    opinion_file = folder / "opinion.json"
    opinions = _table(opinion_file, ("party", "statement", "answer", "comment"))
    if not opinions and parties and statements:
        # every (party, thesis) would be skipped one by one: the file itself is wrong
        raise DataError("no opinions: the list is empty", file=opinion_file)
    source = str(opinion_file.relative_to(root)) if opinion_file.is_relative_to(root) else str(opinion_file)
    names = _party_names(parties, folder / "party.json")
    usable = _usable_statements(statements, folder / "statement.json", skips)
    answered = _answered(opinions, parties=parties, statements=statements, codes=codes, comments=comments,
                         file=opinion_file)
    records: list[AnswerRecord] = []
    for pid in sorted(parties):
        name = names[pid]
        longname = parties[pid]["longname"].strip() if isinstance(parties[pid]["longname"], str) else None
        group = party_group(name, longname, groups)
        if group is None:
            # One count per party and election; the names are in the records (subject_group None).
            skips.note(UNMAPPED_NOTE)
        rows: list[tuple[int, int, dict[str, Any]]] = []
        for sid in sorted(usable):
            hit = answered.get((pid, sid))
            if hit is None or hit[1]["answer"] is None:
                where = f"party {pid} ({name}), thesis {sid}"
                skips.skip(DataError("the party gave no answer", file=opinion_file, key=where, field="answer"))
                continue
            rows.append((sid, hit[0], hit[1]))
        qkeys = {sid: f"{election.key}/{sid}" for sid, _, _ in rows}
        split = split_questions(name, qkeys.values(), seed=seed, test_fraction=test_fraction)
        records += [
            _record(election, pid=pid, sid=sid, oid=oid, op=op, name=name, group=group, longname=longname,
                    qkey=qkeys[sid], question=usable[sid], split=split[qkeys[sid]], statement=statements[sid],
                    codes=codes, categories=categories, comments=comments, source=source)
            for sid, oid, op in rows
        ]
    return records


# --------------------------------------------------------------------------- loader


def load_wahlomat(
    source: str | Path,
    *,
    strict: bool = False,
    skips: SkipLog | None = None,
    elections: Any = None,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    ideology: str | Path | None = None,
) -> list[AnswerRecord]:
    """Every party's answer to every thesis, over all (or the selected) elections.

    Args:
        source: the qual-o-mat-data root (with ``election.json``), a folder
            holding ``wahl-o-mat/``, or one ``data/<year>/<region>`` folder.
        strict: raise on the first skipped answer, thesis or election.
        skips: collects what was skipped and why (and, as notes, the parties
            without an ideology group); a warning with the counts is logged.
        elections: ``None`` for all, or ids / ``"<year>/<region>"`` paths /
            years (see `select_elections`).
        seed, test_fraction: the per-party split (`split_questions`).
        ideology: a YAML party -> group mapping replacing the shipped one.
    """
    skips = skips if skips is not None else SkipLog(strict=strict)
    source = Path(source)
    found = select_elections(find_elections(source, skips), elections)
    groups = read_party_groups(Path(ideology)) if ideology is not None else None
    records: list[AnswerRecord] = []
    for election in found:
        root = election.folder.parent.parent.parent
        records += iter_election(
            election, skips=skips, root=root, groups=groups, seed=seed, test_fraction=test_fraction
        )
    skips.warn(f"Wahl-o-Mat {source}")
    return require_records(records, source=source, skips=skips)
