"""``opinbench train sft``: distributional, answer-only and chain-of-thought SFT with LoRA.

* ``distributional`` and ``answer`` train on the first-token prompts of a
  ``*_wd`` (or ``*_direct``) task with `LetterTrainer`, a transformers
  ``Trainer`` whose ``compute_loss`` reads the logits at the answer position
  (`opinbench.train.letters`): forward KL(human || model) over the ordinal
  letters, or ``-log P(gold letter)``. The letters are scored exactly as the
  task scores them, both spellings (``" A"``, ``"A"``) summed.
* ``cot`` trains TRL's ``SFTTrainer`` on the CoT task's prompt followed by a
  rationale and the gold answer (`opinbench.train.rationales`), with the loss
  on the completion only. The prompt is tokenised as lm-eval tokenises it for
  generation, the completion on its own, so the model learns to continue the
  very token sequence it is given at evaluation time.

The SubPOP defaults (`opinbench.train.config.SFTConfig`) fit distributional
SFT; Berdoz et al. warm-start their GRPO runs with a short CoT SFT at a lower
learning rate (5e-5).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.train import distributed as D
from opinbench.train import letters as L
from opinbench.train.common import (
    Context,
    JsonlLogCallback,
    Unit,
    finite,
    load_trainable,
    run,
    trainer_args,
)
from opinbench.train.config import SFTConfig

log = logging.getLogger("opinbench.train")

__all__ = ["LetterTrainer", "train_sft", "build_letter_examples", "build_cot_examples"]


def _letter_trainer_class() -> type:
    from transformers import Trainer

    class LetterTrainer(Trainer):
        """A ``Trainer`` whose loss is computed from the option letters' first-token log-probabilities.

        ``objective="kl"``: forward KL(human || model) per (question, group),
        averaged over the batch; ``"nll"``: ``-log P(gold letter)``. Logs the
        mean probability mass on the letters (``letter_mass``) beside the loss.
        """

        def __init__(self, *args: Any, objective: str = "kl", **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.objective = objective
            self._mass: list[float] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            lp = L.choice_logprobs(model, inputs)
            loss, diag = L.batch_loss(lp, inputs, self.objective)
            self._mass.append(diag["letter_mass"])
            return (loss, {"choice_logprobs": lp}) if return_outputs else loss

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs and self._mass:
                mass = sum(self._mass) / len(self._mass)
                if self.args.world_size > 1:  # every rank logs here, as for the loss: average their batches
                    import torch

                    mass = self.accelerator.reduce(torch.tensor(mass, device=self.args.device), "mean").item()
                logs["letter_mass"] = round(mass, 6)
                self._mass = []
            super().log(logs, *args, **kwargs)

    return LetterTrainer


def __getattr__(name: str) -> Any:  # LetterTrainer without importing transformers at module import
    if name == "LetterTrainer":
        return _letter_trainer_class()
    raise AttributeError(name)


# --------------------------------------------------------------------------- examples


def build_letter_examples(ctx: Context, unit: Unit, objective: str) -> None:
    from tqdm.auto import tqdm

    task, max_len = ctx.tdocs.task, ctx.config.max_length
    ties = too_long = 0
    out = []
    for doc in tqdm(unit.docs, desc="rendering prompts", dynamic_ncols=True, disable=not D.is_main(ctx.config)):
        ex = L.build_example(ctx.renderer, task, doc, objective=objective)
        if ex is None:
            ties += 1
        elif ex.length > max_len:
            too_long += 1
        else:
            out.append(ex)
    if ties:
        log.warning("%d documents whose top two options tie have no modal answer: left out", ties)
    if too_long:
        log.warning("%d documents longer than max_length=%d tokens: left out", too_long, max_len)
    unit.examples = out
    unit.notes.update({"modal_ties_left_out": ties, "too_long_left_out": too_long, "objective": objective})


def build_cot_examples(ctx: Context, unit: Unit, provider: tuple[Any, Any, Any] | None = None) -> None:
    """Tokenised prompt + rationale/answer examples; ``provider`` overrides the configured one (tests)."""
    from opinbench.train import rationales as R

    config: SFTConfig = ctx.config  # type: ignore[assignment]
    if config.rationales == "human":
        pairs, notes = R.human_rationales(
            unit.docs, data=config.data, field=config.explanation_field,
            load_options=dict(config.task_metadata) | {"split_seed": config.split_seed,
                                                        "test_fraction": config.test_fraction},
        )
    else:
        def star() -> tuple[list[tuple[dict[str, Any], str]], dict[str, Any]]:
            prov, identity, cache = provider or R.provider_from_config(config)
            pairs, stats = R.synthetic_rationales(
                unit.docs, provider=prov, identity=identity, cache=cache, max_tokens=config.rationale_max_tokens,
                temperature=config.rationale_temperature, rationalize=config.star_rationalize,
                max_requests=config.rationale_max_requests, concurrency=config.rationale_concurrency,
            )
            return pairs, stats.as_dict()

        # provider requests cost money and share one cache: the main process asks, every rank trains on its answers
        pairs, star_stats = D.run_on_main(config, star, "STaR rationales")
        notes = {"star": star_stats}
        log.info("STaR rationales: %s", star_stats)
    eos = ctx.tokenizer.eos_token_id
    out, unparsable, too_long = [], 0, 0
    for doc, rationale in pairs:
        target = R.format_target(doc, R.shorten(rationale, config.rationale_max_chars))
        if not R.target_is_gold(doc, target):
            unparsable += 1
            continue
        prompt = ctx.renderer.context(ctx.tdocs.task, doc)
        prompt_ids = list(ctx.renderer.encode(prompt))
        completion_ids = list(ctx.tokenizer(target, add_special_tokens=False)["input_ids"]) + [eos]
        ids = prompt_ids + completion_ids
        if len(ids) > config.max_length:
            too_long += 1
            continue
        out.append({
            "id": doc["id"], "prompt": prompt, "completion": target,
            "input_ids": ids, "labels": [-100] * len(prompt_ids) + completion_ids,
        })
    unit.examples = out
    unit.notes.update(notes | {"target_not_gold_left_out": unparsable, "too_long_left_out": too_long,
                               "rationales": config.rationales})


def build(ctx: Context, unit: Unit) -> None:
    mode = ctx.config.mode  # type: ignore[attr-defined]
    if mode == "cot":
        build_cot_examples(ctx, unit)
    else:
        if not ctx.tdocs.task.config.output_type == "multiple_choice":
            raise ConfigError(f"{mode} SFT needs a first-token task (*_wd, *_direct), not {ctx.tdocs.train_task}")
        build_letter_examples(ctx, unit, "kl" if mode == "distributional" else "nll")


# --------------------------------------------------------------------------- training


def _result(trainer: Any, out: Any) -> dict[str, Any]:
    return {
        "model": trainer.model,
        "trainer": trainer,
        "global_step": trainer.state.global_step,
        "train_loss": finite(getattr(out, "training_loss", None)),
        "log_history": trainer.state.log_history,
    }


def train_letters(ctx: Context, unit: Unit, resume_from: Path | None) -> dict[str, Any]:
    from peft import get_peft_model

    model, peft_config = load_trainable(ctx, unit)
    if peft_config is not None:
        model = get_peft_model(model, peft_config)
    trainer = _letter_trainer_class()(
        model=model,
        args=trainer_args(ctx.config, unit.run_dir),
        train_dataset=unit.examples,
        data_collator=partial(L.collate, pad_id=ctx.tokenizer.pad_token_id),
        processing_class=ctx.tokenizer,
        callbacks=[JsonlLogCallback(unit.run_dir / "train_log.jsonl")],
        objective=unit.notes["objective"],
    )
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return _result(trainer, out)


def train_cot(ctx: Context, unit: Unit, resume_from: Path | None) -> dict[str, Any]:
    import datasets
    from trl import SFTTrainer

    model, peft_config = load_trainable(ctx, unit)
    trainer = SFTTrainer(
        model=model,
        args=trainer_args(ctx.config, unit.run_dir),
        train_dataset=datasets.Dataset.from_list(
            [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in unit.examples]
        ),
        processing_class=ctx.tokenizer,
        peft_config=peft_config,
        callbacks=[JsonlLogCallback(unit.run_dir / "train_log.jsonl")],
    )
    out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return _result(trainer, out)


def train(ctx: Context, unit: Unit, resume_from: Path | None) -> dict[str, Any]:
    if ctx.config.mode == "cot":  # type: ignore[attr-defined]
        return train_cot(ctx, unit, resume_from)
    return train_letters(ctx, unit, resume_from)


def train_sft(config: SFTConfig) -> list[Path]:
    """Run ``opinbench train sft`` for ``config``; returns the checkpoint folders."""
    return run(config, "sft", build, train)
