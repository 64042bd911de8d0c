"""The one writer for every file a result depends on: atomic, strict JSON, readable by others.

* **Atomic.** Written to a temporary file in the same folder, flushed and
  fsynced, then ``os.replace``\\d over the target (and the folder fsynced): a crash
  or Ctrl-C mid-write leaves the old file intact, never half a new one.
* **Readable.** ``tempfile.mkstemp`` creates files with mode 0600; a result is
  meant to be read by others, so the file gets ``0o644 & ~umask`` (an existing
  target keeps its own mode).
* **Strict JSON.** ``NaN`` / ``Infinity`` are not JSON (Python writes them, most
  other readers reject them). Each caller chooses per file:
  ``non_finite="error"`` (the default: a ``ValueError`` naming the fields, before
  anything is written) or ``non_finite="null"`` (each one becomes ``null``, and the
  document, or the JSONL row, says which under ``"non_finite"``: ``{"a.b[2]": "nan"}``),
  so that a value is never silently lost nor silently made up.

Hand-written rather than a library (``atomicwrites`` is archived, and none of the
kept ones fixes the mkstemp mode or the NaN rule): it is a dozen lines of stdlib.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

NON_FINITE_KEY = "non_finite"
_POLICIES = ("error", "null")


def _umask() -> int:
    """The process umask, without changing it (``os.umask`` can only be read by setting it,
    which would race with other threads creating files): Linux exposes it in /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); some platforms cannot open a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        file_mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        file_mode = 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), file_mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def non_finite_paths(obj: Any, _path: str = "") -> dict[str, str]:
    """``{"a.b[2]": "nan" | "inf" | "-inf"}`` for every non-finite float inside ``obj``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {_path or "$": repr(obj)}
    found: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            found.update(non_finite_paths(v, f"{_path}.{k}" if _path else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found.update(non_finite_paths(v, f"{_path}[{i}]"))
    return found


def _nulled(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nulled(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nulled(v) for v in obj]
    return obj


def finite_json(obj: Any, non_finite: str = "error", *, what: str = "value") -> Any:
    """``obj`` fit for strict JSON under the ``non_finite`` policy (see the module docstring).

    Raises:
        ValueError: ``non_finite="error"`` and ``obj`` holds NaN or an infinity.
    """
    if non_finite not in _POLICIES:
        raise ValueError(f"non_finite must be one of {_POLICIES}, not {non_finite!r}")
    bad = non_finite_paths(obj)
    if not bad:
        return obj
    if non_finite == "error":
        shown = ", ".join(f"{p}={v}" for p, v in list(bad.items())[:5])
        raise ValueError(f"{what} holds non-finite numbers, which JSON cannot hold: {shown}")
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: non_finite='null' needs a JSON object to record them in")
    return {**_nulled(obj), NON_FINITE_KEY: bad}


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Strict JSON text (no NaN: call `finite_json` first); unknown types as ``str``."""
    return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False, default=str)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any, *, non_finite: str = "error") -> None:
    """Write one JSON document atomically (see the module docstring for ``non_finite``)."""
    text = dumps(finite_json(obj, non_finite, what=str(path)), indent=2) + "\n"
    write_text(path, text)


def write_jsonl(
    path: str | os.PathLike, rows: Iterable[dict[str, Any]], *, non_finite: str = "error"
) -> int:
    """Write JSON lines atomically, streaming (a row that fails the ``non_finite`` check
    aborts the write and leaves the old file as it was)."""
    n = 0
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(dumps(finite_json(row, non_finite, what=f"{path}: row {n}")) + "\n")
            n += 1
    return n
