"""Send many model requests: cache first, bounded concurrency, retries, a budget, progress.

`run_jobs` takes `Job`s (a cache key, the request as JSON, and a callable that
sends it) and returns one `Outcome` per distinct key:

* **Cache first.** A key already in the cache is answered from it and costs
  nothing; identical requests within a run are sent once (``deduplicated``).
  Right before sending, the key is claimed in the cache (`ReplyCache.claim`): a
  key another process answered meanwhile is read (``cached``), one it is sending
  now is waited for (``waited``), so two runs over one cache pay for each request
  once.
* **Write-through.** Each reply is stored the moment it arrives, so a crash loses
  nothing already paid for; the rerun picks up where it stopped.
* **Ctrl-C** stops new requests at once, then waits for those in flight (each
  bounded by the client's timeout) so that their replies, paid for, are stored,
  and passes the interrupt on. A second Ctrl-C abandons them (said in the log).
  An `AuthError` or another fatal error stops the same way.
* **Refusals and empty replies** (`opinbench.llm.replies`): a refusal is an answer,
  stored and counted (``refused``); an empty reply is counted (``empty``), asked
  again up to ``max_empty_retries`` times, then failed with kind ``empty``, never
  stored as a success.
* **Retries** (this layer only: the clients' own are off, see `providers`): on a
  retryable error (429, 5xx, 529, timeout, dropped connection, malformed JSON)
  wait and resend, up to ``max_retries`` times. The wait is the server's
  ``Retry-After`` when it sends one (capped at ``max_retry_after``), else
  exponential backoff with jitter (``backoff * 2**n``, capped at ``max_backoff``).
  A ``Retry-After`` also holds back the other workers until it has passed: a
  rate limit applies to the whole key, not to one thread.
* **Budget.** ``max_requests`` caps the HTTP attempts (retries included: a
  retried 5xx may still be billed); ``max_tokens`` caps input + output tokens as
  the API reports them (``usage``). Tokens are known only once a reply is back, so
  no request is started once they are spent, and the requests already in flight
  may overshoot by at most ``concurrency - 1`` replies. When a budget runs out, the
  remaining items are ``skipped`` and the run ends normally with partial results,
  marked as such. `Budget.spent` says what was used.
* **Auth errors** (missing or rejected key) stop everything at once: no other
  request could succeed.

Counts add up (`RunStats`): ``sent + cached + failed + skipped == unique``,
``unique + deduplicated == items``, and ``requests`` (HTTP attempts) is the sum
of the outcomes' ``attempts``; ``input_tokens`` / ``output_tokens`` sum the usage
of the replies received (``unmetered``: replies that came without usage).
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
from opinbench.llm.replies import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One request to make (or to find in the cache).

    Attributes:
        key: the cache key (`opinbench.llm.cache.request_key`).
        request: the request as JSON, stored beside the reply for auditing.
        call: sends the request and returns a `Reply` (or a plain JSON-serialisable value).
    """

    key: str
    request: dict[str, Any]
    call: Callable[[], Any]


@dataclass(frozen=True)
class Outcome:
    """What became of one distinct request.

    Attributes:
        reply: the reply (None unless ``status`` is ``sent`` or ``cached``).
        status: ``sent`` (answered now), ``cached`` (from the cache, filled by an
            earlier run or by another one meanwhile), ``failed`` (gave up) or
            ``skipped`` (budget exhausted, or the run was stopped).
        attempts: HTTP attempts made in this run.
        error: why it failed or was skipped.
        error_kind: the last error's kind (``http 429``, ``timeout``, ``empty``, ``budget``...).
        refused: the reply is a refusal the provider signalled (`opinbench.llm.replies`).
        stop_reason: the API's stop / finish reason, when known.
    """

    reply: Any
    status: str
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None
    refused: bool = False
    stop_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "cached")


@dataclass
class RunOptions:
    """How to send: concurrency, retries, backoff, progress bar."""

    concurrency: int = 4
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    progress: bool = True
    max_empty_retries: int = 2
    claim_poll: float = 0.25  # seconds between looks at a key another process is sending
    # Batch mode (`opinbench.llm.batch_runner`): a `opinbench.llm.batches.BatchAPI`, or None (live).
    batch: Any = None
    batch_size: int = 10_000  # requests per batch (the APIs take up to 50,000 / 100,000)
    poll_interval: float = 30.0  # seconds between looks at a submitted batch


