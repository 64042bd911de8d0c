"""ANES pilot studies (respondent level) -> `AnswerRecord`s.

Source format
-------------
The American National Election Studies publish each pilot study as one CSV file
with one row per respondent and one column per variable, named
``anes_<study>_<year>_<version>.csv`` (e.g. ``anes_pilot_2022_20221214.csv``;
ANES's own downloads are called ``anes_pilot_2022_csv_20221214.csv``). The
release (``pilot_2022``) is read from that name. Releases differ in how answers
are written:

* the 2022 pilot has numeric codes (``1``, ``2``, ``-1``, ``-7``) and no value
  labels; negative codes are not answers (``-1`` inapplicable, ``-7`` no answer,
  ``-8`` don't know, ``-9`` refused);
* the 2024 pilot has the text labels instead (``Strongly favor``,
  ``inapplicable, legitimate skip``, ``No Answer``), some cut at 80 characters.

Both files carry ``caseid`` (the respondent) and the survey weight ``weight``,
which is blank for respondents ANES did not weight (partial interviews and the
unweighted completes of 2024). The files start with a byte-order mark.

Mapping files
-------------
Which columns are policy questions, how each is asked and how its answers are
recoded is data, not code: one YAML file per release, shipped as
``opinbench/data/resources/anes_mapping_<release>.yaml`` (read them for the choices made)
and replaceable with ``mapping=`` (a file, a list of files or a folder of
``anes_*.yaml``), which is also how a user adds a release. A mapping names

* ``release``, ``context`` (shown to the model), ``respondent_id``, ``weight``;
* ``missing``: values that are not answers (skipped and counted, never errors);
* ``ideology``: the self-placement variable and its values per group
  (``Left``/``Center``/``Right``); values under ``none`` (e.g. "Not sure") give no
  group, which is counted;
* ``questions``: ``{ANES variable: {question, columns, answers, missing, note}}``.
  ``columns`` defaults to the variable itself; several columns (a favor/oppose
  item and its strength follow-up) are joined with ``/`` into one value
  (``"1/2"``). ``answers`` sorts every substantive value into ``clear_yes``,
  ``lean_yes``, ``neutral``, ``lean_no`` and ``clear_no``.

Schemes
-------
Each answer becomes ``Yes``, ``Neutral`` or ``No`` under one of two schemes:

* ``conservative`` (default): only answers that clearly take a side count
  (``clear_*`` -> Yes/No) plus the explicit middle (``neutral`` -> Neutral);
  leaning answers are left out and counted;
* ``aggressive``: leaning answers count too (``lean_yes`` -> Yes, ``lean_no`` -> No).

The lean category is the weakest non-neutral answer on a side of the scale:
"a little" after "a great deal / moderately", "somewhat" beside "strongly", 3 and
5 on a seven-point scale. A scale with a single answer per side has none.

Records
-------
One record per (respondent, question) with a usable answer: ``subject`` is
``<release>:<caseid>``, ``subject_group`` the ideology group, ``weight`` the
survey weight (``None`` where blank, counted), ``meta`` the release, the raw
value, its category and the scheme. Splits are made per respondent with
`split_questions` over every question the respondent answered substantively
(leaning answers included), so a (respondent, question) pair falls into the same
split under both schemes.

Problems
--------
A missing file, a column the mapping names but the CSV lacks, and a malformed
mapping raise `DataError` naming file, key and field. A value that the mapping
does not know is a skipped answer (`SkipLog.skip`), which ``strict=True`` turns
into an error. Non-answers, leaning answers left out by the conservative scheme,
missing weights and missing ideology are counted as `SkipLog` notes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opinbench.data.files import csv_rows
from opinbench.data.records import AnswerRecord, question_answer, require_records
from opinbench.data.splits import DEFAULT_SEED, DEFAULT_TEST_FRACTION, split_questions
from opinbench.errors import ConfigError, DataError, SkipLog

DATASET = "anes"
OPTIONS = ("Yes", "Neutral", "No")
GROUPS = ("Left", "Center", "Right")
CATEGORIES = ("clear_yes", "lean_yes", "neutral", "lean_no", "clear_no")
SCHEMES: dict[str, dict[str, str]] = {
    "conservative": {"clear_yes": "Yes", "neutral": "Neutral", "clear_no": "No"},
    "aggressive": {
        "clear_yes": "Yes",
        "lean_yes": "Yes",
        "neutral": "Neutral",
        "lean_no": "No",
        "clear_no": "No",
    },
}
RESOURCES = Path(__file__).parent / "resources"
JOIN = "/"

# anes_pilot_2022_20221214.csv, anes_pilot_2022_csv_20221214.csv -> "pilot_2022"
_FILE_NAME = re.compile(r"^anes_(?P<release>[a-z][a-z0-9]*_\d{4})(?:_.*)?\.csv$", re.IGNORECASE)
_INTEGRAL = re.compile(r"^([+-]?\d+)\.0*$")
_TOP_KEYS = {
    "release", "context", "respondent_id", "weight", "missing", "ideology", "questions", "note", "source",
}
_QUESTION_KEYS = {"question", "columns", "answers", "missing", "note"}
_IDEOLOGY_KEYS = {"variable", "groups", "none", "note"}


# --------------------------------------------------------------------------- values


def norm_value(value: Any) -> str:
    """A cell or mapping value as compared: stripped, runs of white space collapsed, ``1.0`` -> ``1``.

    CSV cells are read as text (never as numbers), so ``"1"`` in the 2022 file and
    ``1`` in a YAML mapping meet as ``"1"``; a file re-saved by a tool that writes
    ``1.0`` still matches.
    """
    text = re.sub(r"\s+", " ", str(value)).strip()
    m = _INTEGRAL.match(text)
    return str(int(m.group(1))) if m else text


def release_of(path: str | Path) -> str | None:
    """``pilot_2022`` for ``anes_pilot_2022_20221214.csv``; ``None`` for other names."""
    m = _FILE_NAME.match(Path(path).name)
    return m.group("release").lower() if m else None


# --------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class Question:
    """One policy question of a release and the category of each of its values."""

    key: str
    text: str
    columns: tuple[str, ...]
    categories: dict[str, str]  # normalised (joined) value -> category
    missing: dict[str, str]  # values of this question that are not answers -> label


@dataclass(frozen=True)
class ReleaseMapping:
    """A parsed ``anes_<release>.yaml``."""

    release: str
    context: str
    respondent_id: str
    weight: str | None
    missing: dict[str, str]
    ideology_variable: str | None
    ideology_groups: dict[str, str]
    ideology_none: dict[str, str]
    questions: tuple[Question, ...]
    path: Path

    @property
    def columns(self) -> list[str]:
        """Every column the mapping reads, each once, in a stable order."""
        cols = [self.respondent_id]
        if self.weight:
            cols.append(self.weight)
        if self.ideology_variable:
            cols.append(self.ideology_variable)
        cols += [c for q in self.questions for c in q.columns]
        return list(dict.fromkeys(cols))


def _scalar(value: Any, *, file: Path, key: str, field: str) -> str:
    """A YAML scalar usable as a value; refuse what YAML 1.1 silently turned into something else."""
    if isinstance(value, bool):
        # Unquoted Yes/No/on/off are booleans in YAML 1.1; the original spelling is lost.
        raise DataError(
            f"{value!r} was read as a boolean; quote the value in the YAML file", file=file, key=key, field=field
        )
    if value is None or isinstance(value, (list, dict)):
        raise DataError(f"expected a text or number value, got {value!r}", file=file, key=key, field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{value!r} is not a usable value", file=file, key=key, field=field)
    text = norm_value(value)
    if not text:
        raise DataError("empty value", file=file, key=key, field=field)
    return text


def _labels(spec: Any, *, file: Path, key: str, field: str) -> dict[str, str]:
    """``missing``/``none`` lists or ``{value: label}`` dicts -> ``{normalised value: label}``."""
    if spec is None:
        return {}
    if isinstance(spec, (str, int, float)) and not isinstance(spec, bool):
        spec = [spec]
    if isinstance(spec, list):
        return {_scalar(v, file=file, key=key, field=field): norm_value(v) for v in spec}
    if isinstance(spec, dict):
        return {
            _scalar(v, file=file, key=key, field=field): norm_value(v if label is None else label)
            for v, label in spec.items()
        }
    raise DataError(f"expected a list or a mapping, got {type(spec).__name__}", file=file, key=key, field=field)


def _text(spec: dict, name: str, *, file: Path, key: str, required: bool = True) -> str | None:
    value = spec.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"expected a non-empty text, got {value!r}", file=file, key=key, field=name)
    return re.sub(r"\s+", " ", value).strip()


def _question(key: Any, spec: Any, *, file: Path) -> Question:
    if not isinstance(key, str) or not key.strip():
        raise DataError(
            f"question key {key!r} is not a variable name", file=file, key=str(key), field="questions"
        )
    key = key.strip()
    if not isinstance(spec, dict):
        raise DataError(f"expected a mapping with question and answers, got {spec!r}", file=file, key=key)
    unknown = sorted(set(map(str, spec)) - _QUESTION_KEYS)
    if unknown:
        raise DataError(
            f"unknown field(s) {unknown}; known: {sorted(_QUESTION_KEYS)}", file=file, key=key, field=unknown[0]
        )
    text = _text(spec, "question", file=file, key=key)
    columns = spec.get("columns", [key])
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list) or not all(isinstance(c, str) and c.strip() for c in columns) or not columns:
        raise DataError(
            f"expected a list of column names, got {columns!r}", file=file, key=key, field="columns"
        )
    answers = spec.get("answers")
    if not isinstance(answers, dict) or not answers:
        raise DataError("expected a mapping of answer categories", file=file, key=key, field="answers")
    categories: dict[str, str] = {}
    for cat, values in answers.items():
        if isinstance(cat, bool):
            raise DataError(
                f"category {cat!r} was read as a boolean (unquoted yes/no); use {', '.join(CATEGORIES)}",
                file=file, key=key, field="answers",
            )
        if cat not in CATEGORIES:
            raise DataError(
                f"unknown answer category {cat!r}; known: {', '.join(CATEGORIES)}",
                file=file, key=key, field="answers",
            )
        if not isinstance(values, list):
            values = [values]
        for v in values:
            value = _scalar(v, file=file, key=key, field=f"answers.{cat}")
            parts = value.split(JOIN)
            if len(columns) > 1 and len(parts) != len(columns):
                raise DataError(
                    f"{value!r} has {len(parts)} part(s) for {len(columns)} columns {columns}; "
                    f"join the values with {JOIN!r}",
                    file=file, key=key, field=f"answers.{cat}",
                )
            if len(columns) > 1:
                value = JOIN.join(norm_value(p) for p in parts)
            if value in categories:
                raise DataError(
                    f"{value!r} is listed under both {categories[value]} and {cat}",
                    file=file, key=key, field=f"answers.{cat}",
                )
            categories[value] = cat
    found = set(categories.values())
    if not found & {"clear_yes", "lean_yes"} or not found & {"clear_no", "lean_no"}:
        raise DataError(
            "a question needs answers on both the yes and the no side", file=file, key=key, field="answers"
        )
    missing = _labels(spec.get("missing"), file=file, key=key, field="missing")
    both = sorted(set(missing) & set(categories))
    if both:
        raise DataError(f"{both} listed as both an answer and missing", file=file, key=key, field="missing")
    return Question(key, text or "", tuple(c.strip() for c in columns), categories, missing)


def load_mapping(path: str | Path) -> ReleaseMapping:
    """Read and check one mapping file; see the module docstring for the format."""
    path = Path(path)
    if not path.is_file():
        raise DataError("mapping file not found", file=path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        message = f"invalid YAML ({exc})".replace("\n", " ")
        raise DataError(message, file=path, key=where, field="yaml") from None
    if not isinstance(doc, dict) or "questions" not in doc:
        # e.g. the persona file anes-mapping.yaml that comes with the 2022 CSV
        raise DataError("not an ANES release mapping (no 'questions' section)", file=path, field="questions")
    unknown = sorted(set(map(str, doc)) - _TOP_KEYS)
    if unknown:
        raise DataError(f"unknown field(s) {unknown}; known: {sorted(_TOP_KEYS)}", file=path, field=unknown[0])
    release = _text(doc, "release", file=path, key="release")
    release = (release or "").lower()
    if not re.fullmatch(r"[a-z][a-z0-9]*_\d{4}", release):
        raise DataError(
            f"release {release!r} is not like pilot_2022", file=path, key="release", field="release"
        )
    context = _text(doc, "context", file=path, key="context", required=False) or f"ANES {release}"
    respondent_id = _text(doc, "respondent_id", file=path, key="respondent_id") or ""
    weight = _text(doc, "weight", file=path, key="weight", required=False)
    missing = _labels(doc.get("missing"), file=path, key="missing", field="missing")

    ideology = doc.get("ideology")
    variable, groups, none = None, {}, {}
    if ideology is not None:
        if not isinstance(ideology, dict):
            raise DataError("expected a mapping with variable and groups", file=path, key="ideology")
        unknown = sorted(set(map(str, ideology)) - _IDEOLOGY_KEYS)
        if unknown:
            raise DataError(f"unknown field(s) {unknown}", file=path, key="ideology", field=unknown[0])
        variable = _text(ideology, "variable", file=path, key="ideology")
        raw_groups = ideology.get("groups")
        if not isinstance(raw_groups, dict) or not raw_groups:
            raise DataError(
                "expected {value: Left | Center | Right}", file=path, key="ideology", field="groups"
            )
        for v, g in raw_groups.items():
            if g not in GROUPS:
                raise DataError(
                    f"group {g!r} for {v!r} is not one of {GROUPS}", file=path, key="ideology", field="groups"
                )
            groups[_scalar(v, file=path, key="ideology", field="groups")] = g
        none = _labels(ideology.get("none"), file=path, key="ideology", field="none")

    questions_spec = doc.get("questions")
    if not isinstance(questions_spec, dict) or not questions_spec:
        raise DataError("expected a mapping of questions", file=path, key="questions", field="questions")
    questions = tuple(_question(k, v, file=path) for k, v in questions_spec.items())
    return ReleaseMapping(
        release=release,
        context=context,
        respondent_id=respondent_id,
        weight=weight,
        missing=missing,
        ideology_variable=variable,
        ideology_groups=groups,
        ideology_none=none,
        questions=questions,
        path=path,
    )


def shipped_mappings() -> dict[str, Path]:
    """``{release: path}`` of the mappings that ship with opinbench."""
    out = {}
    for p in sorted(RESOURCES.glob("anes_mapping_*.yaml")):
        out[p.stem[len("anes_mapping_"):].lower()] = p
    return out


def _mapping_paths(mapping: str | Path | Iterable[str | Path] | None) -> list[Path]:
    if mapping is None:
        return []
    if isinstance(mapping, (str, Path)):
        mapping = [mapping]
    paths: list[Path] = []
    for m in mapping:
        p = Path(m)
        if p.is_dir():
            found = sorted(p.glob("anes_*.yaml")) + sorted(p.glob("anes_*.yml"))
            if not found:
                raise DataError("no anes_*.yaml mapping in this folder", file=p, field="mapping")
            paths += found
        else:
            paths.append(p)
    return paths


# --------------------------------------------------------------------------- files


def _csvs_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() == ".csv" and p.name.lower().startswith("anes_")
    )


def find_csvs(source: str | Path) -> tuple[list[Path], Path]:
    """The ANES CSVs under ``source`` and the folder their ``source`` paths are relative to.

    ``source`` may be one CSV, a release folder (``anes/pilot_2022``), the ``anes``
    folder holding release folders, or a data root holding ``anes/``.
    """
    source = Path(source)
    if not source.exists():
        raise DataError("no such file or directory", file=source)
    if source.is_file():
        return [source], source.parent
    for base in (source, source / "anes"):
        if not base.is_dir():
            continue
        found = _csvs_in(base) + [p for sub in sorted(base.iterdir()) if sub.is_dir() for p in _csvs_in(sub)]
        if found:
            return found, base
    raise DataError(
        "no ANES CSV (anes_<study>_<year>_*.csv) in this folder or its release folders", file=source
    )


def _read(csv: Path, mapping: ReleaseMapping) -> dict[str, list[str]]:
    """The columns the mapping needs, as text, ``{column: values}`` in file order.

    Read by the shared CSV reader (`opinbench.data.files.csv_rows`): values arrive
    exactly as written ("-1", "1.0", ""), and a row whose field count differs from
    the header's (a truncated file) is a `DataError` naming it, never a partial
    respondent.
    """
    header, rows = csv_rows(csv)
    by_name = {str(c).strip(): c for c in header}
    wanted = {mapping.respondent_id: "respondent_id"}
    if mapping.weight:
        wanted[mapping.weight] = "weight"
    if mapping.ideology_variable:
        wanted.setdefault(mapping.ideology_variable, "ideology")
    for q in mapping.questions:
        for c in q.columns:
            wanted.setdefault(c, q.key)
    for col, key in wanted.items():
        if col not in by_name:
            raise DataError(
                f"column {col!r} named in {mapping.path.name} is not in the file",
                file=csv, key=key, field=col,
            )
    out: dict[str, list[str]] = {c: [] for c in mapping.columns}
    for _, row in rows:
        for c in mapping.columns:
            out[c].append(row[by_name[c]])
    return out


# --------------------------------------------------------------------------- records


def _describe(value: str, label: str) -> str:
    return value if label == value else f"{value} = {label}"


def _missing_label(value: str, question: Question, mapping: ReleaseMapping) -> str | None:
    """Why ``value`` (joined for multi-column questions) is not an answer, or ``None`` if it should be one."""
    for v in [value] + (value.split(JOIN) if len(question.columns) > 1 else []):
        if v == "":
            return "blank cell"
        label = question.missing.get(v) or mapping.missing.get(v)
        if label is not None:
            return _describe(v, label)
    return None


def _weight(raw: str, *, csv: Path, rid: str, mapping: ReleaseMapping, skips: SkipLog) -> float | None:
    text = raw.strip()
    if not text:
        skips.note(f"{mapping.release}: respondent without survey weight")
        return None
    try:
        w = float(text)
    except ValueError:
        w = math.nan
    if not math.isfinite(w) or w < 0:
        skips.skip(
            DataError(
                f"weight {raw!r} of respondent {rid} is not a non-negative number",
                file=csv, key=rid, field=mapping.weight,
            )
        )
        return None
    return w


def _group(raw: str, *, csv: Path, rid: str, mapping: ReleaseMapping, skips: SkipLog) -> str | None:
    if mapping.ideology_variable is None:
        return None
    value = norm_value(raw)
    group = mapping.ideology_groups.get(value)
    if group is not None:
        return group
    label = mapping.ideology_none.get(value) or mapping.missing.get(value)
    if label is not None or value == "":
        what = _describe(value, label) if label is not None else "blank cell"
        skips.note(f"{mapping.release}: respondent without ideology group ({mapping.ideology_variable} {what})")
    else:
        skips.skip(
            DataError(
                f"value {raw!r} of respondent {rid} is not in the ideology mapping",
                file=csv, key=rid, field=mapping.ideology_variable,
            )
        )
    return None


def _answered(table: dict[str, list[str]], row: int, rid: str, *, csv: Path, mapping: ReleaseMapping,
              skips: SkipLog) -> list[tuple[Question, str, str]]:
    """Substantive answers of one respondent: (question, joined raw value, category)."""
    answered: list[tuple[Question, str, str]] = []
    for q in mapping.questions:
        value = JOIN.join(norm_value(table[c][row]) for c in q.columns)
        category = q.categories.get(value)
        if category is not None:
            answered.append((q, value, category))
            continue
        label = _missing_label(value, q, mapping)
        if label is not None:
            skips.note(f"{mapping.release}: skipped non-answer {label}")
            continue
        skips.skip(
            DataError(
                f"value {value!r} of respondent {rid} is not in the mapping {mapping.path.name}",
                file=csv, key=q.key, field=JOIN.join(q.columns),
            )
        )
    return answered


def _record(subject: str, q: Question, value: str, category: str, option: str, *, group: str | None,
            split: str, weight: float | None, mapping: ReleaseMapping, scheme: str, ideology: str | None,
            source: str) -> AnswerRecord:
    """One respondent's answer to one question."""
    return question_answer(
        DATASET, (subject, q.key), q, subject=subject, group=group, answer=option, options=OPTIONS, split=split,
        context=mapping.context, weight=weight, source=source,
        meta={
            "release": mapping.release,
            "raw": value,
            "variables": list(q.columns),
            "category": category,
            "scheme": scheme,
            "ideology": ideology,
        },
    )


