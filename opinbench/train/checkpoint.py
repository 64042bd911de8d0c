"""Checkpoint folders: what a finished run leaves behind, and resuming an unfinished one.

A checkpoint folder (``output_dir``, or ``output_dir/individuals/<name>`` per
individual) holds::

    adapter_config.json, adapter_model.safetensors   the PEFT LoRA adapter
    tokenizer files                                  the base model's tokenizer
    opinbench_train.json                             config, data hash, split, versions, log, eval command
    run.json                                         fingerprint of the run (written at start, for resuming)
    trainer/checkpoint-N/                            resumable trainer state (the last few)
    merged/                                          base + adapter merged (with merge: true)

``lm_eval --model hf --model_args pretrained=BASE,peft=CKPT`` evaluates the
adapter as it is; ``opinbench_train.json`` carries the exact command
(``eval_command``), with the ``--metadata`` that selects the held-out side of
the same split.

Resuming (`prepare`): ``run.json`` stores the training fingerprint (the config
without output/logging settings) and the data hash. A rerun with the same
fingerprint continues from the newest ``trainer/checkpoint-N``; a different
one is refused with the keys that differ, so that two runs are never mixed in
one folder; a finished checkpoint is left alone (``--overwrite`` retrains).
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import shutil
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError

META_FILE = "opinbench_train.json"
RUN_FILE = "run.json"
TRAINER_DIR = "trainer"
FORMAT_VERSION = 1

__all__ = ["META_FILE", "prepare", "read_metadata", "versions", "write_metadata", "eval_command", "slug"]


def versions() -> dict[str, str | None]:
    """Versions of everything that shapes a checkpoint."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("opinbench", "torch", "transformers", "trl", "peft", "lm_eval", "accelerate", "datasets"):
        try:
            out[pkg] = importlib_metadata.version(pkg.replace("_", "-"))
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def slug(name: str) -> str:
    """A folder name for an individual (``2021/deutschland:SPD`` -> ``2021-deutschland-SPD``)."""
    s = re.sub(r"[^\w.+-]+", "-", name, flags=re.UNICODE).strip("-.")
    return s or "individual"


def _atomic_json(path: Path, data: Any) -> None:
    # The shared atomic writer (fsync, mode 0644 & ~umask). A NaN (a diverged loss in the
    # log history) becomes null, listed under "non_finite": the metadata marks a finished
    # training run, so it must be written, and must not claim a number it does not hold.
    from opinbench.io import write_json

    write_json(path, data, non_finite="null")


def last_trainer_checkpoint(run_dir: Path) -> Path | None:
    root = Path(run_dir) / TRAINER_DIR
    if not root.is_dir():
        return None
    ckpts = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    # A checkpoint is complete once the trainer state is written (it is written last).
    ckpts = [p for p in ckpts if (p / "trainer_state.json").is_file()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1])) if ckpts else None


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def prepare(run_dir: str | Path, *, fingerprint: dict[str, Any], data_hash: str, resume: str,
            overwrite: bool) -> tuple[str, Path | None]:
    """Decide how to start in ``run_dir``: ``("done", None)``, ``("fresh", None)`` or ``("resume", ckpt)``.

    Raises:
        ConfigError: the folder holds another run (different config or data), or an
            unfinished run with ``resume: never``, or files that are not a run.
    """
    run_dir = Path(run_dir)
    current = {"fingerprint": fingerprint, "data_hash": data_hash}
    if overwrite and run_dir.exists():
        for name in (TRAINER_DIR, "merged"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in (META_FILE, RUN_FILE, "adapter_model.safetensors", "adapter_config.json", "train_log.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
    run_file = run_dir / RUN_FILE
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        before = {"fingerprint": previous.get("fingerprint"), "data_hash": previous.get("data_hash")}
        if before != current:
            changes = _diff(before.get("fingerprint") or {}, fingerprint)
            if before.get("data_hash") != data_hash:
                changes.append(f"data_hash: {before.get('data_hash')} -> {data_hash}")
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({'; '.join(changes[:6])}); choose another "
                "output_dir, or pass --overwrite to discard it"
            )
        if (run_dir / META_FILE).is_file() and read_metadata(run_dir).get("complete"):
            return "done", None
        ckpt = last_trainer_checkpoint(run_dir)
        if ckpt is not None:
            if resume == "never":
                raise ConfigError(
                    f"{run_dir} holds an unfinished run (last checkpoint {ckpt.name}); resume: never refuses to "
                    "continue it: set resume: auto, or pass --overwrite to start over"
                )
            return "resume", ckpt
        return "fresh", None
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} is not empty and holds no opinbench run; choose an empty output_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_json(run_file, current | {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return "fresh", None


def read_metadata(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / META_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not an opinbench checkpoint (no {META_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))


def eval_command(*, base_path: str, checkpoint: str | Path, task: str, metadata: dict[str, Any],
                 apply_chat_template: bool, limit: int | None = None) -> str:
    """The ``lm_eval`` command line that scores a checkpoint on the held-out side of its split."""
    from opinbench.paths import tasks_dir

    parts = [
        "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={base_path},peft={Path(checkpoint).resolve()}",
        "--include_path", str(tasks_dir()),
        "--tasks", task,
        "--metadata", json.dumps(metadata, ensure_ascii=False, sort_keys=True),
    ]
    if apply_chat_template:
        parts.append("--apply_chat_template")
    if limit:
        parts += ["--limit", str(limit)]
    return " ".join(shlex.quote(p) for p in parts)


def write_metadata(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write ``opinbench_train.json`` (atomically) with the format version, versions and the command line."""
    run_dir = Path(run_dir)
    payload = {
        "format_version": FORMAT_VERSION,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "versions": versions(),
    } | data
    path = run_dir / META_FILE
    _atomic_json(path, payload)
    return path


def merge_adapter(model: Any, tokenizer: Any, out: str | Path) -> Path:
    """Save base + adapter merged into plain weights (a copy; ``model`` keeps its adapter)."""
    import copy

    out = Path(out)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
