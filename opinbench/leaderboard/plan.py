"""One evaluation plan per leaderboard request: the ``simple_evaluate`` arguments and the
``lm_eval`` command that reproduces them come from the same object, so the command shown beside
an entry cannot drift from what the worker ran.

`Request` is a ``requests`` row as a typed value (what the worker, the audit and the site read);
`EvaluationPlan.of` turns a definition and a request into the run: model arguments (never remote
code), tasks, few-shot, seeds, generation arguments, chat template, ``--metadata`` and, for a
subset definition or a reproduction audit, lm-eval's ``samples``.

>>> from opinbench.leaderboard.definition import load_definition
>>> plan = EvaluationPlan.of(load_definition("smoke"), Request(model="org/m", dtype="float32"))
>>> plan.tasks, plan.samples
(('opinionqa_wd', 'wom_cot'), {'opinionqa_wd': [0, 1, 2], 'wom_cot': [0, 1, 2]})
>>> "--apply_chat_template" in plan.command_line() and "--num_fewshot 0" in plan.command_line()
True
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from opinbench.leaderboard.definition import Definition

SEEDS = (("random_seed", 0), ("numpy_random_seed", 1234), ("torch_random_seed", 1234), ("fewshot_random_seed", 1234))


@dataclass(frozen=True)
class Request:
    """A leaderboard request (a ``requests`` row): the model to evaluate and the board it is for."""

    model: str
    dtype: str = "auto"
    chat_template: bool = True
    revision: str | None = None
    weights_hash: str | None = None
    adapter: str | None = None
    adapter_hash: str | None = None
    id: int | None = None
    leaderboard: str | None = None
    leaderboard_version: int | None = None
    definition_digest: str | None = None
    display_name: str | None = None
    submitter: str | None = None
    self_reported: bool = False
    job: str = "evaluate"
    audit_seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Request:
        """The typed request of a row (unknown columns, such as the state, are left out)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in names and v is not None}
        return cls(**values)

    @property
    def public_name(self) -> str:
        return self.display_name or self.model


@dataclass(frozen=True)
class EvaluationPlan:
    """Everything one lm-eval run of a request is made of."""

    backend: str
    model_args: dict[str, Any]
    tasks: tuple[str, ...]
    num_fewshot: int
    seeds: dict[str, int]
    gen_kwargs: dict[str, Any] | None
    metadata: dict[str, Any] | None
    samples: dict[str, list[int]] | None
    apply_chat_template: bool

    @classmethod
    def of(cls, definition: Definition, request: Request, backend: str = "hf", *,
           samples: dict[str, list[int]] | None = None) -> EvaluationPlan:
        """The plan of ``request`` on ``definition``; ``samples`` (a reproduction audit's documents)
        replaces the definition's subset and narrows the tasks to those it names."""
        s = definition.settings
        chosen = samples if samples is not None else definition.samples
        tasks = tuple(t for t in definition.task_names if samples is None or t in samples)
        return cls(
            backend=backend, model_args=model_args(request, backend), tasks=tasks,
            num_fewshot=int(s.get("num_fewshot", 0)), seeds={k: int(s.get(k, d)) for k, d in SEEDS},
            gen_kwargs={"max_gen_toks": int(s["max_gen_toks"])} if s.get("max_gen_toks") else None,
            metadata=definition.metadata or None, samples=chosen,
            apply_chat_template=bool(request.chat_template),
        )

    def simple_evaluate_kwargs(self, *, batch_size: int | str = 1, device: str | None = "cpu") -> dict[str, Any]:
        """``lm_eval.simple_evaluate`` keyword arguments (without the task manager and tracker)."""
        return dict(
            model=self.backend, model_args=self.model_args, tasks=list(self.tasks), num_fewshot=self.num_fewshot,
            batch_size=batch_size, device=device, limit=None, samples=self.samples, log_samples=True,
            apply_chat_template=self.apply_chat_template, gen_kwargs=self.gen_kwargs, metadata=self.metadata,
            **self.seeds,
        )

    def command_line(self) -> str:
        """The command that reproduces the run (the reproducibility block of an entry)."""
        from opinbench.harness import lm_models
        from opinbench.paths import tasks_dir

        margs = ",".join(f"{k}={v}" for k, v in self.model_args.items())
        # opinbench's models through the module that registers them: plain lm_eval cannot load them
        parts = [*lm_models.launcher(self.backend), "--model", self.backend, "--model_args", margs,
                 "--include_path", str(tasks_dir()), "--tasks", ",".join(self.tasks),
                 "--num_fewshot", str(self.num_fewshot), "--seed", ",".join(str(v) for v in self.seeds.values()),
                 "--log_samples", "--output_path", "OUT"]
        if self.metadata:
            parts += ["--metadata", json.dumps(self.metadata, sort_keys=True)]
        if self.samples:
            parts += ["--samples", json.dumps(self.samples)]
        if self.gen_kwargs:
            parts += ["--gen_kwargs", ",".join(f"{k}={v}" for k, v in self.gen_kwargs.items())]
        if self.apply_chat_template:
            parts.append("--apply_chat_template")
        return " ".join(shlex.quote(p) for p in parts)


def model_args(request: Request, backend: str = "hf") -> dict[str, Any]:
    """lm-eval ``model_args`` of a request: its model, revision, dtype and adapter; never remote code."""
    args: dict[str, Any] = {"pretrained": request.model, "dtype": request.dtype, "trust_remote_code": False}
    if request.revision and not request.weights_hash:
        args["revision"] = request.revision
    if request.adapter:
        args["lora_local_path" if backend == "vllm" else "peft"] = request.adapter
    return args