def iter_release(
    csv: Path,
    mapping: ReleaseMapping,
    *,
    scheme: str = "conservative",
    skips: SkipLog | None = None,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    rel: str | None = None,
) -> Iterator[AnswerRecord]:
    """Records of one release file, in file order of respondents, then mapping order of questions."""
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown ANES scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    skips = skips if skips is not None else SkipLog()
    to_option = SCHEMES[scheme]
    rel = rel or csv.name
    table = _read(csv, mapping)
    ids = table[mapping.respondent_id]
    seen: set[str] = set()
    for row, raw_id in enumerate(ids):
        rid = raw_id.strip()
        if not rid:
            # row + 2: the header is line 1 of the file
            where = f"row {row + 2}"
            skips.skip(DataError(f"{where} has no respondent id", file=csv, key=where, field=mapping.respondent_id))
            continue
        if rid in seen:
            skips.skip(
                DataError(
                    f"respondent {rid} appears twice; the later row is left out",
                    file=csv, key=rid, field=mapping.respondent_id,
                )
            )
            continue
        seen.add(rid)
        subject = f"{mapping.release}:{rid}"
        weight = None
        if mapping.weight:
            weight = _weight(table[mapping.weight][row], csv=csv, rid=rid, mapping=mapping, skips=skips)
        ideology_raw = table[mapping.ideology_variable][row] if mapping.ideology_variable else None
        group = None
        if ideology_raw is not None:
            group = _group(ideology_raw, csv=csv, rid=rid, mapping=mapping, skips=skips)

        answered = _answered(table, row, rid, csv=csv, mapping=mapping, skips=skips)
        # The split covers every substantive answer, leaning ones included, so that it
        # does not depend on the scheme.
        keys = [q.key for q, _, _ in answered]
        split = split_questions(subject, keys, seed=seed, test_fraction=test_fraction)
        n = 0
        for q, value, category in answered:
            option = to_option.get(category)
            if option is None:
                skips.note(f"{mapping.release}: leaning answer left out ({scheme} scheme)")
                continue
            n += 1
            ideology = None if ideology_raw is None else norm_value(ideology_raw)
            yield _record(subject, q, value, category, option, group=group, split=split[q.key], weight=weight,
                          mapping=mapping, scheme=scheme, ideology=ideology, source=rel)
        if n == 0:
            skips.note(f"{mapping.release}: respondent without a usable answer ({scheme} scheme)")


