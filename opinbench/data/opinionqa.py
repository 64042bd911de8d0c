"""OpinionQA (Santurkar et al., 2023) -> `DistributionRecord`s.

Two releases are read, each in its original format:

* The ``human_resp`` release of tatsu-lab/opinions_qa: one folder per Pew
  American Trends Panel wave, each with

  - ``info.csv``: ``key, question, references, option_ordinal`` (Python list
    literals). ``option_ordinal`` gives the ordinal value of the first
    ``len(option_ordinal)`` references, in order; later references ("Refused",
    "Not sure", ...) are non-substantive and fall outside the distribution.
  - ``metadata.csv``: ``key, options``: demographic attributes and their groups.
  - ``<ATTR>_data.json``: ``{qkey: {"MC_options": [...], "question_text": ...,
    <group>: {<option>: <unweighted count>}}}``.

  The release has no file for the population as a whole (``NONE_data.json``,
  where present, repeats ``POLPARTY_data.json``). The overall distribution is
  therefore the sum over all groups of one attribute, "Refused" included; the
  attribute files differ by a handful of respondents (those missing that
  attribute), so the attribute covering the most respondents for the question
  is used.

* The steerable JSON release (Feng et al., modular_pluralism): a list of
  ``{question, options, attribute: "ATTR_group", gold_distribution, id}`` where
  ``question`` is a rendered prompt and the options exclude "Refused". It has no
  ordinal values; they are taken from a ``human_resp`` release when one is
  given and the question matches, else from the option order (counted).
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from opinbench.data.files import read_csv, read_json
from opinbench.data.groups import (
    NON_GROUPS,
    OVERALL_ATTRIBUTE,
    OVERALL_GROUP,
    select_groups,
    wanted,
)
from opinbench.data.records import (
    AnswerRecord,
    DistributionRecord,
    check_options,
    make_record,
    require_records,
)
from opinbench.data.splits import DEFAULT_TEST_FRACTION, question_splits
from opinbench.errors import DataError, SkipLog

DATASET = "opinionqa"
OPINIONQA_ANSWER_DATASET = "opinionqa_steerable"
"""`AnswerRecord.dataset` of OpinionQA modal answers."""
_RESERVED_KEYS = ("MC_options", "question_text")


# --------------------------------------------------------------------------- paths


def _looks_like_wave(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "metadata.csv").is_file() or any(folder.glob("*_data.json")))


def find_waves(source: Path, skips: SkipLog | None = None) -> list[Path]:
    """Wave folders under ``source`` (a wave folder, ``human_resp``, or a data root).

    A folder beside them that holds wave files but no ``info.csv`` cannot be
    read; it is counted in ``skips`` (raised with a strict log) rather than
    passed over in silence.
    """
    source = Path(source)
    if not source.exists():
        raise DataError("no such file or directory", file=source)
    if (source / "info.csv").is_file():
        return [source]
    for base in (source, source / "human_resp", source / "opinionqa" / "human_resp"):
        if base.is_dir():
            waves = sorted(p for p in base.iterdir() if (p / "info.csv").is_file())
            if waves:
                for folder in sorted(p for p in base.iterdir() if p not in waves and _looks_like_wave(p)):
                    (skips if skips is not None else SkipLog()).skip(
                        DataError("wave folder without info.csv: all its questions are left out", file=folder / "info.csv")
                    )
                return waves
    raise DataError(
        "no OpinionQA wave folder (a folder with info.csv, metadata.csv and <ATTR>_data.json) found",
        file=source,
    )


# --------------------------------------------------------------------------- parsing


def _literal(text: str, *, file: Path, key: str, field: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise DataError(f"cannot parse {text!r} as a Python literal ({exc})", file=file, key=key, field=field) from None


QuestionInfo = dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]]


def _question_info(wave: Path) -> tuple[QuestionInfo, dict[str, DataError]]:
    """info.csv -> ({key: (question, references, ordinal)}, {key: why the row is unusable})."""
    path = wave / "info.csv"
    out: QuestionInfo = {}
    errors: dict[str, DataError] = {}
    rows = read_csv(path, ("key", "question", "references", "option_ordinal"))
    listed = Counter(row["key"] for row in rows)
    for row in rows:
        key = row["key"]
        try:
            if listed[key] > 1:
                # Which row do the counts belong to? (The release lists some sub-questions of
                # W43 under one key, with no counts; last-wins would pick one silently.)
                raise DataError(f"key listed in {listed[key]} rows: the question is ambiguous", file=path, key=key, field="key")
            refs = _literal(row["references"], file=path, key=key, field="references")
            ordinal = _literal(row["option_ordinal"], file=path, key=key, field="option_ordinal")
            if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs):
                raise DataError(f"not a list of strings: {refs!r}", file=path, key=key, field="references")
            if not isinstance(ordinal, (list, tuple)) or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in ordinal
            ):
                raise DataError(f"not a list of numbers: {ordinal!r}", file=path, key=key, field="option_ordinal")
            if not 0 < len(ordinal) <= len(refs):
                raise DataError(
                    f"{len(ordinal)} ordinal values for {len(refs)} references",
                    file=path,
                    key=key,
                    field="option_ordinal",
                )
            check_options(tuple(refs), file=str(path), key=key)
            if not row["question"].strip():
                raise DataError("empty question", file=path, key=key, field="question")
        except DataError as err:
            errors[key] = err
            continue
        out[key] = (row["question"].strip(), tuple(refs), tuple(float(v) for v in ordinal))
    return out, errors


def _attributes(wave: Path) -> dict[str, tuple[str, ...]]:
    path = wave / "metadata.csv"
    out = {}
    for row in read_csv(path, ("key", "options"), key="key"):
        groups = _literal(row["options"], file=path, key=row["key"], field="options")
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) for g in groups):
            raise DataError(f"not a list of group names: {groups!r}", file=path, key=row["key"], field="options")
        out[row["key"]] = tuple(groups)
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip('"').strip()).casefold()


def counts_over_references(
    counts: Any, references: tuple[str, ...], *, file: Path, key: str, field: str
) -> list[float]:
    """Map ``{option text: count}`` onto the reference order.

    Option texts are matched exactly, then ignoring case, surrounding quotes and
    runs of white space (the release spells "nor" as "noR" once). A count for an
    option that matches no reference means options and counts disagree.
    """
    if not isinstance(counts, dict):
        raise DataError(f"expected {{option: count}}, got {type(counts).__name__}", file=file, key=key, field=field)
    index = {r: i for i, r in enumerate(references)}
    loose = {_norm(r): i for i, r in enumerate(references)}
    out = [0.0] * len(references)
    for option, value in counts.items():
        i = index.get(option)
        if i is None:
            i = loose.get(_norm(option))
        if i is None:
            raise DataError(
                f"count for option {option!r}, which is not among the references {list(references)!r}",
                file=file,
                key=key,
                field=field,
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise DataError(f"count {value!r} for {option!r} is not a finite non-negative number", file=file, key=key, field=field)
        out[i] += float(value)
    return out


def _record(
    *,
    key: str,
    question: str,
    references: tuple[str, ...],
    ordinal: tuple[float, ...],
    attribute: str,
    group: str,
    counts: list[float],
    file: Path,
    rel: str,
) -> DistributionRecord:
    substantive = counts[: len(ordinal)]
    n = sum(substantive)
    if n <= 0:
        raise DataError(
            "empty distribution: no respondent chose an ordinal option", file=file, key=key, field=f"{group}"
        )
    return make_record(
        DistributionRecord,
        DATASET,
        question_key=key,
        question=question,
        options=references,
        ordinal=ordinal,
        attribute=attribute,
        group=group,
        distribution=tuple(c / n for c in substantive),
        n=n,
        n_nonsubstantive=sum(counts[len(ordinal) :]),
        source=rel,
    )


def _skip_records(skips: SkipLog, err: DataError, lost: list[tuple[str, str]]) -> None:
    """Count ``err`` once per record it costs, so that "skipped N" is the number of records left out."""
    for attr, group in lost:
        skips.skip(DataError(f"{err.reason} ({attr}: {group} left out)", file=err.file, key=err.key, field=err.field))


# --------------------------------------------------------------------------- loaders


_Counts = tuple[float, list[float], Path]  # (respondents, counts over the references, file)


def _wave_data(wave: Path, attributes: dict[str, tuple[str, ...]]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """``{attribute: (file, counts per question and group)}`` of the attributes that have a file."""
    data: dict[str, tuple[Path, dict[str, Any]]] = {}
    for attr in attributes:
        path = wave / f"{attr}_data.json"
        if not path.is_file():
            continue  # the release has no file for some attributes (e.g. RELIG)
        payload = read_json(path)
        if not isinstance(payload, dict):
            raise DataError("expected an object keyed by question", file=path)
        data[attr] = (path, payload)
    if not data:
        raise DataError("no <ATTR>_data.json file for any attribute in metadata.csv", file=wave)
    return data


def _skip_questions_without_info(wave: Path, data: dict[str, tuple[Path, dict[str, Any]]], info: QuestionInfo,
                                 info_errors: dict[str, DataError], selection: Any, skips: SkipLog) -> None:
    """info.csv lists more questions than have counts; a question with counts but no usable
    info.csv row costs one skip per record lost: the overall one and each group's."""
    keys_in_data = {k for _, payload in data.values() for k in payload}
    for key in sorted(keys_in_data - set(info)):
        err = info_errors.get(key) or DataError(
            "question has counts but no row in info.csv", file=wave / "info.csv", key=key, field="key"
        )
        lost = [(OVERALL_ATTRIBUTE, OVERALL_GROUP)] + [
            (attr, group)
            for attr, (_, payload) in data.items()
            if isinstance(payload.get(key), dict)
            for group in payload[key]
            if group not in _RESERVED_KEYS and group not in NON_GROUPS
        ]
        _skip_records(skips, err, [(a, g) for a, g in lost if wanted(selection, a, g)])


