"""What the SFT and GRPO commands share: model loading, LoRA, trainer settings, the run loop.

`run` is the skeleton of both commands::

    load the base model and tokenizer        (opinbench.models names resolved)
    read the training documents              (opinbench.train.data: task, split, leakage guard)
    for each unit (all individuals, or one per individual):
        build the examples, hash them        (mode-specific ``build``)
        prepare the checkpoint folder        (opinbench.train.checkpoint: fresh / resume / done)
        train from a fresh copy of the base  (mode-specific ``train``)
        save adapter, tokenizer, metadata, optional merged model

Under ``accelerate launch`` every rank runs this loop; the folder decision,
the log file, the metadata and the merged model are the main process's
(`opinbench.train.distributed`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.train import checkpoint as C
from opinbench.train import distributed as D
from opinbench.train.config import TrainConfig
from opinbench.train.data import TrainingDocs, data_hash, individual_name, load_docs, subsample

log = logging.getLogger("opinbench.train")


# --------------------------------------------------------------------------- model


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def base_path(config: TrainConfig) -> str:
    from opinbench.models import resolve

    return resolve(config.model)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str, dtype: str) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype))
    except OSError as exc:
        raise ConfigError(f"cannot load the base model {path!r}: {exc}") from None


def uses_chat_template(config: TrainConfig, tokenizer: Any) -> bool:
    if config.apply_chat_template is None:
        return bool(getattr(tokenizer, "chat_template", None))
    if config.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"apply_chat_template: true, but the tokenizer of {config.model} has no chat template")
    return bool(config.apply_chat_template)


def lora_config(config: TrainConfig, model: Any) -> Any:
    """peft.LoraConfig from the config, refusing target modules the model does not have."""
    from peft import LoraConfig

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in config.lora_target_modules if m not in names]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise ConfigError(f"lora_target_modules {missing} are not modules of {config.model}; it has {linear}")
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )


def init_adapter_for(config: TrainConfig, unit_name: str | None) -> Path | None:
    """The adapter to continue from: ``init_adapter``, or its ``individuals/<name>`` for one individual."""
    if not config.init_adapter:
        return None
    root = Path(config.init_adapter)
    if unit_name is not None and (root / "individuals" / C.slug(unit_name)).is_dir():
        root = root / "individuals" / C.slug(unit_name)
    if not (root / "adapter_config.json").is_file():
        where = f" (nor {root / 'individuals' / C.slug(unit_name)})" if unit_name is not None else ""
        raise ConfigError(f"init_adapter: no PEFT adapter in {root}{where}")
    return root


def load_trainable(ctx: Context, unit: Unit) -> tuple[Any, Any]:
    """The model to train and the LoRA config to apply (None: already a trainable PEFT model).

    With ``init_adapter`` the adapter is loaded trainable on the base model, so the
    result is still one adapter over the base: ``pretrained=BASE,peft=CKPT`` works.
    """
    # The first unit trains the copy loaded for the prompt renderer (which only tokenises);
    # later units (one per individual) start from a fresh copy of the base model.
    model, ctx.spare_model = ctx.spare_model, None
    if model is None:
        model = load_model(ctx.base_path, ctx.config.dtype)
    init = init_adapter_for(ctx.config, unit.name)
    if init is None:
        return model, lora_config(ctx.config, model)
    from peft import PeftModel

    log.info("continuing from the adapter in %s (lora_* keys ignored)", init)
    return PeftModel.from_pretrained(model, str(init), is_trainable=True), None


def trainer_args(config: TrainConfig, run_dir: Path, **changes: Any) -> Any:
    """The config as the trainer's arguments (it is a TRL config), checkpointing into ``run_dir/trainer``."""
    return config.trainer_args(run_dir / C.TRAINER_DIR, **changes)