def _files_by_release(csvs: list[Path], given: list[ReleaseMapping], wanted: set[str] | None,
                      source: str | Path, skips: SkipLog) -> dict[str, Path]:
    """``{release: its CSV}``: the release from the file name (or the one mapping given for one
    file), only the ``wanted`` releases, one file each."""
    by_release: dict[str, Path] = {}
    for csv in csvs:
        release = release_of(csv)
        if release is None:
            if len(csvs) == 1 and len(given) == 1:
                release = given[0].release  # e.g. load_anes("my_extract.csv", mapping="mine.yaml")
            elif len(csvs) == 1:
                raise DataError(
                    "cannot tell the ANES release from the file name; expected anes_<study>_<year>_*.csv "
                    "(e.g. anes_pilot_2022_20221214.csv), or pass one mapping= file",
                    file=csv, field="file name",
                )
            else:
                skips.note(f"file not named anes_<study>_<year>_*.csv ignored: {csv.name}")
                continue
        if wanted is not None and release not in wanted:
            continue
        if release in by_release:
            raise DataError(
                f"two files for release {release}: {by_release[release].name} and {csv.name}",
                file=csv, key=release, field="release",
            )
        by_release[release] = csv
    if wanted is not None and wanted - set(by_release):
        raise DataError(
            f"no CSV for release(s) {sorted(wanted - set(by_release))}; found {sorted(by_release)}",
            file=source, field="releases",
        )
    return by_release


