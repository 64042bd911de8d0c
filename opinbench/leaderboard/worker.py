"""The evaluation worker: claim a request, run the definition's tasks through lm-eval's own
Python API, judge, validate, store.

`evaluate` is the lm-eval code path of ``lm_eval --log_samples``: ``lm_eval.simple_evaluate``
with a ``TaskManager`` over opinbench's task folder, then ``EvaluationTracker`` writes
``results_<ts>.json`` and ``samples_<task>_<ts>.jsonl`` exactly as lm-eval's CLI does (same
calls, same order). `process` runs one claimed request end to end and records FINISHED
(validated scores, warnings, stored files) or FAILED (reason and log tail); `run_worker` loops.
While a request runs, a heartbeat thread renews its lease; a worker that dies stops renewing,
and another worker takes the request over once the lease expires (`opinbench.leaderboard.store`).
"""

from __future__ import annotations

import io
import logging
import shlex
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opinbench.leaderboard.definition import Definition, load_definition
from opinbench.leaderboard.store import Claim, Store, worker_name
from opinbench.leaderboard.validate import validate_run

log = logging.getLogger("opinbench.leaderboard")

LOG_TAIL_CHARS = 4000


def model_args(request: dict[str, Any], backend: str = "hf") -> dict[str, Any]:
    """lm-eval ``model_args`` of a request: its model, revision, dtype and adapter; never remote code."""
    args: dict[str, Any] = {"pretrained": request["model"], "dtype": request["dtype"], "trust_remote_code": False}
    if request.get("revision") and not request.get("weights_hash"):
        args["revision"] = request["revision"]
    if request.get("adapter"):
        if backend == "vllm":
            args["lora_local_path"] = request["adapter"]
        else:
            args["peft"] = request["adapter"]
    return args


def command_line(definition: Definition, request: dict[str, Any], backend: str = "hf") -> str:
    """The ``lm_eval`` command that reproduces the evaluation (the reproducibility block)."""
    from opinbench.paths import tasks_dir

    s = definition.settings
    margs = ",".join(f"{k}={v}" for k, v in model_args(request, backend).items())
    from opinbench.harness import lm_models

    # opinbench's models through the module that registers them: plain lm_eval cannot load them
    parts = [*lm_models.launcher(backend), "--model", backend, "--model_args", margs, "--include_path", str(tasks_dir()),
             "--tasks", ",".join(definition.task_names), "--num_fewshot", str(s.get("num_fewshot", 0)),
             "--seed", ",".join(str(s.get(k, d)) for k, d in (("random_seed", 0), ("numpy_random_seed", 1234),
                                                               ("torch_random_seed", 1234),
                                                               ("fewshot_random_seed", 1234))),
             "--log_samples", "--output_path", "OUT"]
    import json

    if definition.metadata:
        parts += ["--metadata", json.dumps(definition.metadata, sort_keys=True)]
    if definition.samples:
        parts += ["--samples", json.dumps(definition.samples)]
    if s.get("max_gen_toks"):
        parts += ["--gen_kwargs", f"max_gen_toks={s['max_gen_toks']}"]
    if request.get("chat_template"):
        parts.append("--apply_chat_template")
    return " ".join(shlex.quote(p) for p in parts)


