"""Training on several processes: what the main process alone does, and what every rank must agree on.

``opinbench train sft|grpo`` runs unchanged under ``accelerate launch`` (DDP,
DeepSpeed ZeRO, FSDP; ``configs/accelerate/``, ``docs/training.md``). A config
*is* the trainer's ``TrainingArguments``, whose ``__post_init__`` has already
set up accelerate's ``PartialState`` (and the process group) by the time the
config is parsed, so these helpers read the process layout from the config
(``process_index``, ``world_size``, ``distributed_state``) and use accelerate's
own collectives; nothing here reads launcher environment variables.

Every rank, identically (same seeds, same files): load the base model and
tokenizer, read, split and leakage-check the training documents, render and
tokenise the examples (`same_on_every_rank` compares an order-sensitive digest
of them, so that the data loader's shards are shards of one list), build and
run the trainer, save through ``Trainer.save_model`` (which gathers sharded
ZeRO-3/FSDP weights and writes on the main process).

The main process alone (`run_on_main` hands its result, or its error, to the
others): the checkpoint-folder decision (``checkpoint.prepare`` writes
``run.json``, may delete an old run), synthetic STaR rationales (provider
requests cost money and fill one cache), ``train_log.jsonl``,
``opinbench_train.json``, the merged model, progress bars, log lines
(`quiet_replicas`) and the printed checkpoint folders.

Single-process runs take the same code paths: every helper is a no-op or a
plain call when ``world_size`` is 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from opinbench.errors import ConfigError

__all__ = [
    "describe",
    "examples_digest",
    "is_main",
    "quiet_replicas",
    "run_on_main",
    "same_on_every_rank",
    "wait_for_everyone",
]

T = TypeVar("T")


def is_main(config: Any) -> bool:
    """Whether this process is the world's main process (rank 0), the one that writes opinbench's files."""
    return int(config.process_index) == 0


def _distributed(config: Any) -> bool:
    return int(config.world_size) > 1


def quiet_replicas(config: Any) -> None:
    """Replicas log at the trainer's ``log_level_replica`` (default: warnings only), as the Trainer's own logs."""
    if not is_main(config):
        logging.getLogger("opinbench").setLevel(config.get_process_log_level())


def wait_for_everyone(config: Any) -> None:
    """A barrier across all processes (nothing in a single process)."""
    if _distributed(config):
        config.distributed_state.wait_for_everyone()


def run_on_main(config: Any, fn: Callable[[], T], what: str) -> T:
    """``fn()`` on the main process only; every rank returns its (picklable) result.

    An error on the main process is raised on every rank (the replicas get a
    `ConfigError` with its message), so that no rank is left waiting in a
    collective for a result that will never come.
    """
    if not _distributed(config):
        return fn()
    from accelerate.utils import broadcast_object_list

    box: list[Any] = [None]
    error: BaseException | None = None
    if is_main(config):
        try:
            box = [("ok", fn())]
        except Exception as exc:  # handed to the replicas below, then raised here
            error = exc
            box = [("error", f"{type(exc).__name__}: {exc}")]
    broadcast_object_list(box, from_process=0)
    status, value = box[0]
    if error is not None:
        raise error
    if status == "error":
        raise ConfigError(f"{what} failed on the main process ({value})")
    return value


def examples_digest(examples: Iterable[Any]) -> str:
    """sha256 of the examples *in order* (unlike `opinbench.train.data.data_hash`, which sorts them).

    >>> examples_digest([{"id": 1}, {"id": 2}]) == examples_digest([{"id": 2}, {"id": 1}])
    False
    """
    h = hashlib.sha256()
    for e in examples:
        row = e if isinstance(e, dict) else e.to_json()
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def same_on_every_rank(config: Any, value: str, what: str) -> None:
    """Refuse to train when the ranks built different ``value``s (e.g. `examples_digest` of their examples).

    The data loader gives each rank every ``world_size``-th batch of *its own*
    list; if the lists differ (a non-deterministic order, a file changed
    between the ranks' reads), examples would be trained twice or never.
    """
    if not _distributed(config):
        return
    from accelerate.utils import gather_object

    values = gather_object([value])
    if len(set(values)) > 1:
        ranks = ", ".join(f"rank {i}: {v[:12]}" for i, v in enumerate(values))
        raise ConfigError(
            f"the processes built different {what} ({ranks}); every rank must read the same files and build "
            "the same examples in the same order (are the data files on a filesystem all nodes share?)"
        )


def describe(config: Any, trainer: Any = None) -> dict[str, Any]:
    """The process layout of a run, for the checkpoint's metadata.

    The trainer's accelerator knows DeepSpeed and FSDP (the process state alone says MULTI_GPU).
    """
    state = getattr(trainer, "accelerator", None) or getattr(config, "distributed_state", None)
    return {
        "world_size": int(config.world_size),
        "distributed_type": str(getattr(state, "distributed_type", "NO")).rsplit(".", 1)[-1],
        "backend": getattr(getattr(config, "distributed_state", None), "backend", None),
        "global_batch_size": int(config.per_device_train_batch_size) * int(config.gradient_accumulation_steps)
        * int(config.world_size),
    }
