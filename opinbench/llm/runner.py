"""Send many model requests: cache first, bounded concurrency, retries, a budget, progress.

`run_jobs` takes `Job`s (a cache key, the request as JSON, and a callable that
sends it) and returns one `Outcome` per distinct key:

* **Cache first.** A key already in the cache is answered from it and costs
  nothing; identical requests within a run are sent once (``deduplicated``).
* **Write-through.** Each reply is stored the moment it arrives, so Ctrl-C or a
  crash loses nothing already paid for; the rerun picks up where it stopped.
* **Retries** (this layer only: the clients' own are off, see `providers`): on a
  retryable error (429, 5xx, 529, timeout, dropped connection, malformed JSON)
  wait and resend, up to ``max_retries`` times. The wait is the server's
  ``Retry-After`` when it sends one (capped at ``max_retry_after``), else
  exponential backoff with jitter (``backoff * 2**n``, capped at ``max_backoff``).
  A ``Retry-After`` also holds back the other workers until it has passed: a
  rate limit applies to the whole key, not to one thread.
* **Budget.** ``max_requests`` caps the HTTP attempts (retries included: a
  retried 5xx may still be billed). When it runs out, the remaining items are
  ``skipped`` and the run ends normally with partial results, marked as such.
* **Auth errors** (missing or rejected key) stop everything at once: no other
  request could succeed.

Counts add up (`RunStats`): ``sent + cached + failed + skipped == unique``,
``unique + deduplicated == items``, and ``requests`` (HTTP attempts) is the sum
of the outcomes' ``attempts``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from tqdm.auto import tqdm

from opinbench.errors import OpinbenchError
from opinbench.llm.cache import ReplyCache
from opinbench.llm.errors import RequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One request to make (or to find in the cache).

    Attributes:
        key: the cache key (`opinbench.llm.cache.request_key`).
        request: the request as JSON, stored beside the reply for auditing.
        call: sends the request and returns a JSON-serialisable reply.
    """

    key: str
    request: dict[str, Any]
    call: Callable[[], Any]


@dataclass(frozen=True)
class Outcome:
    """What became of one distinct request.

    Attributes:
        reply: the reply (None unless ``status`` is ``sent`` or ``cached``).
        status: ``sent`` (answered now), ``cached``, ``failed`` (gave up) or
            ``skipped`` (budget exhausted, or the run was stopped).
        attempts: HTTP attempts made in this run.
        error: why it failed or was skipped.
        error_kind: the last error's kind (``http 429``, ``timeout``, ``budget``...).
    """

    reply: Any
    status: str
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "cached")


@dataclass
class RunOptions:
    """How to send: concurrency, retries, backoff, budget, progress bar."""

    concurrency: int = 4
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    progress: bool = True
    interrupt_grace: float = 2.0


class Budget:
    """A thread-safe cap on HTTP attempts, shared by every batch of one command."""

    def __init__(self, max_requests: int | None) -> None:
        self.max_requests = max_requests
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.max_requests is not None and self.used >= self.max_requests:
                return False
            self.used += 1
            return True

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self.max_requests is not None and self.used >= self.max_requests