def _question_counts(
    key: str, refs: tuple[str, ...], data: dict[str, tuple[Path, dict[str, Any]]],
    attributes: dict[str, tuple[str, ...]], selection: Any, skips: SkipLog,
) -> tuple[_Counts | None, list[tuple[str, str, list[float], Path]], list[DataError]]:
    """One question's counts: the overall population's (every group of the attribute covering
    most respondents, among the attributes whose counts are all readable), each group's, and
    why an attribute could not give the overall distribution."""
    best: _Counts | None = None
    per_group: list[tuple[str, str, list[float], Path]] = []
    unreadable: list[DataError] = []
    for attr, (path, payload) in data.items():
        entry = payload.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            err = DataError("expected an object of groups", file=path, key=key)
            unreadable.append(err)
            # every group metadata.csv lists for this attribute is lost
            lost = [(attr, g) for g in attributes[attr] if g not in NON_GROUPS and wanted(selection, attr, g)]
            _skip_records(skips, err, lost)
            continue
        total = [0.0] * len(refs)
        complete = True
        for group, counts in entry.items():
            if group in _RESERVED_KEYS:
                continue
            try:
                vec = counts_over_references(counts, refs, file=path, key=key, field=group)
            except DataError as err:
                # Only this group's record is lost; the attribute's total is incomplete,
                # so it cannot give the overall distribution either.
                complete = False
                unreadable.append(err)
                if group not in NON_GROUPS and wanted(selection, attr, group):
                    skips.skip(err)
                continue
            total = [a + b for a, b in zip(total, vec)]
            if group not in NON_GROUPS:
                per_group.append((attr, group, vec, path))
        if complete and (best is None or sum(total) > best[0]):
            best = (sum(total), total, path)
    return best, per_group, unreadable


