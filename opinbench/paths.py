"""Where opinbench's data folders are: in a source checkout or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """``tasks_yaml``, ``judges`` or ``leaderboards``.

    A wheel carries them in ``opinbench/_bundled/``; a source checkout (also an
    editable install) has them at the top of the repository.
    """
    for cand in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"opinbench's {name}/ folder is missing from {_PACKAGE} and {_PACKAGE.parent}")


def tasks_dir() -> Path:
    return bundled("tasks_yaml")