class Budget:
    """Thread-safe caps on HTTP attempts and on tokens, shared by every batch of one command.

    Args:
        max_requests: HTTP attempts, retries included (None: no cap).
        max_tokens: input + output tokens as the API reports them (None: no cap).
    """

    def __init__(self, max_requests: int | None = None, max_tokens: int | None = None) -> None:
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.used = 0  # HTTP attempts
        self.input_tokens = 0
        self.output_tokens = 0
        self.unmetered = 0  # replies without usage: their tokens are not counted
        self._lock = threading.Lock()

    def _out_by(self) -> str | None:
        if self.max_requests is not None and self.used >= self.max_requests:
            return "requests"
        if self.max_tokens is not None and self.input_tokens + self.output_tokens >= self.max_tokens:
            return "tokens"
        return None

    def take(self) -> bool:
        """Charge one HTTP attempt; False (nothing charged) once a budget is spent."""
        with self._lock:
            if self._out_by() is not None:
                return False
            self.used += 1
            return True

    def spend(self, reply: Reply) -> None:
        """Charge a reply's tokens."""
        with self._lock:
            if reply.metered:
                self.input_tokens += reply.input_tokens or 0
                self.output_tokens += reply.output_tokens or 0
            else:
                self.unmetered += 1

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._out_by() is not None

    @property
    def exhausted_by(self) -> str | None:
        """``requests``, ``tokens`` or None."""
        with self._lock:
            return self._out_by()

    def why_skipped(self) -> str:
        if self.exhausted_by == "tokens":
            return f"token budget exhausted (--max-tokens-budget {self.max_tokens})"
        return f"request budget exhausted (--max-requests {self.max_requests})"

    def spent(self) -> dict[str, Any]:
        """What the command used, and its caps: for the results file."""
        with self._lock:
            return {
                "requests": self.used,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "tokens": self.input_tokens + self.output_tokens,
                "replies_without_usage": self.unmetered,
                "max_requests": self.max_requests,
                "max_tokens_budget": self.max_tokens,
                "exhausted_by": self._out_by(),
            }