def evaluate(definition: Definition, request: dict[str, Any], out_dir: str | Path, *, backend: str = "hf",
             device: str | None = "cpu", batch_size: int | str = 1) -> Path:
    """Run the definition's tasks on the request's model; returns the lm-eval output folder."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    from opinbench.harness import lm_models
    from opinbench.harness.tasks import task_manager

    lm_models.register()  # --backend opinbench-hf
    s = definition.settings
    metadata = definition.metadata
    tm = task_manager(metadata)  # opinbench's folder only (opinbench.harness.tasks)
    tracker = EvaluationTracker(output_path=str(out_dir))
    results = lm_eval.simple_evaluate(
        model=backend, model_args=model_args(request, backend), tasks=definition.task_names,
        num_fewshot=s.get("num_fewshot", 0), batch_size=batch_size, device=device, limit=None,
        samples=definition.samples, log_samples=True, evaluation_tracker=tracker,
        apply_chat_template=bool(request.get("chat_template")),
        gen_kwargs={"max_gen_toks": int(s["max_gen_toks"])} if s.get("max_gen_toks") else None,
        task_manager=tm, random_seed=s.get("random_seed", 0), numpy_random_seed=s.get("numpy_random_seed", 1234),
        torch_random_seed=s.get("torch_random_seed", 1234), fewshot_random_seed=s.get("fewshot_random_seed", 1234),
        metadata=metadata or None,
    )
    if results is None:  # pragma: no cover - only on non-zero ranks
        raise RuntimeError("lm-eval returned no results")
    # As lm-eval's CLI: samples out of the results, then the results file, then one samples file per task.
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return Path(out_dir)


def judge_argv(name: str, spec: dict[str, Any], run_dir: Path) -> list[str]:
    """``opinbench judge`` arguments that judge ``run_dir`` with a pinned judge ``spec``
    ({provider, model, settings}): each setting is the judge command's flag of that name
    (``max_tokens: 512`` -> ``--max-tokens 512``; ``true`` -> the bare flag, ``false``/``null`` -> left out).

    >>> judge_argv("faithfulness", {"provider": "anthropic", "model": "m",
    ...            "settings": {"max_tokens": 512, "no_control": False}}, Path("r"))[4:]
    ['--judge', 'anthropic:m', '--no-progress', '--max-tokens', '512']
    """
    from opinbench.judging.cli import JUDGE_COMMANDS

    roles = {c.kind: c.role for c in JUDGE_COMMANDS}
    if name not in roles:
        raise ValueError(f"no judge named {name!r} (known: {sorted(roles)})")
    argv = ["judge", name, "--samples", str(run_dir), f"--{roles[name]}", f"{spec['provider']}:{spec['model']}",
            "--no-progress"]
    for key, value in (spec.get("settings") or {}).items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


def run_judges(definition: Definition, run_dir: Path) -> dict[str, str]:
    """Judge the run with the definition's pinned judges; returns ``{judge: why it was skipped}``.

    Each judge is the ``opinbench judge <name>`` command (`opinbench.judging.cli`) run in process
    on the lm-eval folder, so it writes ``results_judge-<name>_<ts>.json`` and its verdicts beside
    the samples, exactly as a user running it would; its printout goes to the log (the log tail).
    Judging needs a provider (API key or local server) that a worker may not have: without one,
    or when the judge command fails or leaves requests unanswered, the judge is skipped with the
    reason recorded beside the entry, never silently.
    """
    import contextlib
    import io
    import os

    from opinbench.cli import main

    skipped: dict[str, str] = {}
    for name, spec in definition.judges.items():
        provider = spec["provider"]
        key = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}.get(provider)
        if key and not os.environ.get(key):
            skipped[name] = f"not judged: no {provider} provider configured (${key} is not set)"
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                rc = main(judge_argv(name, spec, run_dir))
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a judge failure is a skipped judge, with why
            rc, out = None, io.StringIO(f"{type(err).__name__}: {err}")
        log.info("judge %s (%s:%s):\n%s", name, provider, spec["model"], out.getvalue().rstrip())
        if rc == 0:
            continue
        last = (out.getvalue().strip().splitlines() or [""])[-1][:300]
        if rc == 3:  # INCOMPLETE_EXIT: partial results were written; validation refuses to publish them
            skipped[name] = f"not judged: the judge left requests unanswered ({provider}:{spec['model']})"
        else:
            skipped[name] = f"not judged: the judge failed ({provider}:{spec['model']}: {last or f'exit {rc}'})"
    return skipped


class _Heartbeat:
    """Renews a claim's lease every ``lease_s / 3`` seconds until stopped."""

    def __init__(self, store: Store, claim: Claim, lease_s: float):
        self.store, self.claim, self.lease_s = store, claim, lease_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            if not self.store.heartbeat(self.claim, lease_s=self.lease_s):
                self.lost = True
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _capture_logs() -> tuple[logging.Handler, io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler, buf


def process(store: Store, claim: Claim, *, backend: str = "hf", lease_s: float = 600.0,
            evaluator: Callable[..., Path] | None = None, workdir: str | Path | None = None) -> str:
    """Evaluate (with ``evaluator``, default `evaluate`), judge, validate and store one claimed
    request; returns its final state."""
    request = claim.request
    evaluator = evaluator or evaluate
    handler, buf = _capture_logs()
    try:
        with _Heartbeat(store, claim, lease_s) as hb, tempfile.TemporaryDirectory(dir=workdir) as tmp:
            try:
                definition = load_definition(request["leaderboard"])
                if definition.version != request["leaderboard_version"]:
                    raise RuntimeError(f"the request is for {definition.name} version {request['leaderboard_version']}, "
                                       f"this worker has version {definition.version}")
                run_dir = evaluator(definition, request, Path(tmp) / "run", backend=backend)
                skipped = run_judges(definition, run_dir)
                report = validate_run(run_dir, definition, skipped_judges=skipped)
                report["command"] = command_line(definition, request, backend)
                store.put_files(claim.id, run_dir)
            except Exception as err:  # noqa: BLE001 - every failure is recorded, with its log tail
                log.error("request %s failed: %s", claim.id, err)
                tail = (buf.getvalue() + traceback.format_exc())[-LOG_TAIL_CHARS:]
                store.fail(claim, f"{type(err).__name__}: {err}", log_tail=tail)
                return "FAILED"
            if hb.lost:
                log.error("request %s: the lease was lost to another worker; this result is dropped", claim.id)
                return "LOST"
            tail = buf.getvalue()[-LOG_TAIL_CHARS:]
            if report["errors"]:
                store.fail(claim, "validation failed: " + "; ".join(report["errors"][:5]), log_tail=tail, result=report)
                return "FAILED"
            store.finish(claim, report, log_tail=tail)
            return "FINISHED"
    finally:
        logging.getLogger().removeHandler(handler)


def run_worker(store: Store, *, once: bool = False, backend: str = "hf", lease_s: float = 600.0,
               poll_s: float = 10.0, name: str | None = None, evaluator: Callable[..., Path] | None = None) -> int:
    """Claim and process requests until the queue is empty (``once``: at most one); returns how many ran."""
    name = name or worker_name()
    done = 0
    while True:
        claim = store.claim(name, lease_s=lease_s)
        if claim is None:
            if once or poll_s <= 0:
                return done
            time.sleep(poll_s)
            continue
        log.info("worker %s: request %s (%s on %s)", name, claim.id, claim.request["model"], claim.request["leaderboard"])
        state = process(store, claim, backend=backend, lease_s=lease_s, evaluator=evaluator)
        log.info("request %s: %s", claim.id, state)
        done += 1
        if once:
            return done
