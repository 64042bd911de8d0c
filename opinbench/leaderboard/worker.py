"""The evaluation worker: claim a request, run the definition's tasks through lm-eval's own
Python API, judge, validate, store; or audit a self-reported entry.

`evaluate` is the lm-eval code path of ``lm_eval --log_samples``: ``lm_eval.simple_evaluate``
with a ``TaskManager`` over opinbench's task folder and the request's `EvaluationPlan`, then
``EvaluationTracker`` writes ``results_<ts>.json`` and ``samples_<task>_<ts>.jsonl`` exactly as
lm-eval's CLI does (same calls, same order). `process` runs one claimed request end to end with
the *registered* definition the request names (its digest checked) and records FINISHED
(validated scores, warnings, stored files) or FAILED (reason and log tail); `run_worker` loops
and tallies. A self-reported run goes through the same validation (`validated`) at submission
(`ingest`) and is then audited by a worker (`opinbench.leaderboard.audit`).

Fencing: files and state are written only by `Store.finish`/`Store.fail`, in the transaction
that checks the lease. While a request runs, a heartbeat thread renews the lease, retrying
transient database errors with backoff until the lease would have expired; when the lease is
lost it interrupts the evaluation (the main thread's KeyboardInterrupt) and the worker stores
nothing. Local weights and adapters are hashed again before the model is loaded: a folder that
changed since submission fails the entry.
"""

from __future__ import annotations

import io
import logging
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.leaderboard import audit as A
from opinbench.leaderboard.definition import Definition
from opinbench.leaderboard.plan import EvaluationPlan, Request
from opinbench.leaderboard.store import Claim, Store, worker_name
from opinbench.leaderboard.validate import check_settings, validate_run

log = logging.getLogger("opinbench.leaderboard")

LOG_TAIL_CHARS = 4000
FINISHED, FAILED, LOST = "FINISHED", "FAILED", "LOST"


def _typed(request: Request | dict[str, Any]) -> Request:
    return request if isinstance(request, Request) else Request.from_row(request)


def command_line(definition: Definition, request: Request | dict[str, Any], backend: str = "hf") -> str:
    """The ``lm_eval`` command that reproduces the evaluation (the reproducibility block)."""
    return EvaluationPlan.of(definition, _typed(request), backend).command_line()