def load_anes(
    source: str | Path,
    *,
    strict: bool = False,
    skips: SkipLog | None = None,
    scheme: str = "conservative",
    releases: str | Sequence[str] | None = None,
    mapping: str | Path | Iterable[str | Path] | None = None,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[AnswerRecord]:
    """All records of the ANES pilot files under ``source``.

    Args:
        source: one ``anes_<study>_<year>_*.csv``, a release folder, the ``anes``
            folder with release folders, or a data root holding ``anes/``.
        strict: raise on the first unusable answer (a value the mapping does not
            know, a broken weight or respondent id) instead of skipping it.
        skips: collects what was skipped and counted; a warning with the counts
            is logged either way.
        scheme: ``conservative`` (leaning answers left out) or ``aggressive``
            (leaning answers count as Yes / No); see the module docstring.
        releases: only these releases (``"pilot_2022"``, ...).
        mapping: mapping file(s), or a folder of ``anes_*.yaml``, that replace
            the shipped mapping of their release or add a release. A single
            mapping file also applies to a single CSV whose name does not tell
            the release.
        seed, test_fraction: of the per-respondent question split.

    Raises:
        DataError: missing file, column or mapping; malformed mapping; in strict
            mode, the first unusable answer.
        ConfigError: unknown scheme or a test fraction outside [0, 1].
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown ANES scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ConfigError(f"test_fraction must be in [0, 1], got {test_fraction}")
    skips = skips if skips is not None else SkipLog(strict=strict)
    if isinstance(releases, str):
        releases = [releases]
    wanted = None if releases is None else {r.lower() for r in releases}

    given = [load_mapping(p) for p in _mapping_paths(mapping)]
    explicit = {m.release: m for m in given}
    shipped = shipped_mappings()

    csvs, root = find_csvs(source)
    by_release = _files_by_release(csvs, given, wanted, source, skips)

    records: list[AnswerRecord] = []
    for release in sorted(by_release):
        csv = by_release[release]
        if release in explicit:
            m = explicit[release]
        elif release in shipped:
            m = load_mapping(shipped[release])
        else:
            raise DataError(
                f"no mapping for release {release} (shipped: {sorted(shipped)}); "
                f"pass mapping=anes_{release}.yaml",
                file=csv, key=release, field="mapping",
            )
        rel = str(csv.relative_to(root)) if csv.is_relative_to(root) else csv.name
        records += iter_release(
            csv, m, scheme=scheme, skips=skips, seed=seed, test_fraction=test_fraction, rel=rel
        )
    skips.warn(f"ANES {source}")
    return require_records(records, source=source, skips=skips)
