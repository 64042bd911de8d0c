"""Reading source files with errors that name the file (and the row or key where they can).

The standard library's readers accept input that silently corrupts data: `json`
keeps the last of two equal keys in one object, `csv.DictReader` keeps the last
of two equal column names, and a text file opened for reading decodes in large
chunks, so a bad byte in row 2 surfaces while the header is read. These readers
close those gaps; there is no well-kept library that does it for plain JSON and
CSV, so the few lines are written here, once, for every loader.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from opinbench.errors import DataError


class DuplicateKeyError(ValueError):
    """One JSON object holds the same key twice (raised by `loads_json`)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"duplicate key {key!r} in one JSON object")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def loads_json(text: str) -> Any:
    """`json.loads` that refuses an object with a duplicate key.

    Raises `json.JSONDecodeError` for malformed text and `DuplicateKeyError`
    for a repeated key, which `json.loads` would silently resolve to its last value.
    """
    return json.loads(text, object_pairs_hook=_no_duplicate_keys)


def parse_json(text: str, *, file: str | Path, key: str | None = None) -> Any:
    """`loads_json` with its errors as `DataError` naming ``file`` (and ``key``, e.g. a line)."""
    try:
        return loads_json(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc})", file=file, key=key) from None
    except DuplicateKeyError as exc:
        raise DataError(str(exc), file=file, key=key if key is not None else exc.key) from None


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The text of a file; a missing or non-UTF-8 file raises `DataError` naming it."""
    if not path.is_file():
        raise DataError("missing file", file=path)
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc})", file=path) from None


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing, malformed or non-UTF-8 file, or an object with a
    duplicate key, raises `DataError` naming it."""
    return parse_json(read_text(path), file=path)


# --------------------------------------------------------------------------- CSV


class _BadLine(Exception):
    def __init__(self, line: int, exc: UnicodeDecodeError) -> None:
        self.line = line
        self.exc = exc


def _decoded_lines(fh: Iterable[bytes]) -> Iterator[str]:
    """Lines decoded one at a time (BOM dropped), so a bad byte is found in its own line."""
    for n, raw in enumerate(fh, start=1):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise _BadLine(n, exc) from None


def csv_rows(path: Path, *, delimiter: str = ",") -> tuple[list[str], Iterator[tuple[str, dict[str, str]]]]:
    """(column names, iterator of ``("row N", row)``) of a CSV file with a header.

    Rows are numbered from 1 after the header (blank lines skipped). A missing
    file, an undecodable or malformed header, or two columns with the same name
    raise `DataError` at once; a bad byte, malformed CSV or a row with more or
    fewer fields than the header (a truncated file, a stray delimiter: the values
    would land in the wrong columns) later raises `DataError` naming its row when
    the iterator reaches it.
    """
    if not path.is_file():
        raise DataError("missing file", file=path)
    fh = path.open("rb")
    reader = csv.reader(_decoded_lines(fh), delimiter=delimiter)
    try:
        columns = next(reader, [])
    except _BadLine as bad:
        fh.close()
        raise DataError(f"not UTF-8 text in the header ({bad.exc})", file=path, key="header") from None
    except csv.Error as exc:
        fh.close()
        raise DataError(f"unreadable CSV header ({exc})", file=path, key="header") from None
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        fh.close()
        raise DataError(f"duplicate column(s) {dup}", file=path, key="header")

    def rows() -> Iterator[tuple[str, dict[str, str]]]:
        i = 0
        with fh:
            try:
                for values in reader:
                    if not values:
                        continue  # a blank line: skipped and not counted, as csv.DictReader does
                    i += 1
                    if len(values) != len(columns):
                        raise DataError(
                            f"{len(values)} fields where the header has {len(columns)} "
                            f"(line {reader.line_num}: a truncated or malformed row)",
                            file=path, key=f"row {i}",
                        )
                    yield f"row {i}", dict(zip(columns, values))
            except _BadLine as bad:
                raise DataError(f"not UTF-8 text (line {bad.line}: {bad.exc})", file=path, key=f"row {i + 1}") from None
            except csv.Error as exc:
                raise DataError(f"unreadable CSV ({exc})", file=path, key=f"row {i + 1}") from None

    return columns, rows()


def read_csv(path: Path, required: Iterable[str] = (), *, key: str | None = None) -> list[dict[str, str]]:
    """All rows of a CSV file as dicts, refusing missing ``required`` columns and,
    when ``key`` names a column, two rows with the same value in it (the later
    one would otherwise silently replace the earlier)."""
    columns, rows = csv_rows(path)
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; columns are {columns}", file=path)
    out = []
    seen: dict[str, str] = {}
    for where, row in rows:
        if key is not None:
            value = row.get(key)
            if value in seen:
                raise DataError(f"duplicate key (first in {seen[value]}, again in {where})", file=path, key=value, field=key)
            seen[value] = where
        out.append(row)
    return out
