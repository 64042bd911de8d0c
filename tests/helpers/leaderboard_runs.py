"""One real lm-eval run of a tiny random model on the ``smoke`` leaderboard, made once per test
process (the leaderboard's worker and browser tests share it) through the worker's `evaluate`."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="opinbench-leaderboard-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def tiny_model() -> Path:
    from tests.helpers.tiny_models import build_model

    return build_model("merged", _root() / "tiny-llama")


@functools.cache
def smoke_run(data_dir: str) -> Path:
    """The output folder of the evaluation (needs the real data at ``data_dir``); never modified."""
    import os

    from opinbench.leaderboard.definition import load_definition
    from opinbench.leaderboard.worker import evaluate

    old = os.environ.get("OPINBENCH_DATA_DIR")
    os.environ["OPINBENCH_DATA_DIR"] = data_dir
    try:
        request = {"model": str(tiny_model()), "dtype": "float32", "chat_template": True}
        return evaluate(load_definition("smoke"), request, _root() / "run")
    finally:
        if old is None:
            os.environ.pop("OPINBENCH_DATA_DIR", None)
        else:
            os.environ["OPINBENCH_DATA_DIR"] = old