class JsonlLogCallback:
    """Appends every trainer log (loss, rewards, ...) to ``train_log.jsonl`` as it happens.

    The trainer calls ``on_log`` on every rank with the same (already gathered)
    values; only the world's main process writes.
    """

    def __new__(cls, path: Path):
        import json

        from transformers import TrainerCallback

        class _Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
                if logs and state.is_world_process_zero:
                    with open(path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")

        return _Callback()


# --------------------------------------------------------------------------- run loop


@dataclass
class Unit:
    """One checkpoint to train: all documents, or those of one individual."""

    name: str | None
    run_dir: Path
    docs: list[dict[str, Any]]
    examples: list[Any] = field(default_factory=list)
    hash: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Everything a mode's ``build``/``train`` functions need besides the unit."""

    config: TrainConfig
    command: str
    base_path: str
    tokenizer: Any
    renderer: Any
    chat: bool
    tdocs: TrainingDocs
    spare_model: Any = None


def units(config: TrainConfig, tdocs: TrainingDocs) -> list[Unit]:
    root = Path(config.output_dir)
    if not config.per_individual:
        return [Unit(None, root, subsample(tdocs.docs, config.max_examples, config.seed))]
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in tdocs.docs:
        by[individual_name(d)].append(d)
    return [
        Unit(name, root / "individuals" / C.slug(name), subsample(docs, config.max_examples, config.seed))
        for name, docs in sorted(by.items())
    ]


def eval_metadata(ctx: Context, unit: Unit) -> dict[str, Any]:
    meta = dict(ctx.tdocs.eval_metadata)
    if unit.name is not None:
        meta["subject"] = unit.name
    elif ctx.config.individuals:
        meta["subject"] = list(ctx.config.individuals)
    return meta


def run(
    config: TrainConfig,
    command: str,
    build: Callable[[Context, Unit], None],
    train: Callable[[Context, Unit, Any], dict[str, Any]],
) -> list[Path]:
    """Train every unit of ``config``; returns the checkpoint folders (finished ones included)."""
    from transformers import set_seed

    set_threads(config.num_threads)
    set_seed(config.seed)
    D.quiet_replicas(config)
    with config.main_process_first(local=False, desc="base model"):  # a packaged model is converted once
        path = base_path(config)
    tokenizer = load_tokenizer(path)
    chat = uses_chat_template(config, tokenizer)
    from opinbench.train.data import PromptRenderer

    model = load_model(path, config.dtype)
    renderer = PromptRenderer(model, tokenizer, apply_chat_template=chat)
    tdocs = load_docs(config)
    log.info(
        "%d training documents from %s (split %s of seed %d, test fraction %.2f); scored on %s",
        len(tdocs.docs), tdocs.train_task, config.train_split, config.split_seed, config.test_fraction,
        tdocs.eval_task,
    )
    ctx = Context(config, command, path, tokenizer, renderer, chat, tdocs, spare_model=model)
    done: list[Path] = []
    all_units = units(config, tdocs)
    for i, unit in enumerate(all_units, 1):
        label = unit.name or "all documents"
        build(ctx, unit)
        if not unit.examples:
            raise ConfigError(f"{label}: no training examples left ({unit.notes})")
        unit.hash = data_hash(e if isinstance(e, dict) else e.to_json() for e in unit.examples)
        D.same_on_every_rank(config, D.examples_digest(unit.examples), f"training examples of {label}")
        # One process decides (it writes run.json and may delete an old run); the others follow it.
        status, resume_from = D.run_on_main(config, lambda u=unit: C.prepare(
            u.run_dir, fingerprint=config.training_fingerprint() | {"unit": u.name},
            data_hash=u.hash, resume=config.resume, overwrite=config.overwrite,
        ), f"preparing {unit.run_dir}")
        if status == "done":
            log.info("[%d/%d] %s: finished checkpoint in %s, skipped", i, len(all_units), label, unit.run_dir)
            done.append(unit.run_dir)
            continue
        log.info("[%d/%d] %s: %d examples -> %s%s", i, len(all_units), label, len(unit.examples), unit.run_dir,
                 f" (resuming from {resume_from.name})" if resume_from else "")
        set_seed(config.seed)
        start = time.time()
        result = train(ctx, unit, resume_from)
        finish(ctx, unit, result, time.time() - start)
        done.append(unit.run_dir)
    return done


def finish(ctx: Context, unit: Unit, result: dict[str, Any], wall: float) -> None:
    """Save the adapter, the tokenizer, the metadata, and the merged model when asked.

    Every rank calls ``Trainer.save_model`` (it gathers ZeRO-3/FSDP shards and
    writes adapter and tokenizer on the main process); the rest is the main
    process's, and the ranks leave together.
    """
    model = result.pop("model")
    trainer = result.pop("trainer")
    trainer.save_model(str(unit.run_dir))
    # ZeRO-3 and FSDP leave shards in the model object: nothing to merge in one process
    sharded = bool(getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False))
    if D.is_main(ctx.config):
        _write_checkpoint_files(ctx, unit, result, wall, model, trainer, sharded=sharded)
    D.wait_for_everyone(ctx.config)