def evaluate(definition: Definition, request: Request | dict[str, Any], out_dir: str | Path, *, backend: str = "hf",
             device: str | None = "cpu", batch_size: int | str = 1,
             samples: dict[str, list[int]] | None = None) -> Path:
    """Run the definition's tasks (or ``samples``' documents of them) on the request's model;
    returns the lm-eval output folder."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    from opinbench.harness import lm_models
    from opinbench.harness.tasks import task_manager

    lm_models.register()  # --backend opinbench-hf
    plan = EvaluationPlan.of(definition, _typed(request), backend, samples=samples)
    metadata = plan.metadata
    tm = task_manager(metadata)  # opinbench's folder only (opinbench.harness.tasks)
    tracker = EvaluationTracker(output_path=str(out_dir))
    results = lm_eval.simple_evaluate(**plan.simple_evaluate_kwargs(batch_size=batch_size, device=device),
                                      evaluation_tracker=tracker, task_manager=tm)
    if results is None:  # pragma: no cover - only on non-zero ranks
        raise RuntimeError("lm-eval returned no results")
    # As lm-eval's CLI: samples out of the results, then the results file, then one samples file per task.
    samples_out = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples_out)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples_out[task_name])
    return Path(out_dir)


def judge_options(name: str, spec: dict[str, Any], run_dir: Path) -> Any:
    """The options of the judge ``name`` that judge ``run_dir`` as a definition pins it
    (``spec``: {provider, model, settings}); each setting is the options dataclass's field of
    that name, as the flag of the same name would set it (`opinbench.judging.options`).

    >>> o = judge_options("faithfulness", {"provider": "anthropic", "model": "m",
    ...                   "settings": {"max_tokens": 512, "no_control": False}}, Path("r"))
    >>> o.judge, o.max_tokens, o.no_control, o.no_progress, o.samples
    ('anthropic:m', 512, False, True, ['r'])

    Raises:
        ConfigError: no judge of that name, or a setting it does not take (named).
    """
    from opinbench.judging import registry

    entry = registry.get(name)
    return entry.options.from_mapping(
        {**(spec.get("settings") or {}), "samples": [str(run_dir)],
         entry.role: f"{spec['provider']}:{spec['model']}", "no_progress": True},
        where=f"judge {name}",
    )


def run_judges(definition: Definition, run_dir: Path) -> dict[str, str]:
    """Judge the run with the definition's pinned judges; returns ``{judge: why it was skipped}``.

    Each judge runs in process through `opinbench.judging.api.run_judge`, as ``opinbench judge
    <name>`` does, so it writes ``results_judge-<name>_<ts>.json`` and its verdicts beside the
    samples, exactly as a user running it would; its outcome goes to the log (the log tail).
    Judging needs a provider (API key or local server) that a worker may not have: without one,
    or when the judge fails or leaves requests unanswered, the judge is skipped with the
    reason recorded beside the entry, never silently.
    """
    import os

    from opinbench.judging.api import run_judge

    skipped: dict[str, str] = {}
    for name, spec in definition.judges.items():
        provider, judge = spec["provider"], f"{spec['provider']}:{spec['model']}"
        key = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}.get(provider)
        if key and not os.environ.get(key):
            skipped[name] = f"not judged: no {provider} provider configured (${key} is not set)"
            continue
        try:
            outcome = run_judge(name, judge_options(name, spec, run_dir))
        except Exception as err:  # noqa: BLE001 - a judge failure is a skipped judge, with why
            log.info("judge %s (%s): %s: %s", name, judge, type(err).__name__, err)
            skipped[name] = f"not judged: the judge failed ({judge}: {type(err).__name__}: {err})"[:400]
            continue
        log.info("judge %s (%s): %s; %s", name, judge, outcome.status, outcome.stats.summary())
        if outcome.status == "incomplete":  # partial results were written; validation refuses them
            skipped[name] = f"not judged: the judge left requests unanswered ({judge})"
        elif outcome.status == "failed":
            skipped[name] = f"not judged: the judge failed ({judge}: {outcome.why})"[:400]
    return skipped


class LeaseLost(KeyboardInterrupt):
    """The lease of the request was taken over (or could not be renewed before it expired): raised
    in the worker's main thread by its heartbeat, a KeyboardInterrupt so that no evaluation code
    catches it as an ordinary error."""


class _Heartbeat:
    """Renews a claim's lease every ``lease_s / 3`` seconds until stopped. A database error is
    retried with backoff (doubling, from 0.5 s) for as long as the lease has not expired; when the
    lease is lost, ``lost`` is set and the thread that entered (when it is the main thread) gets a
    `LeaseLost` (a KeyboardInterrupt), so that an evaluation in progress stops instead of running to
    its end.

    The interrupt is a SIGUSR1 whose handler is installed only while the heartbeat runs, not a
    SIGINT: a worker started in the background (``nohup opinbench leaderboard worker &``) inherits
    SIGINT ignored, and the lost lease went unnoticed there (found as a flaky test)."""

    def __init__(self, store: Store, claim: Claim, lease_s: float):
        self.store, self.claim, self.lease_s = store, claim, lease_s
        self.lost = False
        self.renewed = time.time()
        self._stop = threading.Event()
        self._interrupt = threading.current_thread() is threading.main_thread()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._previous: Any = None

    def _beat(self) -> bool:
        delay = 0.5
        while True:
            try:
                ok = self.store.heartbeat(self.claim, lease_s=self.lease_s)
            except Exception as err:  # noqa: BLE001 - a dropped connection or a timeout: retry until the lease ends
                if time.time() + delay >= self.renewed + self.lease_s:
                    log.error("request %s: the lease could not be renewed before it expired: %s", self.claim.id, err)
                    return False
                log.warning("request %s: heartbeat failed (%s); retrying in %.1f s", self.claim.id, err, delay)
                if self._stop.wait(delay):
                    return True
                delay = min(2 * delay, self.lease_s / 6)
                continue
            if ok:
                self.renewed = time.time()
            return ok

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            if not self._beat():
                self.lost = True
                log.error("request %s: the lease was lost; stopping the evaluation", self.claim.id)
                if self._interrupt and not self._stop.is_set():
                    # a real signal to the main thread: it also wakes a blocking call (a sleep, a read)
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                return

    @staticmethod
    def _on_lost(signum: int, frame: Any) -> None:
        raise LeaseLost("the lease was lost")

    def __enter__(self) -> _Heartbeat:
        if self._interrupt:
            self._previous = signal.signal(signal.SIGUSR1, self._on_lost)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self._interrupt:
            # A signal sent just before the join and not yet handled finds the old handler (or none).
            signal.signal(signal.SIGUSR1, self._previous if self._previous is not None else signal.SIG_DFL)


def _capture_logs() -> tuple[logging.Handler, io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler, buf


def verify_files(request: Request) -> None:
    """Local weights and adapters hash to what was submitted (they are loaded from the path now)."""
    from opinbench.leaderboard.submit import ADAPTER_PATTERNS, content_hash

    for what, path, digest, patterns in (("weights", request.model, request.weights_hash, None),
                                         ("adapter", request.adapter, request.adapter_hash, ADAPTER_PATTERNS)):
        if not digest or not path:
            continue
        now = content_hash(path, patterns) if patterns else content_hash(path)
        if now != digest:
            raise ConfigError(f"the {what} at {path} changed since submission ({digest[:19]} submitted, {now[:19]} now); "
                              "submit the new files as a new entry")


def registered(store: Store, request: Request) -> Definition:
    """The registered definition the request was submitted to, checked against its digest."""
    definition = store.board(str(request.leaderboard), request.leaderboard_version)
    if request.definition_digest and request.definition_digest != definition.digest:
        raise ConfigError(f"the request was submitted to {definition.name} v{definition.version} with digest "
                          f"{request.definition_digest[:12]}, the registered one is {definition.digest[:12]}")
    return definition


def validated(definition: Definition, run_dir: Path, request: Request, *, skipped: dict[str, str] | None = None,
              command: str) -> dict[str, Any]:
    """The validation report of a run for ``request`` (the worker's and the self-reported ingest's
    one path): `validate_run`, the run's settings against the definition's, the command."""
    report = validate_run(run_dir, definition, skipped_judges=skipped)
    report["errors"] += check_settings(run_dir, definition, request)
    report["command"] = command
    return report


def _evaluate_job(store: Store, claim: Claim, definition: Definition, request: Request, tmp: Path, backend: str,
                  evaluator: Callable[..., Path]) -> tuple[dict[str, Any], Path]:
    from opinbench.leaderboard.submit import check_leakage

    verify_files(request)
    if request.adapter:  # the guard runs against the definition the entry is scored on
        check_leakage(request.adapter, definition)
    run_dir = evaluator(definition, request, tmp / "run", backend=backend)
    skipped = run_judges(definition, run_dir)
    plan = EvaluationPlan.of(definition, request, backend)
    return validated(definition, run_dir, request, skipped=skipped, command=plan.command_line()), run_dir


def _audit_job(store: Store, claim: Claim, definition: Definition, request: Request, tmp: Path, backend: str,
               evaluator: Callable[..., Path]) -> dict[str, Any]:
    """Re-run the drawn documents of a self-reported entry and compare them with its stored files."""
    stored = store.export_files(claim.id, tmp / "stored")
    logged = A.logged_rows(stored)
    drawn = A.draw(int(request.audit_seed or 0), claim.id, {t: logged.get(t, {}) for t in definition.task_names},
                   definition.audit_documents)
    rerun = evaluator(definition, request, tmp / "rerun", backend=backend, samples=drawn)
    return A.compare(logged, A.logged_rows(rerun), drawn)


def process(store: Store, claim: Claim, *, backend: str = "hf", lease_s: float = 600.0,
            evaluator: Callable[..., Path] | None = None, workdir: str | Path | None = None) -> str:
    """Evaluate (with ``evaluator``, default `evaluate`), judge, validate and store one claimed
    request, or audit a self-reported one; returns FINISHED, FAILED or LOST (nothing stored)."""
    request = Request.from_row(claim.request)
    evaluator = evaluator or evaluate
    handler, buf = _capture_logs()
    try:
        with _Heartbeat(store, claim, lease_s) as hb, tempfile.TemporaryDirectory(dir=workdir) as tmp:
            try:
                definition = registered(store, request)
                if request.job == "audit":
                    outcome = _audit_job(store, claim, definition, request, Path(tmp), backend, evaluator)
                    return _store_audit(store, claim, outcome, buf, hb)
                report, run_dir = _evaluate_job(store, claim, definition, request, Path(tmp), backend, evaluator)
            except KeyboardInterrupt:
                if not hb.lost:
                    raise
                return _lost(claim)
            except Exception as err:  # noqa: BLE001 - every failure is recorded, with its log tail
                if hb.lost:
                    return _lost(claim)
                log.error("request %s failed: %s", claim.id, err)
                tail = (buf.getvalue() + traceback.format_exc())[-LOG_TAIL_CHARS:]
                return FAILED if store.fail(claim, f"{type(err).__name__}: {err}", log_tail=tail) else _lost(claim)
            tail = buf.getvalue()[-LOG_TAIL_CHARS:]
            if hb.lost:
                return _lost(claim)
            if report["errors"]:
                ok = store.fail(claim, "validation failed: " + "; ".join(report["errors"][:5]), log_tail=tail,
                                result=report, folder=run_dir)
                return FAILED if ok else _lost(claim)
            return FINISHED if store.finish(claim, report, log_tail=tail, folder=run_dir) else _lost(claim)
    finally:
        logging.getLogger().removeHandler(handler)


def _store_audit(store: Store, claim: Claim, outcome: dict[str, Any], buf: io.StringIO, hb: _Heartbeat) -> str:
    if hb.lost:
        return _lost(claim)
    tail = buf.getvalue()[-LOG_TAIL_CHARS:]
    result = claim.request.get("result")
    if outcome["reproduced"]:
        return FINISHED if store.finish(claim, result, log_tail=tail, audit=outcome) else _lost(claim)
    reason = "not reproduced: " + "; ".join(outcome["differences"][:3])
    return FAILED if store.fail(claim, reason, log_tail=tail, result=result, audit=outcome) else _lost(claim)


def _lost(claim: Claim) -> str:
    log.error("request %s: the lease was lost to another worker; nothing was stored", claim.id)
    return LOST


@dataclass
class Tally:
    """What a worker did: requests finished, failed, and lost to another worker (nothing stored)."""

    finished: int = 0
    failed: int = 0
    lost: int = 0

    @property
    def processed(self) -> int:
        return self.finished + self.failed + self.lost

    def add(self, state: str) -> None:
        setattr(self, state.lower(), getattr(self, state.lower()) + 1)

    def summary(self) -> str:
        """The worker's last line.

        >>> Tally(1, 0, 0).summary(), Tally(2, 1, 1).summary()
        ('1 finished, 0 failed', '2 finished, 1 failed, 1 lost to another worker')
        """
        text = f"{self.finished} finished, {self.failed} failed"
        return text + (f", {self.lost} lost to another worker" if self.lost else "")


def run_worker(store: Store, *, once: bool = False, backend: str = "hf", lease_s: float = 600.0,
               poll_s: float = 10.0, name: str | None = None, evaluator: Callable[..., Path] | None = None) -> Tally:
    """Claim and process requests until the queue is empty (``once``: at most one)."""
    name = name or worker_name()
    tally = Tally()
    while True:
        claim = store.claim(name, lease_s=lease_s)
        if claim is None:
            if once or poll_s <= 0:
                return tally
            time.sleep(poll_s)
            continue
        log.info("worker %s: request %s (%s on %s)", name, claim.id, claim.request["model"], claim.request["leaderboard"])
        state = process(store, claim, backend=backend, lease_s=lease_s, evaluator=evaluator)
        log.info("request %s: %s", claim.id, state)
        tally.add(state)
        if once:
            return tally


def ingest(store: Store, definition: Definition, run_dir: str | Path, *, submitter: str | None = None,
           name: str | None = None, rerun: bool = False) -> int:
    """A self-reported lm-eval run, validated as the worker validates its own runs (`validated`)
    and stored atomically (row, files, report) as a PENDING audit job; returns the request id.

    Raises:
        ConfigError: the run cannot be read, or does not validate (nothing is stored).
    """
    import json

    from opinbench.errors import DataError
    from opinbench.leaderboard.submit import ingest_fields

    try:
        fields = ingest_fields(definition, run_dir, submitter=submitter, name=name)
        request = Request.from_row(fields)
        report = validated(definition, Path(run_dir), request,
                           command="self-reported: " + json.dumps(fields["settings"]["model_args"], sort_keys=True))
    except (ConfigError, DataError):
        raise
    except Exception as err:  # noqa: BLE001 - a malformed run is refused with what broke, never stored half-way
        raise ConfigError(f"{run_dir}: not a readable lm-eval run ({type(err).__name__}: {err})") from None
    if report["errors"]:
        raise ConfigError(f"{run_dir}: refused, {len(report['errors'])} validation error(s): "
                          + "; ".join(report["errors"][:5]))
    if not fields.get("display_name"):
        raise ConfigError(f"{run_dir}: the run names a local model folder; give the entry's public name with --name")
    return store.ingest(fields, report, run_dir, rerun=rerun)