def iter_wave(
    wave: Path,
    *,
    groups: str | list[str] = "all",
    skips: SkipLog | None = None,
    root: Path | None = None,
) -> Iterator[DistributionRecord]:
    """Records of one wave folder, in info.csv order, then attribute and group order."""
    skips = skips if skips is not None else SkipLog()
    selection = select_groups(groups)
    root = root or wave.parent
    info, info_errors = _question_info(wave)
    attributes = _attributes(wave)
    data = _wave_data(wave, attributes)
    _skip_questions_without_info(wave, data, info, info_errors, selection, skips)
    for key, (question, refs, ordinal) in info.items():
        best, per_group, unreadable = _question_counts(key, refs, data, attributes, selection, skips)
        if best is None and not unreadable:
            continue  # the question has no counts in this release (info.csv lists more questions)
        if best is None:
            if wanted(selection, OVERALL_ATTRIBUTE, OVERALL_GROUP):
                skips.skip(
                    DataError(
                        f"no attribute file with readable counts for every group, so no overall distribution "
                        f"(first problem: {unreadable[0]})",
                        file=wave,
                        key=key,
                        field=OVERALL_GROUP,
                    )
                )
            candidates = per_group
        else:
            candidates = [(OVERALL_ATTRIBUTE, OVERALL_GROUP, best[1], best[2])] + per_group
        for attr, group, vec, path in candidates:
            if not wanted(selection, attr, group):
                continue
            try:
                yield _record(
                    key=key,
                    question=question,
                    references=refs,
                    ordinal=ordinal,
                    attribute=attr,
                    group=group,
                    counts=vec,
                    file=path,
                    rel=str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
                )
            except DataError as err:
                skips.skip(err)


