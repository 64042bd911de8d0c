"""Training configs: TRL's own config classes with opinbench's fields in front, parsed by TRL's parser.

`SFTConfig` subclasses ``trl.SFTConfig`` and `GRPOConfig` subclasses
``trl.GRPOConfig``; both put `TrainConfig` (opinbench's own fields: data set,
task, split, leakage guard, individuals, prompt format, LoRA, run control) in
front of TRL's dataclass. A config *is* the trainer's arguments: every
``transformers.TrainingArguments`` / TRL field (``optim``,
``gradient_checkpointing``, ...) is a key too, and the trainer receives a copy
of the config whose ``output_dir`` is the checkpoint's ``trainer/`` folder
(`trainer_args`).

`parse_config` reads ``--config CFG.yaml`` plus flags with ``trl.TrlParser``,
as TRL's own scripts do (a flag beats the file); ``--help`` lists every field
with its ``help`` metadata. `__post_init__` checks types and combinations first
and says what to change, then runs TRL's ``__post_init__``.

Defaults come from the papers whose checkpoints the commands reproduce:

* `SFTConfig` (distributional SFT): SubPOP, Suh et al. 2025, "Language Model
  Fine-Tuning on Scaled Survey Data for Predicting Distributions of Public
  Opinions" (arXiv:2502.16761): LoRA r=8, alpha=32, dropout 0.05 on the query
  and value projections, learning rate 2e-4, batch size 256 (here 8 x 32
  gradient accumulation), forward KL(human || model) on the first-token
  distribution over the option letters.
* `GRPOConfig`: Berdoz et al. 2026, "Reasoning Boosts Opinion Alignment in LLMs"
  (ICLR 2026, arXiv:2603.01214), released config ``config/politicians.yaml``:
  LoRA r=32, alpha=32 on all attention and MLP projections, learning rate 5e-6,
  AdamW betas (0.9, 0.99), weight decay 0.1, warm-up ratio 0.1, cosine
  schedule, max grad norm 0.1, 8 completions per prompt (one prompt per step),
  beta 0 (no KL term), prompts up to 800 and completions up to 600 tokens, 800
  steps; composite reward 0.25 x format + 0.01 x (-|L - L*|) + 1.0 x correct.

Where opinbench's defaults differ from TRL's (logging every step, no bf16 on a
CPU, gradient checkpointing only for TRL's trainers, ...) the field is declared
again here with opinbench's default and help.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trl
import yaml

from opinbench.data import registry
from opinbench.errors import ConfigError

__all__ = ["TrainConfig", "SFTConfig", "GRPOConfig", "parse_config", "config_parser", "describe"]

DISTRIBUTION_DATA = registry.names(kind="distribution", shipped_tasks=True)
ANSWER_DATA = registry.names(answers=True, shipped_tasks=True)
INDIVIDUAL_DATA = registry.names(individuals=True)

SFT_MODES = ("distributional", "answer", "cot")
RATIONALE_SOURCES = ("human", "synthetic")
REWARDS = ("binary", "composite")
LENGTH_UNITS = ("tokens", "words", "chars")
RESUME = ("auto", "never")
VLLM_MODES = ("colocate", "server")

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors dataclasses/TRL naming
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def _check_dataset(name: str) -> None:
    """``name`` is a data set training can read, else a ConfigError listing them."""
    known = sorted(set(DISTRIBUTION_DATA) | set(ANSWER_DATA))
    if name not in known:
        raise ConfigError(f"unknown data {name!r}; choose one of {known}")


@dataclass
class TrainConfig:
    """Opinbench's settings, shared by both commands; put in front of a TRL config class.

    Model:
        model, apply_chat_template, dtype
    Data and split:
        data, train_task, eval_task, task_metadata, train_split, split_seed,
        test_fraction, max_examples, drop_test_questions
    Individuals:
        individuals, per_individual
    LoRA:
        init_adapter, lora_r, lora_alpha, lora_dropout, lora_target_modules
    Optimisation (TrainingArguments fields with opinbench's defaults):
        learning_rate, per_device_train_batch_size, gradient_accumulation_steps,
        num_train_epochs, max_steps, lr_scheduler_type, warmup_ratio,
        weight_decay, adam_beta1, adam_beta2, max_grad_norm
    Run control:
        output_dir, seed, logging_steps, save_steps, save_total_limit, resume,
        overwrite, merge, num_threads
    Trainer settings opinbench derives (None: derived in ``__post_init__``):
        use_cpu, bf16, fp16, data_seed, activation_checkpointing,
        gradient_checkpointing, disable_tqdm, remove_unused_columns
    """

    # --- model
    model: str = _f("smollm2", "Base model: a packaged name (smollm2, gemma3), a local HF folder or a Hub id.")
    apply_chat_template: bool | None = _f(
        None,
        "Render prompts through the tokenizer's chat template, exactly as lm-eval's --apply_chat_template "
        "does. Default: yes when the tokenizer has a chat template (a chat model). Evaluate the checkpoint "
        "with the same setting.",
    )
    dtype: str = _f("float32", "Weights dtype while training (float32, bfloat16, float16).")
    # --- data and split
    data: str = _f(
        "opinionqa",
        "Data set: opinionqa, subpop_train, subpop_eval (distributions); vk, wom, smartvote, anes, "
        "opinionqa (answers).",
    )
    train_task: str | None = _f(
        None,
        "lm-eval task whose documents (split train_split) are the training data; default from data and "
        "mode (opinionqa_wd, wom_cot, vk_direct, ...). Prompts are rendered by that task.",
    )
    eval_task: str | None = _f(
        None,
        "lm-eval task the checkpoint will be scored on (default: train_task). Training refuses any "
        "document whose question is in this task's test split.",
    )
    task_metadata: dict[str, Any] | str | None = _f(
        {},
        "Settings passed to both tasks as lm-eval --metadata (source, data_dir, groups, steering, "
        "elections, system, history, ...), a YAML/JSON mapping on the command line. Split settings go in "
        "split_seed/test_fraction.",
    )
    train_split: str = _f(
        "train",
        "Which documents of train_task to read: train (anything that reaches the eval task's test split "
        "is refused by the leakage guard, so test and all fail unless train and eval data differ).",
    )
    split_seed: int = _f(0, "Seed of the question split (metadata split_seed / seed of the tasks); default 0.")
    test_fraction: float = _f(0.3, "Share of questions held out for testing, as in the tasks (default 0.3).")
    max_examples: int | None = _f(None, "Train on a seeded random subset of this many documents (per individual).")
    drop_test_questions: bool = _f(
        False,
        "When train_task and eval_task differ, drop training documents whose question is in the eval "
        "task's test split instead of refusing the run.",
    )
    # --- individuals
    individuals: list[str] | None = _f(
        None,
        "Only these subjects/individuals (e.g. ['2021/deutschland:SPD'] or ['SPD']; on the command line "
        "space-separated words or a YAML list); default all.",
    )
    per_individual: bool = _f(
        False,
        "Train one adapter per individual (party, candidate, respondent) into output_dir/individuals/<name>; "
        "false: one persona-conditioned model for all individuals selected.",
    )
    # --- LoRA
    init_adapter: str | None = _f(
        None,
        "Continue training this PEFT adapter (e.g. a CoT SFT checkpoint before GRPO, as Berdoz et al. "
        "warm-start) instead of a new LoRA; the lora_* keys are then ignored. A folder with "
        "individuals/<name> gives each individual its own adapter.",
    )
    lora_r: int = _f(8, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = _f(
        ["q_proj", "v_proj"], "Modules that get LoRA adapters (command line: q_proj v_proj, q_proj,v_proj or [q_proj, v_proj])."
    )
    # --- optimisation (TrainingArguments fields, opinbench's defaults)
    learning_rate: float = _f(2e-4, "Peak learning rate (AdamW).")
    per_device_train_batch_size: int = _f(8, "Examples per forward pass.")
    gradient_accumulation_steps: int = _f(32, "Forward passes per optimiser step.")
    num_train_epochs: float = _f(1.0, "Epochs over the training documents (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Optimiser steps; > 0 overrides num_train_epochs.")
    lr_scheduler_type: str = _f("linear", "Learning-rate schedule (transformers names: linear, cosine, constant, ...).")
    warmup_ratio: float = _f(
        0.0,
        "Share of steps spent warming up the learning rate (passed on as transformers' warmup_steps, which "
        "reads a value in [0, 1) as a ratio; set warmup_ratio: 0 to give warmup_steps yourself).",
    )
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    adam_beta1: float = _f(0.9, "AdamW beta1.")
    adam_beta2: float = _f(0.999, "AdamW beta2.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    # --- run control
    output_dir: str | None = _f(
        None,
        "Checkpoint folder (required): the PEFT adapter, opinbench_train.json, and the trainer's resumable "
        "checkpoints in output_dir/trainer.",
    )
    seed: int = _f(42, "Seed of initialisation, data order, dropout and sampling.")
    logging_steps: int = _f(1, "Log every this many optimiser steps.")
    save_steps: int = _f(50, "Save a resumable trainer checkpoint every this many steps.")
    save_total_limit: int = _f(2, "Keep at most this many trainer checkpoints.")
    resume: str = _f(
        "auto",
        "auto: continue from the last trainer checkpoint in output_dir when its config and data hash "
        "match; never: refuse to start over an unfinished run.",
    )
    overwrite: bool = _f(False, "Start from scratch even if output_dir holds a run (its files are replaced).")
    merge: bool = _f(False, "Also write the base model with the adapter merged into output_dir/merged.")
    num_threads: int | None = _f(None, "torch CPU threads (default: torch's choice).")
    # --- trainer settings opinbench derives (TrainingArguments / TRL fields)
    use_cpu: bool | None = _f(None, "Train on the CPU; default: when no CUDA GPU is available.")
    bf16: bool | None = _f(None, "bf16 mixed precision; default: on a GPU when dtype is bfloat16 (never on a CPU).")
    fp16: bool | None = _f(None, "fp16 mixed precision; default: on a GPU when dtype is float16 (never on a CPU).")
    data_seed: int | None = _f(None, "Seed of the data sampler; default: seed.")
    activation_checkpointing: bool | None = _f(
        None,
        "Recompute activations in the backward pass to save memory; default: on for TRL's trainers (cot "
        "SFT, GRPO: TRL's default), off for first-token SFT (transformers' default).",
    )
    gradient_checkpointing: bool | None = _f(None, "Deprecated transformers name of activation_checkpointing.")
    disable_tqdm: bool | None = _f(False, "Hide the trainer's progress bar.")
    remove_unused_columns: bool | None = _f(
        False, "Keep False: the examples carry columns the collators and rewards read."
    )

    # ------------------------------------------------------------------ validation

    def __post_init__(self) -> None:
        self._read_command_line_values()
        _check_types(self)
        self._validate()
        self._derive_trainer_settings()
        try:
            super().__post_init__()  # TRL's config (then transformers' TrainingArguments, accelerate's state)
        except ConfigError:
            raise
        except ValueError as exc:  # TRL's and transformers' own checks: one line saying what to change
            raise ConfigError(self._explain_trainer_error(exc)) from None

    def _explain_trainer_error(self, exc: ValueError) -> str:
        return str(exc)

    def _read_command_line_values(self) -> None:
        """Values that arrive as strings from a flag: a mapping, or one word holding a whole list."""
        if isinstance(self.task_metadata, str):
            self.task_metadata = _yaml_value("task_metadata", self.task_metadata)
        if not isinstance(self.task_metadata, dict):
            raise ConfigError(f"config key 'task_metadata' expects a mapping, got {self.task_metadata!r}")
        for name in ("lora_target_modules", "individuals"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and value[0].startswith("["):
                setattr(self, name, _yaml_value(name, value[0]))
        if isinstance(self.lora_target_modules, list):
            # module names never hold a comma, so q_proj,v_proj is a list (names of individuals may)
            self.lora_target_modules = [
                m.strip() for v in self.lora_target_modules for m in str(v).split(",") if m.strip()
            ]

    def _validate(self) -> None:
        if not self.output_dir:
            raise ConfigError("output_dir is required: the folder the checkpoint is written to")
        if self.train_split not in ("train", "test", "all"):
            raise ConfigError(f"train_split must be train, test or all, got {self.train_split!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if self.resume not in RESUME:
            raise ConfigError(f"resume must be one of {RESUME}, got {self.resume!r}")
        for name in ("lora_r", "lora_alpha", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "logging_steps", "save_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.warmup_ratio and self.warmup_steps:
            raise ConfigError(
                f"set warmup_ratio ({self.warmup_ratio}) or warmup_steps ({self.warmup_steps}), not both "
                "(warmup_ratio: 0 to use warmup_steps)"
            )
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set max_steps > 0 or num_train_epochs > 0")
        if self.max_examples is not None and self.max_examples < 1:
            raise ConfigError(f"max_examples must be >= 1, got {self.max_examples}")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules is empty")
        if "split" in self.task_metadata:
            raise ConfigError(
                "task_metadata may not set split: training uses the train side and the checkpoint is "
                "scored on the test side (see train_split)"
            )
        for key in ("split_seed", "test_fraction", "seed"):
            if key in self.task_metadata:
                raise ConfigError(f"set the split with split_seed/test_fraction, not task_metadata[{key!r}]")
        _check_dataset(self.data)
        if self.per_individual and self.data not in INDIVIDUAL_DATA:
            raise ConfigError(
                f"per_individual needs individual-level data ({', '.join(INDIVIDUAL_DATA)}), not {self.data!r}"
            )

    def _derive_trainer_settings(self) -> None:
        """The TrainingArguments values opinbench derives from its own settings, before TRL's checks."""
        if self.use_cpu is None:
            import torch

            self.use_cpu = not torch.cuda.is_available()
        if self.bf16 is None:  # TRL would turn bf16 on whenever fp16 is off, a CPU included
            self.bf16 = not self.use_cpu and self.dtype == "bfloat16"
        if self.fp16 is None:
            self.fp16 = not self.use_cpu and self.dtype == "float16"
        if self.data_seed is None:
            self.data_seed = self.seed
        if self.warmup_ratio:
            self.warmup_steps = float(self.warmup_ratio)  # transformers 5: a value in [0, 1) is a ratio
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = self.default_activation_checkpointing()

    # ------------------------------------------------------------------ derived

    def default_train_task(self) -> str:
        raise NotImplementedError

    def default_activation_checkpointing(self) -> bool:
        raise NotImplementedError

    @property
    def resolved_train_task(self) -> str:
        return self.train_task or self.default_train_task()

    @property
    def resolved_eval_task(self) -> str:
        return self.eval_task or self.resolved_train_task

    def training_fingerprint(self) -> dict[str, Any]:
        """The settings that change what is trained (not where it is written or how it is logged).

        The number of processes is one of them when it is more than one: it multiplies
        the global batch (and so changes the steps), so a run is resumed only with as many
        processes as it started with. Single-process fingerprints stay as they were.
        """
        fp = {k: v for k, v in self.to_dict().items()
              if k not in _NOT_TRAINING and not k.startswith(_NOT_TRAINING_PREFIXES)}
        if self.world_size > 1:
            fp["world_size"] = self.world_size
        return fp

    def trainer_args(self, output_dir: str | Path, **changes: Any) -> Any:
        """This config as the trainer's arguments, writing resumable checkpoints to ``output_dir``.

        A shallow copy with attributes set, not ``dataclasses.replace``: TRL's
        ``GRPOConfig.__post_init__`` cannot run twice (it refuses the
        ``generation_batch_size`` it derived the first time).
        """
        args = copy.copy(self)
        args.output_dir = str(output_dir)
        for name, value in changes.items():
            setattr(args, name, value)
        return args


# Settings of where a run is written and how it is logged: they may change between a run and its resume.
_NOT_TRAINING = frozenset({
    "output_dir", "resume", "overwrite", "merge", "report_to", "num_threads", "logging_steps", "save_steps",
    "save_total_limit", "run_name", "disable_tqdm", "resume_from_checkpoint",
})
_NOT_TRAINING_PREFIXES = ("logging_", "save_", "hub_", "push_to_hub", "log_level", "log_on_each_node",
                          "vllm_server_", "vllm_group_port")  # where `trl vllm-serve` listens


@dataclass
class SFTConfig(TrainConfig, trl.SFTConfig):
    """``opinbench train sft``: distributional, answer-only or chain-of-thought SFT.

    Modes:
        distributional: forward KL(human || model) between a group's answer
            distribution and the model's first-token distribution over the
            option letters (``" A"`` and ``"A"`` summed, renormalised over the
            ordinal letters), on the prompts of the ``*_wd`` tasks.
        answer: cross-entropy on the modal (or gold) answer's letter, the
            classic baseline, on the same first-token prompts.
        cot: cross-entropy on a rationale followed by the answer, in the CoT
            task's format (TRL's SFTTrainer); rationales are human-written
            (``rationales: human``: VK's ``explanation``, Wahl-o-Mat's party
            ``comment``) or produced by a provider model, STaR-style
            (``rationales: synthetic``).
    """

    mode: str = _f("distributional", "distributional | answer | cot.")
    max_length: int = _f(1024, "Longest training sequence in tokens; longer documents are left out and counted.")
    rationales: str = _f("human", "cot mode: human (from the records) | synthetic (provider model, STaR).")
    explanation_field: str | None = _f(
        None, "cot/human: the records' meta field with the explanation (default: vk explanation, wom comment)."
    )
    rationale_max_chars: int | None = _f(
        None,
        "cot: keep only the first sentences of each rationale, up to this many characters (short "
        "rationales suit small models and short generation budgets); default: whole rationales.",
    )
    rationale_provider: str | None = _f(
        None,
        "cot/synthetic: PROVIDER:MODEL through opinbench.judging (anthropic:..., openai:..., "
        "openai-compat:... with rationale_base_url, local:smollm2).",
    )
    rationale_base_url: str | None = _f(None, "cot/synthetic: endpoint of an OpenAI-compatible provider.")
    rationale_api_key_env: str | None = _f(None, "cot/synthetic: environment variable holding the API key.")
    rationale_max_tokens: int = _f(400, "cot/synthetic: longest rationale reply.")
    rationale_temperature: float | None = _f(0.7, "cot/synthetic: sampling temperature (None: provider default).")
    rationale_cache: str | None = _f(None, "cot/synthetic: reply cache (sqlite); default the judges' cache.")
    rationale_max_requests: int | None = _f(None, "cot/synthetic: cap on provider requests (retries included).")
    rationale_concurrency: int = _f(4, "cot/synthetic: parallel requests.")
    star_rationalize: bool = _f(
        True,
        "cot/synthetic: when the provider's answer is wrong, ask again with the gold answer as a hint "
        "(STaR rationalisation) and keep the rationale if it then reaches the gold answer.",
    )

    def _validate(self) -> None:
        super()._validate()
        if self.mode not in SFT_MODES:
            raise ConfigError(f"mode must be one of {SFT_MODES}, got {self.mode!r}")
        if self.mode == "distributional" and self.data not in DISTRIBUTION_DATA:
            raise ConfigError(
                f"distributional SFT needs distribution data ({', '.join(DISTRIBUTION_DATA)}), not {self.data!r}; "
                "use mode: answer or cot"
            )
        if self.mode == "cot":
            if self.rationales not in RATIONALE_SOURCES:
                raise ConfigError(f"rationales must be one of {RATIONALE_SOURCES}, got {self.rationales!r}")
            if self.rationales == "synthetic" and not self.rationale_provider:
                raise ConfigError("rationales: synthetic needs rationale_provider (e.g. anthropic:claude-sonnet-4-6)")
            if (self.rationales == "human" and not self.explanation_field
                    and not registry.profile(self.data).explanation_field):
                raise ConfigError(
                    f"rationales: human needs explanations in the records; {self.data!r} has none by default "
                    "(set explanation_field, or use rationales: synthetic)"
                )
            if self.data in DISTRIBUTION_DATA and not registry.get(self.data).has_answers:
                raise ConfigError(f"cot mode has no task for {self.data!r}")
        if self.rationale_max_chars is not None and self.rationale_max_chars < 1:
            raise ConfigError(f"rationale_max_chars must be >= 1, got {self.rationale_max_chars}")
        if self.max_length < 16:
            raise ConfigError(f"max_length must be >= 16, got {self.max_length}")

    def default_train_task(self) -> str:
        if self.mode == "distributional":
            return f"{self.data}_wd"
        if self.mode == "answer":
            return f"{self.data}_wd" if self.data in DISTRIBUTION_DATA else f"{self.data}_direct"
        return f"{self.data}_cot"

    def default_activation_checkpointing(self) -> bool:
        # cot trains with TRL's SFTTrainer (TRL's default: on); the first-token modes with a plain
        # transformers Trainer that computes the logits of a few positions only (transformers' default: off)
        return self.mode == "cot"


@dataclass
class GRPOConfig(TrainConfig, trl.GRPOConfig):
    """``opinbench train grpo``: TRL's GRPOTrainer on a CoT task's prompts.

    Rewards (`opinbench.train.rewards`), each logged under its name, plus TRL's
    ``reward`` (weighted sum) and ``frac_reward_zero_std`` (share of groups
    whose completions all got the same reward: no learning signal):

        binary: ``correctness_reward`` (1 if the parsed answer is the gold one).
        composite: ``format_weight x format_reward`` (one point per XML tag)
            + ``length_weight x length_reward`` (-|L - target_length|)
            + ``correct_weight x correctness_reward``.
    """

    data: str = _f("wom", "Data set: wom, smartvote, anes, vk or opinionqa (its *_cot task).")
    # LoRA and optimisation defaults of Berdoz et al. (config/politicians.yaml)
    lora_r: int = _f(32, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha.")
    lora_dropout: float = _f(0.0, "LoRA dropout.")
    lora_target_modules: list[str] = _f(list(ALL_PROJECTIONS), "Modules that get LoRA adapters.")
    learning_rate: float = _f(5e-6, "Peak learning rate (AdamW).")
    per_device_train_batch_size: int = _f(
        8, "Completions per forward pass (TRL counts completions): num_generations per prompt."
    )
    gradient_accumulation_steps: int = _f(1, "Forward passes per optimiser step.")
    max_steps: int = _f(800, "Optimiser steps (> 0 overrides num_train_epochs).")
    lr_scheduler_type: str = _f("cosine", "Learning-rate schedule.")
    warmup_ratio: float = _f(0.1, "Share of steps spent warming up (transformers' warmup_steps as a ratio).")
    weight_decay: float = _f(0.1, "AdamW weight decay.")
    adam_beta2: float = _f(0.99, "AdamW beta2.")
    max_grad_norm: float = _f(0.1, "Gradient clipping norm.")
    save_steps: int = _f(100, "Save a resumable trainer checkpoint every this many steps.")
    # rewards
    reward: str = _f("composite", "binary | composite.")
    format_weight: float = _f(0.25, "composite: weight of format_reward (0..4 points).")
    length_weight: float = _f(0.01, "composite: weight of length_reward (-|L - target_length|).")
    correct_weight: float = _f(1.0, "composite: weight of correctness_reward (0 or 1).")
    target_length: int = _f(
        100,
        "composite: L*, the completion length that costs nothing. Berdoz et al.'s code counts 400 "
        "characters; 100 tokens is about that.",
    )
    length_unit: str = _f("tokens", "composite: unit of L and L*: tokens | words | chars.")
    # sampling and lengths (TRL's fields, the paper's values)
    num_generations: int = _f(8, "Completions sampled per prompt (the group of GRPO).")
    beta: float = _f(0.0, "KL coefficient towards the base model (0: no reference model).")
    temperature: float = _f(1.0, "Sampling temperature of the completions.")
    top_p: float = _f(1.0, "Nucleus sampling of the completions.")
    max_prompt_length: int = _f(800, "Prompts longer than this many tokens are left out and counted.")
    max_completion_length: int = _f(600, "Longest completion in tokens.")
    loss_type: str = _f("dapo", "TRL loss aggregation (grpo, dr_grpo, dapo, bnpo, ...); TRL's default.")
    scale_rewards: str = _f("group", "Advantage scaling: group | batch | none.")
    log_completions: bool = _f(False, "Print sampled completions (TRL).")

    def _validate(self) -> None:
        super()._validate()
        if self.reward not in REWARDS:
            raise ConfigError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if self.length_unit not in LENGTH_UNITS:
            raise ConfigError(f"length_unit must be one of {LENGTH_UNITS}, got {self.length_unit!r}")
        if self.data not in ANSWER_DATA:
            raise ConfigError(f"GRPO needs answer data with a CoT task ({', '.join(ANSWER_DATA)}), not {self.data!r}")
        if self.num_generations < 2:
            raise ConfigError("num_generations must be >= 2: GRPO compares completions within a group")
        # The batch arithmetic (completions per generation batch, a multiple of num_generations) depends on the
        # number of processes, known once TRL's __post_init__ has set up accelerate: see _explain_trainer_error.
        if self.use_vllm and self.vllm_mode not in VLLM_MODES:
            raise ConfigError(f"vllm_mode must be one of {VLLM_MODES}, got {self.vllm_mode!r}")
        if self.temperature <= 0:
            raise ConfigError("temperature must be > 0: GRPO needs different completions to compare")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        if self.max_completion_length < 1 or self.max_prompt_length < 1:
            raise ConfigError("max_completion_length and max_prompt_length must be >= 1")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ConfigError(f"scale_rewards must be group, batch or none, got {self.scale_rewards!r}")

    def default_train_task(self) -> str:
        return f"{self.data}_cot"

    def _explain_trainer_error(self, exc: ValueError) -> str:
        text = str(exc)
        if "num_generations" in text and "generation_batch_size" in text:
            # TRL: per_device_train_batch_size x processes x steps_per_generation completions are sampled at once,
            # in whole groups of num_generations
            steps = self.steps_per_generation or self.gradient_accumulation_steps
            batch = self.per_device_train_batch_size * self.world_size * steps
            return (
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) x processes ({self.world_size}) x "
                f"steps_per_generation ({steps}; default gradient_accumulation_steps) = {batch} completions per "
                f"generation batch must be a multiple of num_generations = {self.num_generations} (TRL: {text})"
            )
        return text

    def default_activation_checkpointing(self) -> bool:
        return True  # TRL's default for its trainers


# --------------------------------------------------------------------------- types
#
# Dataclasses do not check types, and TrlParser converts only the strings of the command line
# (and string values of the YAML file); a Python caller or a YAML number where a list belongs
# would reach the trainer unchecked. So opinbench's own fields are checked here, by annotation.


def _own_fields(cls: type) -> list[str]:
    """Names of the fields declared in this module's classes (opinbench's, or TRL's with our default)."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ == __name__:
            names.update(dict.fromkeys(vars(klass).get("__annotations__", {})))
    return list(names)


def _expect(name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's annotation (and int widened to float)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _expect(name, inner[0], value)
    base = origin or hint
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is float and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if base is bool and not isinstance(value, bool):
        raise ConfigError(f"config key {name!r} expects true or false, got {value!r}")
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"config key {name!r} expects an integer, got {value!r}")
    if base in (float, str, list, dict) and not isinstance(value, base):
        what = {float: "a number", str: "a string", list: "a list", dict: "a mapping"}[base]
        raise ConfigError(f"config key {name!r} expects {what}, got {value!r}")
    return value


def _check_types(config: TrainConfig) -> None:
    hints = typing.get_type_hints(type(config))
    for name in _own_fields(type(config)):
        setattr(config, name, _expect(name, hints[name], getattr(config, name)))


def _yaml_value(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config key {name!r}: cannot read {text!r} ({exc})") from None


# --------------------------------------------------------------------------- parsing

# argparse's names of the converters HfArgumentParser uses, in words
_TYPE_WORDS = {"int": "an integer", "float": "a number", "string_to_bool": "true or false"}


class _Parser(trl.TrlParser):
    """TrlParser whose mistakes are `ConfigError`s saying what to change (argparse would exit).

    Hooks are TrlParser's/argparse's own: ``set_defaults_with_config`` receives the
    YAML mapping, ``parse_known_args`` the flags, ``error`` argparse's complaints.
    """

    config_path: Path | None = None

    def _keys(self) -> list[str]:
        return sorted({a.dest for a in self._actions if a.dest != "help"})

    def set_defaults_with_config(self, **kwargs: Any) -> list[str]:
        keys = self._keys()
        for key in kwargs:
            if key not in keys:
                where = f" in {self.config_path}" if self.config_path else ""
                raise ConfigError(f"unknown config key {key!r}{where}{_did_you_mean(key, keys)} ({self.prog} --help lists them)")
        return super().set_defaults_with_config(**kwargs)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        namespace, rest = super().parse_known_args(args, namespace)
        if rest:
            flag = next((a for a in rest if a.startswith("-")), rest[0])
            hint = _did_you_mean(flag.lstrip("-").replace("-", "_"), self._keys())
            raise ConfigError(f"unknown flag or value {flag!r}{hint} ({self.prog} --help lists them)")
        return namespace, rest

    def error(self, message: str) -> typing.NoReturn:
        m = re.match(r"argument --([\w-]+)\S*: invalid (\w+) value: (.*)", message)
        if m and m.group(2) in _TYPE_WORDS:
            raise ConfigError(f"config key {m.group(1)!r} expects {_TYPE_WORDS[m.group(2)]}, got {m.group(3)}")
        raise ConfigError(message)

    def parse(self, argv: list[str]) -> tuple[TrainConfig, Any]:
        """The config and the other options (``--print-defaults``, ``--print-config``) of ``argv``."""
        argv = list(argv)
        if "--config" in argv:
            i = argv.index("--config")
            if i + 1 >= len(argv):
                raise ConfigError("--config needs a YAML file")
            self.config_path = Path(argv[i + 1])
            if _read_config_file(self.config_path) is None:  # an empty file sets nothing (TRL would refuse it)
                del argv[i: i + 2]
        config, options = self.parse_args_and_config(argv)
        return config, options


def _did_you_mean(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(str(key), keys, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _read_config_file(path: Path) -> dict[str, Any] | None:
    """The YAML mapping of ``path``, read first for clear errors (TrlParser then reads it for real)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys to values, got {type(loaded).__name__}")
    return loaded


def config_parser(cls: type[TrainConfig], prog: str | None = None) -> _Parser:
    """TRL's parser for ``cls``: every field a flag (and a key of ``--config``), plus the print options."""
    command = "grpo" if issubclass(cls, GRPOConfig) else "sft"
    parser = _Parser(cls, prog=prog or f"opinbench train {command}", description=cls.__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print-defaults", action="store_true", help="print every key, default and help, and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    return parser


def parse_config(cls: type[TrainConfig], argv: list[str]) -> TrainConfig:
    """``cls`` from ``--config CFG.yaml`` and flags (a flag beats the file), as TRL's scripts parse."""
    return config_parser(cls).parse(argv)[0]


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def describe(cls: type[TrainConfig]) -> str:
    """Every key with its default and help, as YAML comments (``--print-defaults``); opinbench's first."""
    own = set(_own_fields(cls))
    fields = sorted(dataclasses.fields(cls), key=lambda f: f.name not in own)
    lines = []
    for i, f in enumerate(fields):
        if i and f.name not in own and fields[i - 1].name in own:
            lines.append("\n# ---- TRL and transformers settings (TrainingArguments)")
        lines.append("# " + " ".join(str(f.metadata.get("help", "")).split()))
        lines.append(f"{f.name}: {json.dumps(_default(f), default=str)}")
    return "\n".join(lines) + "\n"
