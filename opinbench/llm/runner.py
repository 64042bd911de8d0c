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
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from tqdm.auto import tqdm

from opinbench.errors import OpinbenchError
from opinbench.llm.batch_runner import run_batch_jobs
from opinbench.llm.cache import ReplyCache
from opinbench.llm.errors import RequestError
from opinbench.llm.jobs import (
    Budget,
    Job,
    Outcome,
    RunOptions,
    RunStats,
    from_cache,
    retry_delay,
    stored_outcome,
)
from opinbench.llm.replies import Reply

__all__ = ["Budget", "Job", "Outcome", "RunOptions", "RunStats", "run_jobs", "run_provider_jobs"]

log = logging.getLogger(__name__)


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
        return run_batch_jobs(
            jobs, cache=cache, api=options.batch, provider=provider, model=model,
            options=options, budget=budget, desc=desc,
        )
    run = _LiveRun(jobs, cache, provider, model, options, budget, desc)
    workers = max(1, min(options.concurrency, max_concurrency or options.concurrency))
    return run.run(workers)


def run_provider_jobs(
    jobs: Sequence[Job], provider: Any, *, cache: ReplyCache, options: RunOptions, budget: Budget,
    desc: str,
) -> tuple[dict[str, Outcome], RunStats]:
    """`run_jobs` for the jobs of one `opinbench.llm.providers.Provider`: its name, model and
    concurrency cap."""
    return run_jobs(jobs, cache=cache, provider=provider.spec.provider, model=provider.spec.model,
                    options=options, budget=budget, max_concurrency=provider.max_concurrency,
                    desc=desc)


_STOPPED = Outcome(None, "skipped", 0, "run stopped", "stopped")