def load_opinionqa(
    source: str | Path,
    *,
    groups: str | list[str] = "all",
    strict: bool = False,
    skips: SkipLog | None = None,
) -> list[DistributionRecord]:
    """All records of an OpinionQA ``human_resp`` release (or one wave folder).

    Args:
        source: a wave folder, the ``human_resp`` folder, or a data root holding
            ``opinionqa/human_resp``; a ``.json`` file is read as the steerable
            release instead.
        groups: ``"all"``, ``"standard"`` (the 22 of the paper, where the source
            has them), ``"overall"``, or ``"ATTR:Group"`` strings.
        strict: raise on the first unusable question instead of skipping it.
        skips: collects what was skipped and why; a warning with the count is
            logged either way.
    """
    source = Path(source)
    if source.suffix == ".json":
        return load_opinionqa_steerable(source, groups=groups, strict=strict, skips=skips)
    skips = skips if skips is not None else SkipLog(strict=strict)
    waves = find_waves(source, skips)
    root = waves[0].parent
    records = [r for wave in waves for r in iter_wave(wave, groups=groups, skips=skips, root=root)]
    skips.warn(f"OpinionQA {source}")
    return require_records(records, source=source, skips=skips)


# --------------------------------------------------------------------------- steerable release

_PROMPT = re.compile(r"^\s*Question:\s*(?P<q>.*?)\s*\n\s*Options:.*$", re.DOTALL)


def ordinal_lookup(human_resp: str | Path) -> dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[float, ...]]]:
    """{(question, ordinal options): (key, references, ordinal)} from a human_resp release."""
    out = {}
    for wave in find_waves(Path(human_resp)):
        for key, (question, refs, ordinal) in _question_info(wave)[0].items():
            out[(question, refs[: len(ordinal)])] = (key, refs, ordinal)
            out.setdefault((question, tuple(r for r in refs if r != "Refused")), (key, refs, ordinal))
    return out


def _steerable_record(row: Any, rid: str, path: Path, selection: Any,
                      lookup: dict[Any, Any], skips: SkipLog) -> DistributionRecord | None:
    """One row of the steerable release (None: a group not selected)."""
    if not isinstance(row, dict):
        raise DataError("row is not an object", file=path, key=rid)
    for f in ("question", "options", "attribute", "gold_distribution"):
        if f not in row:
            raise DataError("missing field", file=path, key=rid, field=f)
    m = _PROMPT.match(row["question"])
    question = m.group("q") if m else row["question"].strip()
    options = tuple(row["options"])
    attribute, sep, group = str(row["attribute"]).partition("_")
    if not sep:
        raise DataError(f"{row['attribute']!r} is not ATTR_group", file=path, key=rid, field="attribute")
    if not wanted(selection, attribute, group):
        return None
    dist = row["gold_distribution"]
    if not isinstance(dist, list) or len(dist) != len(options):
        raise DataError(
            f"{len(dist) if isinstance(dist, list) else dist!r} values for {len(options)} options",
            file=path,
            key=rid,
            field="gold_distribution",
        )
    if any(not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0 for p in dist) or sum(dist) <= 0:
        raise DataError(f"not a distribution: {dist!r}", file=path, key=rid, field="gold_distribution")
    match = lookup.get((question, options))
    if match is not None:
        key, refs, ordinal = match
        n_ord = len(ordinal)
        if tuple(refs[:n_ord]) == options:
            distribution = [p / sum(dist) for p in dist]
        else:  # options were "all but Refused": drop non-ordinal ones
            keep = [options.index(o) for o in refs[:n_ord]]
            sub = [dist[j] for j in keep]
            if sum(sub) <= 0:
                raise DataError("no mass on ordinal options", file=path, key=rid, field="gold_distribution")
            distribution = [p / sum(sub) for p in sub]
        opts = refs
    else:
        skips.note("ordinal values taken from option order (no matching human_resp question)")
        key = f"steerable{rid}"
        ordinal = tuple(float(j + 1) for j in range(len(options)))
        distribution = [p / sum(dist) for p in dist]
        opts = options
    return make_record(
        DistributionRecord,
        DATASET,
        question_key=key,
        question=question,
        options=tuple(opts),
        ordinal=tuple(ordinal),
        attribute=attribute,
        group=group,
        distribution=tuple(distribution),
        n=None,
        source=path.name,
    )


