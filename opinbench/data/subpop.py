"""SubPOP (Suh et al., 2025) -> `DistributionRecord`s.

SubPOP-Train (3,229 Pew ATP questions) and SubPOP-Eval (133 GSS 2022 questions)
are released on the Hugging Face hub (``jjssuh/subpop``, gated, CC-BY-NC-SA-4.0)
as ``subpop_train.jsonl`` and ``subpop_eval.jsonl``, one row per (question,
subpopulation)::

    {"qkey": "owngun", "attribute": "CREGION", "group": "Northeast",
     "question": "Do you happen to have in your home ... any guns or revolvers?",
     "options": ["Yes", "No", "Refused"], "ordinal": [1.0, 2.0],
     "responses": [0.181, 0.819], "refusal_rate": 0.0094}

``question`` is the refined question text; ``options`` ends with "Refused";
``ordinal`` and ``responses`` cover the options before it. The release gives
proportions, not counts, so ``n`` is unknown and the human bootstrap bound is
not available. Some rows carry no scale (all ordinal values equal); when the
project's question metadata (``refined_qkey_dict.json``) has ordinal values for
that key they are used, otherwise the record keeps its flat scale and the WD
tasks skip it with a counted warning.

The release is gated, so ``../shared/data/subpop`` only has the metadata and a
public derivative: 200 SubPOP-Train questions with an overall distribution
(SynthBench's ``subpop_*.json`` leaderboard file: the mean of the 22 groups'
distributions, "Refused" included). `load_subpop` reads that too, as overall
records; it has no ordinal values, so the options before the first
non-substantive one are taken as the scale in their listed order (counted).

Rows are parsed with the json module rather than `datasets` so that a bad row
is reported with its file, line and field.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opinbench.data.files import parse_json, read_json, read_text
from opinbench.data.groups import OVERALL_ATTRIBUTE, OVERALL_GROUP, select_groups, wanted
from opinbench.data.records import DistributionRecord, make_record, require_records
from opinbench.errors import DataError, SkipLog

SPLITS = {"train": "subpop_train", "eval": "subpop_eval"}
NON_SUBSTANTIVE = frozenset({"refused", "not sure", "don't know", "dk/refused", "no answer", "dk", "refused/dk"})
_FIELDS = ("qkey", "attribute", "group", "question", "options", "ordinal", "responses")


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, row or the DataError that row raised) for each row of a .jsonl / .json list file."""
    if path.suffix == ".jsonl":
        for i, line in enumerate(read_text(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield f"line {i}", parse_json(line, file=path, key=f"line {i}")
            except DataError as err:
                # reported per line, so one bad line skips one row, not the file
                yield f"line {i}", err
    else:
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DataError("expected a JSON list of rows", file=path)
        for i, row in enumerate(rows):
            yield f"row {i}", row


def _list(value: Any, *, file: Path, key: str, field: str) -> list[Any]:
    # Intermediate CSV exports store lists as Python literals.
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise DataError(f"cannot parse {value!r} as a list", file=file, key=key, field=field) from None
    if not isinstance(value, (list, tuple)):
        raise DataError(f"expected a list, got {value!r}", file=file, key=key, field=field)
    return list(value)


def _numbers(values: list[Any], *, file: Path, key: str, field: str) -> list[float]:
    """Finite numbers, or a `DataError`: a NaN ordinal value would hide its option from the scale."""
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{v!r} is not a number", file=file, key=key, field=field) from None
        if not math.isfinite(x):
            raise DataError(f"{v!r} is not a finite number", file=file, key=key, field=field)
        out.append(x)
    return out


def _metadata_ordinals(root: Path, split: str) -> dict[str, list[float]]:
    for cand in (
        root / "metadata" / f"subpop-{split}" / "processed" / "refined_qkey_dict.json",
        root / f"subpop-{split}" / "processed" / "refined_qkey_dict.json",
    ):
        if cand.is_file():
            meta = read_json(cand)
            if not isinstance(meta, dict):
                raise DataError(f"expected an object keyed by question, got {type(meta).__name__}", file=cand)
            return {
                k: _numbers(_list(v["ordinal"], file=cand, key=k, field="ordinal"), file=cand, key=k, field="ordinal")
                for k, v in meta.items()
                if isinstance(v, dict) and "ordinal" in v
            }
    return {}


def _release_record(
    row: Any, where: str, *, path: Path, dataset: str, ordinals: dict[str, list[float]], skips: SkipLog
) -> DistributionRecord:
    if not isinstance(row, dict):
        raise DataError("row is not an object", file=path, key=where)
    for f in _FIELDS:
        if f not in row:
            raise DataError("missing field", file=path, key=row.get("qkey", where), field=f)
    key = str(row["qkey"])
    options = tuple(str(o) for o in _list(row["options"], file=path, key=key, field="options"))
    ordinal = _numbers(_list(row["ordinal"], file=path, key=key, field="ordinal"), file=path, key=key, field="ordinal")
    responses = _list(row["responses"], file=path, key=key, field="responses")
    if len(responses) != len(ordinal):
        raise DataError(
            f"{len(responses)} responses for {len(ordinal)} ordinal values", file=path, key=key, field="responses"
        )
    if len(ordinal) > len(options):
        raise DataError(f"{len(ordinal)} ordinal values for {len(options)} options", file=path, key=key, field="ordinal")
    for p in responses:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
            raise DataError(f"response share {p!r} is not a finite non-negative number", file=path, key=key, field="responses")
    if sum(responses) <= 0:
        raise DataError("empty distribution (all shares are zero)", file=path, key=key, field="responses")
    if len(set(ordinal)) <= 1 and key in ordinals and len(ordinals[key]) == len(ordinal):
        ordinal = [float(v) for v in ordinals[key]]
        skips.note("ordinal values taken from the question metadata (flat in the release)")
    total = float(sum(responses))
    return make_record(
        DistributionRecord,
        dataset,
        question_key=key,
        question=str(row["question"]).strip(),
        options=options,
        ordinal=tuple(ordinal),
        attribute=str(row["attribute"]),
        group=str(row["group"]),
        distribution=tuple(float(p) / total for p in responses),
        n=None,
        source=path.name,
    )


def _find_release_file(source: Path, split: str) -> Path | None:
    if source.is_file():
        return source
    names = [f"subpop_{split}.jsonl", f"subpop-{split}.jsonl", f"subpop_{split}.json", f"{split}.jsonl"]
    for base in (source, source / "data", source / "release", source / "jjssuh_subpop"):
        for name in names:
            if (base / name).is_file():
                return base / name
    return None


def _synthbench_records(source: Path, split: str, skips: SkipLog) -> list[DistributionRecord]:
    """Overall records from SynthBench's public SubPOP file (see module docstring)."""
    files = sorted((source / "synthbench" / "leaderboard-results").glob("subpop_*.json")) if source.is_dir() else []
    if not files:
        return []
    qkeys_file = source / "metadata" / f"subpop-{split}" / f"subpop-{split}_parsed-qkeys.json"
    in_split: set[str] | None = None
    if qkeys_file.is_file():
        in_split = {k for keys in read_json(qkeys_file).values() for k in keys}
    registry_file = source / "synthbench" / "data" / "question-text-registries" / "subpop.json"
    texts = read_json(registry_file).get("questions", {}) if registry_file.is_file() else {}
    path = files[-1]
    payload = read_json(path)
    dataset = SPLITS[split]
    out = []
    for i, q in enumerate(payload.get("per_question", [])):
        key = str(q.get("key", f"row {i}"))
        if in_split is not None and key not in in_split:
            continue
        try:
            options = tuple(q["options"])
            dist = q["human_distribution"]
            k = next((j for j, o in enumerate(options) if o.strip().casefold() in NON_SUBSTANTIVE), len(options))
            shares = [dist.get(o) for o in options[:k]]
            if any(s is None for s in shares):
                raise DataError(f"human_distribution lacks options {options[:k]}", file=path, key=key, field="human_distribution")
            if sum(shares) <= 0:
                raise DataError("empty distribution", file=path, key=key, field="human_distribution")
            skips.note("ordinal values taken from option order (SynthBench file has none)")
            out.append(
                make_record(
                    DistributionRecord,
                    dataset,
                    question_key=key,
                    question=texts.get(key, q.get("text", "")).strip(),
                    options=options,
                    ordinal=tuple(float(j + 1) for j in range(k)),
                    attribute=OVERALL_ATTRIBUTE,
                    group=OVERALL_GROUP,
                    distribution=tuple(s / sum(shares) for s in shares),
                    n=None,
                    source=str(path.relative_to(source)),
                )
            )
        except (KeyError, TypeError) as exc:
            skips.skip(DataError(f"malformed entry ({exc!r})", file=path, key=key))
        except DataError as err:
            skips.skip(err)
    return out


def load_subpop(
    source: str | Path,
    *,
    split: str = "eval",
    groups: str | list[str] = "all",
    strict: bool = False,
    skips: SkipLog | None = None,
) -> list[DistributionRecord]:
    """Records of SubPOP-Train (``split="train"``) or SubPOP-Eval (``"eval"``).

    Args:
        source: the release file (``subpop_eval.jsonl``), a folder holding it,
            or a data folder laid out like ``../shared/data/subpop`` (metadata
            and the SynthBench overall distributions).
        groups: as in `opinbench.data.opinionqa.load_opinionqa`.
    """
    if split not in SPLITS:
        raise DataError(f"unknown SubPOP split {split!r}; use 'train' or 'eval'")
    source = Path(source)
    if not source.exists():
        raise DataError("no such file or directory", file=source)
    skips = skips if skips is not None else SkipLog(strict=strict)
    selection = select_groups(groups)
    release = _find_release_file(source, split)
    if release is None:
        records = _synthbench_records(source, split, skips)
        if not records:
            raise DataError(
                f"no SubPOP-{split.capitalize()} distributions found: expected subpop_{split}.jsonl "
                "(HF dataset jjssuh/subpop, gated: accept its terms and download it)"
                + (" or SynthBench's subpop_*.json overall file" if split == "train" else ""),
                file=source,
            )
    else:
        root = source if source.is_dir() else source.parent
        ordinals = _metadata_ordinals(root, split)
        records = []
        for where, row in _rows(release):
            try:
                if isinstance(row, DataError):
                    raise row
                records.append(
                    _release_record(row, where, path=release, dataset=SPLITS[split], ordinals=ordinals, skips=skips)
                )
            except DataError as err:
                if err.key != where:  # name the row too: a question key has one row per group
                    err = DataError(f"{err.reason} ({where})", file=err.file, key=err.key, field=err.field)
                skips.skip(err)
    records = [r for r in records if wanted(selection, r.attribute, r.group)]
    skips.warn(f"SubPOP-{split} {source}")
    return require_records(records, source=source, skips=skips)


def load_subpop_train(source: str | Path, **kwargs: Any) -> list[DistributionRecord]:
    return load_subpop(source, split="train", **kwargs)


def load_subpop_eval(source: str | Path, **kwargs: Any) -> list[DistributionRecord]:
    return load_subpop(source, split="eval", **kwargs)
