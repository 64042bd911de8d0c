"""Reading source files with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opinbench.errors import DataError


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing, malformed or non-UTF-8 file raises `DataError` naming it."""
    if not path.is_file():
        raise DataError("missing file", file=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc})", file=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc})", file=path) from None