@dataclass
class RunStats:
    """Counts for the progress bar and the results file.

    ``items`` = all jobs; ``unique`` = distinct keys = ``sent + cached + failed +
    skipped``; ``deduplicated`` = ``items - unique``; ``requests`` = HTTP attempts;
    ``retried`` = attempts that were retries; ``errors`` = error kinds seen (every
    failed attempt, retried or not).
    """

    items: int = 0
    unique: int = 0
    deduplicated: int = 0
    sent: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    retried: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: RunStats) -> None:
        for name in (
            "items",
            "unique",
            "deduplicated",
            "sent",
            "cached",
            "failed",
            "skipped",
            "requests",
            "retried",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = dict(self.errors)
        return d

    def summary(self) -> str:
        return (
            f"{self.unique} distinct requests: {self.sent} sent, {self.cached} cached, "
            f"{self.failed} failed, {self.skipped} skipped; {self.requests} HTTP attempts "
            f"({self.retried} retries)" + (f"; errors: {dict(self.errors)}" if self.errors else "")
        )


class _Gate:
    """Holds every worker back until a server's Retry-After has passed."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self, stop: threading.Event) -> bool:
        """Wait until open; False if the run was stopped meanwhile."""
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return not stop.is_set()
            if stop.wait(left):
                return False


def run_jobs(
    jobs: Sequence[Job],
    *,
    cache: ReplyCache,
    provider: str,
    model: str,
    options: RunOptions,
    budget: Budget,
    max_concurrency: int | None = None,
    desc: str = "requests",
) -> tuple[dict[str, Outcome], RunStats]:
    """Answer every job, from the cache or by sending it; see the module docstring.

    Args:
        jobs: the requests; equal keys are sent once.
        cache: replies already paid for; new replies are written to it at once.
        provider, model: stored beside each reply in the cache (for auditing).
        options: concurrency, retries, backoff, progress bar.
        budget: HTTP attempts left (shared across calls).
        max_concurrency: the provider's own cap (a local model: 1).
        desc: progress bar label.

    Returns:
        ``{key: Outcome}`` for every distinct key, and the counts.

    Raises:
        AuthError: the key is missing or rejected (replies so far stay cached).
        KeyboardInterrupt: passed on after stopping the workers (ditto).
    """
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    stats = RunStats(items=len(jobs), unique=len(unique), deduplicated=len(jobs) - len(unique))
    outcomes: dict[str, Outcome] = {}
    pending: list[Job] = []
    for key, job in unique.items():
        hit = cache.get(key)
        if hit is not None:
            outcomes[key] = Outcome(hit, "cached")
            stats.cached += 1
        else:
            pending.append(job)

    lock = threading.Lock()
    stop = threading.Event()
    gate = _Gate()
    bar = tqdm(
        total=len(unique),
        initial=stats.cached,
        desc=desc,
        unit="req",
        disable=not options.progress,
        dynamic_ncols=True,
        leave=True,
    )

    def show() -> None:
        bar.set_postfix(
            done=stats.sent,
            cached=stats.cached,
            retried=stats.retried,
            failed=stats.failed,
            **({"skipped": stats.skipped} if stats.skipped else {}),
            refresh=False,
        )

    show()

    def attempt_delay(err: RequestError, n: int) -> float:
        if err.retry_after is not None:
            return min(err.retry_after, options.max_retry_after)
        base = min(options.max_backoff, options.backoff * (2 ** (n - 1)))
        return base * random.uniform(0.5, 1.0)  # jitter: workers do not retry in lockstep

    def work(job: Job) -> Outcome:
        attempts = 0
        while True:
            if not gate.wait(stop):
                return Outcome(None, "skipped", attempts, "run stopped", "stopped")
            if not budget.take():
                return Outcome(
                    None, "skipped", attempts, "request budget exhausted (--max-requests)", "budget"
                )
            attempts += 1
            with lock:
                stats.requests += 1
            try:
                reply = job.call()
            except RequestError as err:
                with lock:
                    stats.errors[err.kind] += 1
                if not err.retryable or attempts > options.max_retries:
                    why = (
                        "not retryable"
                        if not err.retryable
                        else f"gave up after {attempts} attempts"
                    )
                    log.warning("%s (%s)", err, why)
                    return Outcome(None, "failed", attempts, str(err), err.kind)
                delay = attempt_delay(err, attempts)
                if err.retry_after is not None:
                    gate.close_for(delay)
                log.debug("%s; retry %d in %.2f s", err, attempts, delay)
                with lock:
                    stats.retried += 1
                    show()
                if stop.wait(delay):
                    return Outcome(None, "skipped", attempts, "run stopped", "stopped")
                continue
            except OpinbenchError:
                # AuthError (missing/rejected key), an unknown model (404), a local model
                # that cannot be loaded...: every other item would fail the same way.
                stop.set()
                raise
            except Exception as err:  # noqa: BLE001
                # A bug or an unexpected library error: fail the item, keep the run.
                log.exception("unexpected error from %s:%s", provider, model)
                return Outcome(
                    None, "failed", attempts, f"{type(err).__name__}: {err}", type(err).__name__
                )
            cache.put(job.key, provider=provider, model=model, request=job.request, reply=reply)
            return Outcome(reply, "sent", attempts)

    workers = max(1, min(options.concurrency, max_concurrency or options.concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
    futures: dict[Future[Outcome], Job] = {}
    failure: BaseException | None = None
    try:
        futures = {pool.submit(work, job): job for job in pending}
        not_done = set(futures)
        while not_done:
            # A timeout keeps the main thread responsive to Ctrl-C.
            done, not_done = wait(not_done, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures[fut]
                try:
                    out = fut.result()
                except BaseException as err:  # noqa: BLE001
                    stop.set()
                    failure = failure or err
                    continue
                outcomes[job.key] = out
                with lock:
                    if out.status == "sent":
                        stats.sent += 1
                    elif out.status == "failed":
                        stats.failed += 1
                    else:
                        stats.skipped += 1
                    show()
                bar.update(1)
        if failure is not None:
            raise failure
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        # Give requests already in flight a moment to land in the cache (they are
        # paid for); then leave, without waiting for slow ones.
        running = [f for f in futures if not f.done()]
        if running:
            wait(running, timeout=options.interrupt_grace)
        bar.close()
        raise
    pool.shutdown(wait=True)
    bar.close()
    if stats.skipped and budget.exhausted:
        log.warning(
            "request budget (--max-requests %s) exhausted: %d requests not sent",
            budget.max_requests,
            stats.skipped,
        )
    return outcomes, stats
