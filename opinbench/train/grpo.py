"""``opinbench train grpo``: TRL's GRPOTrainer with LoRA on a CoT task's prompts (Berdoz et al. 2026).

The prompts are the ``*_cot`` task's contexts for the train side of its split,
rendered by the task (and the chat template) exactly as lm-eval renders them,
and passed to TRL as plain strings, so TRL does not template them a second
time. The rewards (`opinbench.train.rewards`) parse the completions with the
task's parser after cutting them at the task's stop sequences, so a completion
earns the correctness reward exactly when the task would score it correct.

TRL logs, per step, each reward (``rewards/format_reward/mean``, ...), the
weighted sum (``reward``), ``frac_reward_zero_std`` (the share of groups whose
completions all got the same reward: no gradient from them), completion
lengths and, from our rewards, ``invalid_share`` (unparsable answers);
everything is also appended to ``train_log.jsonl`` as it is logged.

Per-individual training (``per_individual: true``) trains one adapter per
party, candidate or respondent, as the paper does; without it, one
persona-conditioned model learns all selected individuals, whose identity is
part of every prompt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.train.common import Context, JsonlLogCallback, Unit, finite, load_trainable, run, trainer_args
from opinbench.train.config import GRPOConfig
from opinbench.train.rewards import get_rewards

log = logging.getLogger("opinbench.train")

__all__ = ["train_grpo", "build", "check_vllm", "stop_sequences"]


def stop_sequences(task: Any) -> list[str]:
    """The task's ``generation_kwargs.until`` (what lm-eval stops generation at)."""
    until = (task.config.generation_kwargs or {}).get("until") or []
    return [until] if isinstance(until, str) else list(until)


def build(ctx: Context, unit: Unit) -> None:
    task = ctx.tdocs.task
    if task.config.output_type != "generate_until":
        raise ConfigError(f"GRPO needs a generation task (*_cot), not {ctx.tdocs.train_task}")
    config: GRPOConfig = ctx.config  # type: ignore[assignment]
    rows, too_long = [], 0
    for doc in unit.docs:
        prompt = ctx.renderer.context(task, doc)
        if len(ctx.renderer.encode(prompt)) > config.max_prompt_length:
            too_long += 1
            continue
        rows.append({"id": doc["id"], "prompt": prompt, "answer": doc["answer"], "options": list(doc["options"]),
                     "letters": list(doc["letters"])})
    if too_long:
        log.warning("%d prompts longer than max_prompt_length=%d tokens: left out", too_long, config.max_prompt_length)
    unit.examples = rows
    unit.notes.update({"too_long_left_out": too_long, "stop_sequences": stop_sequences(task)})


def train(ctx: Context, unit: Unit, resume_from: Path | None) -> dict[str, Any]:
    import datasets
    from trl import GRPOTrainer

    config: GRPOConfig = ctx.config  # type: ignore[assignment]
    funcs, weights = get_rewards(
        config.reward, stop=unit.notes["stop_sequences"], target_length=config.target_length,
        length_unit=config.length_unit, format_weight=config.format_weight, length_weight=config.length_weight,
        correct_weight=config.correct_weight,
    )
    model, peft_config = load_trainable(ctx, unit)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=trainer_args(config, unit.run_dir, reward_weights=weights),
        train_dataset=datasets.Dataset.from_list(unit.examples),
        processing_class=ctx.tokenizer,
        peft_config=peft_config,
        callbacks=[JsonlLogCallback(unit.run_dir / "train_log.jsonl")],
    )
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    history = trainer.state.log_history
    rewards = [h["reward"] for h in history if "reward" in h]
    return {
        "model": trainer.model,
        "trainer": trainer,
        "global_step": trainer.state.global_step,
        "train_loss": finite(getattr(out, "training_loss", None)),
        "reward_weights": dict(zip([f.__name__ for f in funcs], weights)),
        "mean_reward_per_step": rewards,
        "log_history": history,
    }


def check_vllm(config: GRPOConfig) -> None:
    """``use_vllm: true`` needs vLLM in the training environment, in both of TRL's modes; say so before anything loads.

    TRL imports vLLM's ``LLM`` (colocate) or its client's weight-transfer code
    (server: the trainer pushes its weights to ``trl vllm-serve`` after each
    step) only when the trainer is built, after the model and the data; this
    check fails first, with what to install or change. It is not a config check:
    a GPU config can be parsed and printed on a machine without vLLM.
    """
    if not config.use_vllm:
        return
    from trl.import_utils import is_requests_available, is_vllm_available

    needed = [("vllm", is_vllm_available())]
    if config.vllm_mode == "server":  # TRL's HTTP client of `trl vllm-serve`
        needed.append(("requests", is_requests_available()))
    missing = [name for name, ok in needed if not ok]
    if missing:
        where = ("the trainer processes too, not only the `trl vllm-serve` server (TRL's client pushes the weights "
                 "through vLLM's code)" if config.vllm_mode == "server" else "the trainer processes")
        raise ConfigError(
            f"use_vllm: true (vllm_mode: {config.vllm_mode}) needs {' and '.join(missing)} installed in {where}: "
            "pip install 'trl[vllm]' (a vLLM release TRL supports, on a GPU machine), or set use_vllm: false to "
            "generate with transformers"
        )


def train_grpo(config: GRPOConfig) -> list[Path]:
    """Run ``opinbench train grpo`` for ``config``; returns the checkpoint folders."""
    check_vllm(config)
    return run(config, "grpo", build, train)