def load_opinionqa_steerable(
    path: str | Path,
    *,
    groups: str | list[str] = "all",
    strict: bool = False,
    skips: SkipLog | None = None,
    human_resp: str | Path | None = None,
) -> list[DistributionRecord]:
    """The steerable JSON release; see the module docstring.

    ``human_resp`` (default: ``human_resp`` beside the file's parent, if any)
    supplies question keys and ordinal values.
    """
    path = Path(path)
    skips = skips if skips is not None else SkipLog(strict=strict)
    selection = select_groups(groups)
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError("expected a JSON list of rows", file=path)
    if human_resp is None and (path.parent.parent / "human_resp").is_dir():
        human_resp = path.parent.parent / "human_resp"
    lookup = ordinal_lookup(human_resp) if human_resp is not None else {}
    records = []
    for i, row in enumerate(rows):
        rid = str(row.get("id", i)) if isinstance(row, dict) else str(i)
        try:
            record = _steerable_record(row, rid, path, selection, lookup, skips)
            if record is not None:
                records.append(record)
        except DataError as err:
            skips.skip(err)
    skips.warn(f"OpinionQA steerable {path}")
    return require_records(records, source=path, skips=skips)


# --------------------------------------------------------------------------- as modal answers


def modal_option(record: DistributionRecord) -> str | None:
    """The ordinal option with the largest share, or None when the top two tie."""
    dist = list(record.distribution)
    best = max(range(len(dist)), key=lambda i: dist[i])
    if sum(1 for p in dist if abs(p - dist[best]) <= 1e-12) > 1:
        return None
    return record.options[best]


def opinionqa_answer_records(
    records: Iterable[DistributionRecord],
    *,
    seed: int = 0,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    skips: SkipLog | None = None,
) -> list[tuple[AnswerRecord, DistributionRecord]]:
    """(AnswerRecord, source DistributionRecord) per (question, group): the group's modal answer.

    gold = the modal *ordinal* option (a pair whose top two options tie is left out
    and counted); options = every option, "Refused" included; subject = ``"ATTR: Group"``;
    split = the question split of the ``*_wd`` tasks (`opinbench.data.splits.question_splits`).
    """
    skips = skips if skips is not None else SkipLog()
    usable: list[tuple[DistributionRecord, str]] = []
    for r in records:
        gold = modal_option(r)
        if gold is None:
            skips.note("(question, group) whose top two ordinal options tie: no modal answer, left out")
            continue
        usable.append((r, gold))
    # the same question split as the *_wd tasks: a question is train or test for every group
    splits = question_splits(DATASET, {r.question_key for r, _ in usable}, seed=seed, test_fraction=test_fraction)
    out = []
    for r, gold in usable:
        subject = _subject(r)
        out.append(
            (
                make_record(
                    AnswerRecord,
                    OPINIONQA_ANSWER_DATASET,
                    (r.question_key, r.attribute, r.group),
                    subject=subject,
                    subject_group=None,
                    question_key=r.question_key,
                    question=r.question,
                    options=r.options,
                    answer=gold,
                    split=splits[r.question_key],
                    context=None,
                    meta={"attribute": r.attribute, "group": r.group, "distribution": list(r.distribution)},
                    source=r.source,
                ),
                r,
            )
        )
    skips.warn("OpinionQA modal answers")
    return out


def _subject(r: DistributionRecord) -> str:
    return f"{r.attribute}: {r.group}"