class _LiveRun:
    """One `run_jobs` call: the state its worker threads share, and the steps they take.

    A worker `work`s one job: wait for the Retry-After gate, `claim` its key in the cache,
    then `send` it, one `attempt` at a time, until answered, failed or stopped; `store`
    keeps the reply. The main thread (`run`) hands out the jobs, refreshes the claims and
    `collect`s the outcomes; on any exception it stops the workers and lands the replies
    in flight (`_land_in_flight`).
    """

    def __init__(self, jobs: Sequence[Job], cache: ReplyCache, provider: str, model: str,
                 options: RunOptions, budget: Budget, desc: str) -> None:
        self.cache, self.provider, self.model = cache, provider, model
        self.options, self.budget = options, budget
        self.unique, self.stats, self.outcomes, self.pending = from_cache(jobs, cache)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.gate = _Gate()
        self.bar = tqdm(total=len(self.unique), initial=self.stats.cached, desc=desc, unit="req",
                        disable=not options.progress, dynamic_ncols=True, leave=True)
        self.show()

    def show(self) -> None:
        s = self.stats
        self.bar.set_postfix(
            done=s.sent, cached=s.cached, retried=s.retried, failed=s.failed,
            **({"skipped": s.skipped} if s.skipped else {}),
            **({"refused": s.refused} if s.refused else {}),
            refresh=False,
        )

    # -- in a worker thread

    def work(self, job: Job) -> Outcome:
        if not self.gate.wait(self.stop):
            return _STOPPED
        early = self.claim(job)
        if early is not None:
            return early
        out: Outcome | None = None
        try:
            out = self.send(job)
            return out
        finally:
            if out is None or out.status != "sent":
                self.cache.release(job.key)  # failed, skipped or stopped: another run may try

    def claim(self, job: Job) -> Outcome | None:
        """None once this run holds the key; an outcome if it is answered or the run stops."""
        waited = False
        while True:
            c = self.cache.claim(job.key)
            if c.state == "mine":
                return None
            if c.state == "stored":
                return stored_outcome(c.entry)
            if not waited:
                waited = True
                log.debug("%s is being sent by %s: waiting for its reply", job.key[:12], c.holder)
                with self.lock:
                    self.stats.waited += 1
            if self.stop.wait(self.options.claim_poll):
                return _STOPPED

    def send(self, job: Job) -> Outcome:
        """Send until answered, failed or stopped (the key is claimed)."""
        attempts = empties = 0
        while True:
            if not self.gate.wait(self.stop):
                return Outcome(None, "skipped", attempts, "run stopped", "stopped")
            if not self.budget.take():
                return Outcome(None, "skipped", attempts, self.budget.why_skipped(), "budget")
            attempts += 1
            with self.lock:
                self.stats.requests += 1
            reply = self.attempt(job, attempts)
            if isinstance(reply, Outcome):
                return reply
            if reply is None:
                continue  # retried
            self.budget.spend(reply)
            with self.lock:
                self.stats.count_reply(reply)
            if not reply.empty:
                return self.store(job, reply, attempts)
            empties += 1
            with self.lock:
                self.stats.empty += 1
            if empties > self.options.max_empty_retries:
                why = f"empty reply ({empties} times, stop reason {reply.stop_reason})"
                log.warning("%s:%s: %s", self.provider, self.model, why)
                return Outcome(None, "failed", attempts, why, "empty", stop_reason=reply.stop_reason)
            with self.lock:
                self.stats.retried += 1

    def attempt(self, job: Job, attempts: int) -> Reply | Outcome | None:
        """One HTTP attempt: the reply, a final outcome (failed, stopped), or None (retry now)."""
        try:
            return Reply.of(job.call())
        except RequestError as err:
            return self.after_error(err, attempts)
        except OpinbenchError:
            # AuthError (missing/rejected key), an unknown model (404), a local model
            # that cannot be loaded...: every other item would fail the same way.
            self.stop.set()
            raise
        except Exception as err:  # noqa: BLE001
            # A bug or an unexpected library error: fail the item, keep the run; one line
            # per item (the traceback with --verbose).
            log.warning("%s:%s: unexpected %s: %s", self.provider, self.model,
                        type(err).__name__, err)
            log.debug("traceback", exc_info=True)
            return Outcome(None, "failed", attempts, f"{type(err).__name__}: {err}",
                           type(err).__name__)

    def after_error(self, err: RequestError, attempts: int) -> Outcome | None:
        """Give up (the outcome) or wait out the backoff (None; stopped: the outcome)."""
        with self.lock:
            self.stats.errors[err.kind] += 1
        if not err.retryable or attempts > self.options.max_retries:
            why = "not retryable" if not err.retryable else f"gave up after {attempts} attempts"
            log.warning("%s (%s)", err, why)
            return Outcome(None, "failed", attempts, str(err), err.kind)
        delay = retry_delay(err, attempts, self.options)
        if err.retry_after is not None:
            self.gate.close_for(delay)
        log.debug("%s; retry %d in %.2f s", err, attempts, delay)
        with self.lock:
            self.stats.retried += 1
            self.show()
        if self.stop.wait(delay):
            return Outcome(None, "skipped", attempts, "run stopped", "stopped")
        return None

    def store(self, job: Job, reply: Reply, attempts: int) -> Outcome:
        stored = self.cache.put(job.key, provider=self.provider, model=self.model,
                                request=job.request, reply=reply.value, meta=reply.meta())
        if not stored:
            # Another run stored one first (its claim had lapsed): keep theirs, one
            # reply per key for everyone.
            entry = self.cache.entry(job.key)
            if entry is not None:
                return stored_outcome(entry)
        return Outcome(reply.value, "sent", attempts, refused=reply.refused,
                       stop_reason=reply.stop_reason)

    # -- in the main thread

    def run(self, workers: int) -> tuple[dict[str, Outcome], RunStats]:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
        futures: dict[Future[Outcome], Job] = {}
        try:
            futures = {pool.submit(self.work, job): job for job in self.pending}
            self.collect(futures)
        except BaseException:
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            _land_in_flight([f for f in futures if not f.done()])
            self.bar.close()
            raise
        pool.shutdown(wait=True)
        self.bar.close()
        if self.stats.skipped and self.budget.exhausted:
            log.warning("%s: %d requests not sent", self.budget.why_skipped(), self.stats.skipped)
        return self.outcomes, self.stats

    def collect(self, futures: dict[Future[Outcome], Job]) -> None:
        """Record outcomes as they come; raise the first worker failure once all are done."""
        failure: BaseException | None = None
        heartbeat = max(1.0, self.cache.claim_ttl / 3)
        next_beat = time.monotonic() + heartbeat
        not_done = set(futures)
        while not_done:
            # A timeout keeps the main thread responsive to Ctrl-C.
            done, not_done = wait(not_done, timeout=0.2, return_when=FIRST_COMPLETED)
            if time.monotonic() >= next_beat:
                self.cache.refresh_claims()  # this run is alive: its claims hold
                next_beat = time.monotonic() + heartbeat
            for fut in done:
                try:
                    out = fut.result()
                except BaseException as err:  # noqa: BLE001
                    self.stop.set()
                    failure = failure or err
                    continue
                self.outcomes[futures[fut].key] = out
                with self.lock:
                    self.stats.tally(out)
                    self.show()
                self.bar.update(1)
        if failure is not None:
            raise failure


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
