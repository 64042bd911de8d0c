"""Errors and counted warnings for bad input.

Every problem with input data names where it is: the file, the key (question or
row) and the field. A problem that makes a whole source unusable raises
`DataError`; a problem that only makes one question unusable is recorded in a
`SkipLog`, which counts the skips per reason and logs each one, so nothing is
dropped silently.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from os import PathLike

log = logging.getLogger("opinbench.data")


def _where(file: str | PathLike | None, key: str | None, field_: str | None) -> str:
    parts = [str(p) for p in (file, key, field_) if p not in (None, "")]
    return ": ".join(parts)


class OpinbenchError(Exception):
    """Base class of the errors opinbench raises on purpose."""


class DataError(OpinbenchError, ValueError):
    """Input data that cannot be read as documented.

    The message starts with `file: key: field:` so that the user can find the
    offending value without a debugger.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike | None = None,
        key: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.key = key
        self.field = field
        self.reason = message
        # The reason with its values blanked out, to count skips by kind.
        self.kind = re.sub(r"-?\d+(\.\d+)?", "N", re.sub(r"'[^']*'|\"[^\"]*\"|\[.*?\]|\{.*?\}", "…", message))
        where = _where(file, key, field)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(OpinbenchError, ValueError):
    """A setting (task metadata, CLI flag, config file) that cannot be used."""


@dataclass
class SkipLog:
    """Counts and remembers the questions a loader had to leave out.

    With ``strict=True`` the first skip raises instead, for users who would
    rather fix their data than lose part of it.
    """

    strict: bool = False
    entries: list[DataError] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def skip(self, error: DataError) -> None:
        if self.strict:
            raise error
        self.entries.append(error)
        log.debug("skipped: %s", error)

    def note(self, what: str) -> None:
        """Count something worth a warning that does not drop any data."""
        self.notes[what] += 1

    @property
    def counts(self) -> Counter[str]:
        return Counter(e.kind for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        parts = []
        if self.entries:
            reasons = ", ".join(f"{n} x {r}" for r, n in self.counts.most_common())
            parts.append(f"skipped {len(self.entries)}: {reasons}")
        parts += [f"{n} x {what}" for what, n in self.notes.most_common()]
        return "; ".join(parts) or "nothing skipped"

    def warn(self, source: str) -> None:
        """Log one counted warning for the whole source, with the first examples."""
        if not self.entries and not self.notes:
            return
        examples = "; ".join(str(e) for e in self.entries[:3])
        log.warning("%s: %s%s", source, self.summary(), f" (e.g. {examples})" if examples else "")