def _write_checkpoint_files(ctx: Context, unit: Unit, result: dict[str, Any], wall: float, model: Any,
                            trainer: Any, *, sharded: bool) -> None:
    meta_eval = eval_metadata(ctx, unit)
    history = result.pop("log_history", [])
    data = {
        "complete": True,
        "command": ctx.command,
        "config": ctx.config.to_dict(),
        "base_model": {"name": ctx.config.model, "path": ctx.base_path},
        "apply_chat_template": ctx.chat,
        "data": {
            "train_task": ctx.tdocs.train_task,
            "eval_task": ctx.tdocs.eval_task,
            "train_metadata": ctx.tdocs.metadata,
            "eval_metadata": meta_eval,
            "individual": unit.name,
            "split": {"train_split": ctx.config.train_split, "split_seed": ctx.config.split_seed,
                      "test_fraction": ctx.config.test_fraction},
            "n_documents": len(unit.docs),
            "n_examples": len(unit.examples),
            "n_test_documents_checked": ctx.tdocs.n_test_docs,
            "n_dropped_leaking": ctx.tdocs.n_dropped_leaking,
            "init_adapter": _init_info(ctx.config, unit.name),
            "hash": unit.hash,
            "notes": unit.notes,
        },
        "train": result | {"wall_seconds": round(wall, 1), "processes": D.describe(ctx.config, trainer),
                           "log_history": history},
        "eval_command": C.eval_command(
            base_path=ctx.base_path, checkpoint=unit.run_dir, task=ctx.tdocs.eval_task, metadata=meta_eval,
            apply_chat_template=ctx.chat,
        ),
    }
    if ctx.config.merge and sharded:
        data["merged"] = None
        data["merge_skipped"] = "DeepSpeed/FSDP training: merge the saved adapter in one process (docs/training.md)"
        log.warning("merge: true skipped under DeepSpeed/FSDP (the model holds shards); the adapter is saved: "
                    "merge it in one process as docs/training.md shows")
    elif ctx.config.merge:
        data["merged"] = str(C.merge_adapter(model, ctx.tokenizer, unit.run_dir / "merged"))
    C.write_metadata(unit.run_dir, data)
    log.info("checkpoint written to %s\nevaluate with:\n  %s", unit.run_dir, data["eval_command"])


def _init_info(config: TrainConfig, name: str | None) -> dict[str, Any] | None:
    init = init_adapter_for(config, name)
    if init is None:
        return None
    info: dict[str, Any] = {"path": str(init.resolve())}
    if (init / C.META_FILE).is_file():
        meta = C.read_metadata(init)
        info |= {"command": meta.get("command"), "data_hash": (meta.get("data") or {}).get("hash"),
                 "train_task": (meta.get("data") or {}).get("train_task")}
    return info


def finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
