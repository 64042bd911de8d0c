"""Shared fixtures. Tests that need the real data skip, with the reason, when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("OPINBENCH_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``$OPINBENCH_DATA_DIR`` or ``../shared/data``)."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("real data not found: set OPINBENCH_DATA_DIR or place it at ../shared/data")
    return d