@dataclass
class RunStats:
    """Counts for the progress bar and the results file.

    ``items`` = all jobs; ``unique`` = distinct keys = ``sent + cached + failed +
    skipped``; ``deduplicated`` = ``items - unique``; ``requests`` = HTTP attempts;
    ``retried`` = attempts that were retries; ``errors`` = error kinds seen (every
    failed attempt, retried or not). ``refused``: distinct requests answered by a
    refusal (sent or cached); ``empty``: empty replies received (each one an
    attempt); ``input_tokens`` / ``output_tokens``: the usage of the replies received
    in this run, ``unmetered`` of them came without usage; ``waited``: keys another
    process was sending when this run wanted them.
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
    refused: int = 0
    empty: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unmetered: int = 0
    waited: int = 0
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
            "refused",
            "empty",
            "input_tokens",
            "output_tokens",
            "unmetered",
            "waited",
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
            f"({self.retried} retries); tokens {self.input_tokens} in, {self.output_tokens} out"
            + (f" ({self.unmetered} replies without usage)" if self.unmetered else "")
            + (f"; {self.refused} refused" if self.refused else "")
            + (f"; {self.empty} empty replies" if self.empty else "")
            + (f"; errors: {dict(self.errors)}" if self.errors else "")
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


def _stored(entry: Any) -> Outcome:
    """A cache hit as an outcome (its metadata says whether it was a refusal)."""
    meta = entry.meta or {}
    return Outcome(
        entry.reply, "cached", refused=bool(meta.get("refused")), stop_reason=meta.get("stop_reason")
    )


def from_cache(
    jobs: Sequence[Job], cache: ReplyCache
) -> tuple[dict[str, Job], RunStats, dict[str, Outcome], list[Job]]:
    """Jobs deduplicated by key, the stats so far, the outcomes the cache already holds, and
    the jobs still to send (the first step of live and batch runs alike)."""
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    stats = RunStats(items=len(jobs), unique=len(unique), deduplicated=len(jobs) - len(unique))
    outcomes: dict[str, Outcome] = {}
    pending: list[Job] = []
    for key, job in unique.items():
        entry = cache.entry(key)
        if entry is not None:
            outcomes[key] = _stored(entry)
            stats.cached += 1
            stats.refused += outcomes[key].refused
        else:
            pending.append(job)
    return unique, stats, outcomes, pending


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
        budget: HTTP attempts and tokens left (shared across calls).
        max_concurrency: the provider's own cap (a local model: 1).
        desc: progress bar label.

    With ``options.batch`` set, the jobs go through the provider's batch API instead
    (`opinbench.llm.batch_runner.run_batch_jobs`, same cache, claims and budget).

    Returns:
        ``{key: Outcome}`` for every distinct key, and the counts.

    Raises:
        AuthError: the key is missing or rejected (replies so far stay cached).
        KeyboardInterrupt: passed on once the requests in flight are stored (ditto).
    """
    if options.batch is not None:
        from opinbench.llm.batch_runner import run_batch_jobs

        return run_batch_jobs(
            jobs, cache=cache, api=options.batch, provider=provider, model=model,
            options=options, budget=budget, desc=desc,
        )
    unique, stats, outcomes, pending = from_cache(jobs, cache)

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
            **({"refused": stats.refused} if stats.refused else {}),
            refresh=False,
        )

    show()

    def attempt_delay(err: RequestError, n: int) -> float:
        if err.retry_after is not None:
            return min(err.retry_after, options.max_retry_after)
        base = min(options.max_backoff, options.backoff * (2 ** (n - 1)))
        return base * random.uniform(0.5, 1.0)  # jitter: workers do not retry in lockstep

    stopped = Outcome(None, "skipped", 0, "run stopped", "stopped")

    def claim(job: Job) -> Outcome | None:
        """None once this run holds the key; an outcome if it is answered or the run stops."""
        waited = False
        while True:
            c = cache.claim(job.key)
            if c.state == "mine":
                return None
            if c.state == "stored":
                return _stored(c.entry)
            if not waited:
                waited = True
                log.debug("%s is being sent by %s: waiting for its reply", job.key[:12], c.holder)
                with lock:
                    stats.waited += 1
            if stop.wait(options.claim_poll):
                return stopped

    def send(job: Job) -> Outcome:
        """Send until answered, failed or stopped (the key is claimed)."""
        attempts = 0
        empties = 0
        while True:
            if not gate.wait(stop):
                return Outcome(None, "skipped", attempts, "run stopped", "stopped")
            if not budget.take():
                return Outcome(None, "skipped", attempts, budget.why_skipped(), "budget")
            attempts += 1
            with lock:
                stats.requests += 1
            try:
                reply = Reply.of(job.call())
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
            budget.spend(reply)
            with lock:
                stats.input_tokens += reply.input_tokens or 0
                stats.output_tokens += reply.output_tokens or 0
                stats.unmetered += not reply.metered
            if reply.empty:
                empties += 1
                with lock:
                    stats.empty += 1
                if empties > options.max_empty_retries:
                    why = f"empty reply ({empties} times, stop reason {reply.stop_reason})"
                    log.warning("%s:%s: %s", provider, model, why)
                    return Outcome(None, "failed", attempts, why, "empty", stop_reason=reply.stop_reason)
                with lock:
                    stats.retried += 1
                continue
            stored = cache.put(
                job.key,
                provider=provider,
                model=model,
                request=job.request,
                reply=reply.value,
                meta=reply.meta(),
            )
            if not stored:
                # Another run stored one first (its claim had lapsed): keep theirs, one
                # reply per key for everyone.
                entry = cache.entry(job.key)
                if entry is not None:
                    return _stored(entry)
            return Outcome(
                reply.value, "sent", attempts, refused=reply.refused, stop_reason=reply.stop_reason
            )

    def work(job: Job) -> Outcome:
        if not gate.wait(stop):
            return stopped
        early = claim(job)
        if early is not None:
            return early
        out: Outcome | None = None
        try:
            out = send(job)
            return out
        finally:
            if out is None or out.status != "sent":
                cache.release(job.key)  # failed, skipped or stopped: another run may try

    workers = max(1, min(options.concurrency, max_concurrency or options.concurrency))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
    futures: dict[Future[Outcome], Job] = {}
    failure: BaseException | None = None
    heartbeat = max(1.0, cache.claim_ttl / 3)
    next_beat = time.monotonic() + heartbeat
    try:
        futures = {pool.submit(work, job): job for job in pending}
        not_done = set(futures)
        while not_done:
            # A timeout keeps the main thread responsive to Ctrl-C.
            done, not_done = wait(not_done, timeout=0.2, return_when=FIRST_COMPLETED)
            if time.monotonic() >= next_beat:
                cache.refresh_claims()  # this run is alive: its claims hold
                next_beat = time.monotonic() + heartbeat
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
                    elif out.status == "cached":
                        stats.cached += 1
                    elif out.status == "failed":
                        stats.failed += 1
                    else:
                        stats.skipped += 1
                    stats.refused += out.refused
                    show()
                bar.update(1)
        if failure is not None:
            raise failure
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _land_in_flight([f for f in futures if not f.done()])
        bar.close()
        raise
    pool.shutdown(wait=True)
    bar.close()
    if stats.skipped and budget.exhausted:
        log.warning("%s: %d requests not sent", budget.why_skipped(), stats.skipped)
    return outcomes, stats


def _land_in_flight(running: list[Future[Outcome]]) -> None:
    """Wait for requests already sent, so that their replies (paid for) reach the cache."""
    if not running:
        return
    log.warning(
        "stopping: waiting for %d request(s) in flight so that their replies are stored "
        "(Ctrl-C again to abandon them)",
        len(running),
    )
    try:
        wait(running)
    except KeyboardInterrupt:
        lost = sum(not f.done() for f in running)
        log.warning("abandoned %d request(s) in flight: their replies will not be stored", lost)
