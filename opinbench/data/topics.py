"""The OpinionQA topic taxonomy (Santurkar et al., 2023): ``topic_mapping.json`` of the
``human_resp`` release, 23 coarse (``cg``) and 40 fine (``fg``) topics per question.

The file maps ``"<question text> [<option 1>/<option 2>/.../Refused]"`` (every option the
survey offered, in order) to ``{"cg": [...], "fg": [...]}``; a question may have several
topics. `topic_key` builds that key from a record's ``question`` and ``options``.
The ``.npy`` beside it in the release is the same mapping as a pickle and is never read:
unpickling a download can run code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opinbench.data.files import read_json
from opinbench.data.registry import data_dir
from opinbench.errors import DataError

TOPIC_MAPPING = Path("opinionqa") / "human_resp" / "topic_mapping.json"


@dataclass(frozen=True)
class Topics:
    coarse: tuple[str, ...]
    fine: tuple[str, ...]


def topic_key(question: str, options: Sequence[str]) -> str:
    """The mapping's key of a question: ``"question [opt1/opt2/...]"``."""
    return f"{question} [{'/'.join(options)}]"


def default_path(explicit_dir: str | os.PathLike | None = None) -> Path:
    """Where the mapping is expected under the data directory."""
    return data_dir(explicit_dir) / TOPIC_MAPPING


def load_topic_mapping(path: str | os.PathLike) -> dict[str, Topics]:
    """``{topic_key: Topics}`` from ``topic_mapping.json``.

    Raises:
        DataError: a missing or malformed file, or an entry without a list of coarse topics.
    """
    path = Path(path)
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise DataError("expected an object keyed by question text and options", file=path)
    out = {}
    for key, value in raw.items():
        if not isinstance(value, dict) or not isinstance(value.get("cg"), list):
            raise DataError("expected {'cg': [...], 'fg': [...]}", file=path, key=key)
        out[key] = Topics(tuple(value["cg"]), tuple(value.get("fg") or ()))
    return out
