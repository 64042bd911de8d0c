"""Answer jobs through a provider's batch API, with the live runner's cache, claims and budget.

`run_batch_jobs` is what `opinbench.llm.runner.run_jobs` does when
``RunOptions.batch`` holds a `opinbench.llm.batches.BatchAPI` (``--mode batch``):
the same `Job`s in, the same ``{key: Outcome}`` and `RunStats` out, so judges do
not know which mode ran. What stays the same, and what differs:

* **Cache first, write-through.** Keys already answered cost nothing; each result
  is stored the moment its batch is read, before the batch is marked collected.
* **Claims.** A key is claimed (`ReplyCache.claim`) before it is submitted and held,
  refreshed, until its result is stored; a key another live run holds is left to it
  and looked at again at the next poll.
* **Resume.** Every batch is recorded in the cache file (`ReplyCache.add_batch`) right
  after the provider accepted it. A run that finds batches of the same endpoint not
  yet collected (a killed run's, or one stopped by Ctrl-C) polls and reads those
  instead of submitting their requests again: nothing is sent twice. (A crash in the
  instant between the provider's acceptance and the record cannot be covered: the
  APIs take no idempotency key.)
* **Partial failures.** Items that errored with a retryable error (overloaded, 5xx,
  rate limit), or that were ``canceled``/``expired`` (the 24 h window ran out), and
  empty replies are submitted again in the next batch, up to ``max_retries`` (empty:
  ``max_empty_retries``) times; an invalid request fails at once. Refusals are
  answers, stored and counted, as in live mode.
* **Budget.** ``--max-requests`` counts batch items, charged once, when submitted,
  by the run that submits them (a resumed batch is not charged again); tokens are
  charged when results are read, by the run that reads them. Tokens are only known
  once a batch ends, so under a token cap batches go one at a time and the cap may be
  overshot by at most one batch (``batch_size`` items).
* **Ctrl-C** stops waiting; batches already submitted keep running at the provider
  (they are paid for) and are collected by the next run.

``requests`` in the stats is batch items submitted by this run (retries included).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

from opinbench.llm.batches import BatchAPI, ItemResult
from opinbench.llm.cache import ReplyCache
from opinbench.llm.errors import RequestError
from opinbench.llm.jobs import (Budget, Job, Outcome, RunOptions, RunStats, from_cache, retry_delay,
                                 stored_outcome)
from opinbench.llm.replies import Reply

log = logging.getLogger(__name__)
T = TypeVar("T")


def _retrying(step: Callable[[], T], options: RunOptions, what: str) -> T:
    """One control call (submit, poll, read) with the live runner's backoff on retryable errors."""
    n = 0
    while True:
        try:
            return step()
        except RequestError as err:
            n += 1
            if not err.retryable or n > options.max_retries:
                raise
            delay = retry_delay(err, n, options)
            log.warning("%s: %s; retry %d in %.1f s", what, err, n, delay)
            time.sleep(delay)


def run_batch_jobs(
    jobs: Sequence[Job],
    *,
    cache: ReplyCache,
    api: BatchAPI,
    provider: str,
    model: str,
    options: RunOptions,
    budget: Budget,
    desc: str = "batch requests",
) -> tuple[dict[str, Outcome], RunStats]:
    """Answer every job from the cache or through batches; see the module docstring.

    Raises:
        AuthError, LLMError: as a live run (what is stored stays stored).
        KeyboardInterrupt: passed on; open batches stay recorded for the next run.
    """
    run = _BatchRun(jobs, cache, api, provider, model, options, budget, desc)
    try:
        run.resume()
        run.loop()
    except KeyboardInterrupt:
        if run.inflight:
            log.warning("stopping: %d batch(es) keep running at the provider (paid for); "
                        "rerun the same command to collect them, nothing is sent twice",
                        len(run.inflight))
        raise
    finally:
        run.bar.close()
    return run.outcomes, run.stats


class _BatchRun:
    """One `run_batch_jobs` call: what is still wanted (``todo``), the batches at the provider
    (``inflight``: batch id -> keys), attempts per key, and the steps: `resume` a killed run's
    batches, `submit` fresh ones, `poll` and `collect` them, `take` each item's result and
    `finish` a key."""

    def __init__(self, jobs: Sequence[Job], cache: ReplyCache, api: BatchAPI, provider: str,
                 model: str, options: RunOptions, budget: Budget, desc: str) -> None:
        self.cache, self.api, self.provider, self.model = cache, api, provider, model
        self.options, self.budget = options, budget
        self.unique, self.stats, self.outcomes, pending = from_cache(jobs, cache)
        self.todo: dict[str, Job] = {job.key: job for job in pending}
        self.bar = tqdm(total=len(self.unique), initial=self.stats.cached, desc=desc, unit="req",
                        disable=not options.progress, dynamic_ncols=True)
        self.attempts: Counter[str] = Counter()
        self.empties: Counter[str] = Counter()
        # Batches at the provider whose results are not read yet: this run's, and a killed run's.
        self.inflight: dict[str, list[str]] = cache.open_batches(api.endpoint)

    def resume(self) -> None:
        for batch_id, keys in self.inflight.items():
            log.info("resuming batch %s: %d requests submitted earlier, %d still wanted",
                     batch_id, len(keys), sum(k in self.todo for k in keys))
            for key in keys:
                # Ours now (the submitting run is gone): a live run must not send them meanwhile.
                if key in self.todo and (c := self.cache.claim(key)).state == "stored":
                    early = stored_outcome(c.entry)
                    self.outcomes[key] = early
                    self.todo.pop(key)
                    self.stats.tally(early)

    def loop(self) -> None:
        while True:
            if not self.budget.exhausted or not self.inflight:
                self.submit_fresh()
            if not self.inflight:
                if not self.todo:
                    return
                # Only keys another live run holds are left: wait for their replies.
                time.sleep(self.options.claim_poll)
                continue
            time.sleep(self.options.poll_interval)
            self.cache.refresh_claims()
            self.poll()
            if self.budget.exhausted and not self.inflight:
                for key in list(self.todo):
                    self.skip(key)

    def poll(self) -> None:
        for batch_id in list(self.inflight):
            st = _retrying(lambda b=batch_id: self.api.status(b), self.options,
                           f"polling batch {batch_id}")
            if st.ended:
                log.info("batch %s ended (%s)", batch_id, st.status)
                self.collect(batch_id)

    def finish(self, key: str, out: Outcome) -> None:
        self.outcomes[key] = out
        self.todo.pop(key, None)
        if out.status != "sent":
            self.cache.release(key)
        self.stats.tally(out)
        self.bar.update(1)

    def skip(self, key: str) -> None:
        self.finish(key, Outcome(None, "skipped", self.attempts[key], self.budget.why_skipped(),
                                 "budget"))

    def give_up_or_retry(self, key: str, err: RequestError) -> None:
        self.stats.errors[err.kind] += 1
        if key not in self.todo:
            return
        n = self.attempts[key]
        if not err.retryable or n > self.options.max_retries:
            why = "not retryable" if not err.retryable else f"gave up after {n} submissions"
            log.warning("%s (%s)", err, why)
            self.finish(key, Outcome(None, "failed", n, str(err), err.kind))
        else:
            self.stats.retried += 1  # left in todo: the next batch sends it again

    def take(self, r: ItemResult) -> None:
        """One item's result: a reply stored, an empty reply retried, an error retried or failed."""
        if r.kind == "succeeded" and r.reply is not None:
            self.take_reply(r.custom_id, r.reply)
        elif r.kind == "errored" and r.error is not None:
            self.give_up_or_retry(r.custom_id, r.error)
        else:
            self.give_up_or_retry(r.custom_id, RequestError(
                f"{self.provider}:{self.model}: batch item {r.kind}", kind=f"batch {r.kind}",
                retryable=True))

    def take_reply(self, key: str, reply: Reply) -> None:
        self.budget.spend(reply)
        self.stats.count_reply(reply)
        if reply.empty:
            self.stats.empty += 1
            self.empties[key] += 1
            if key in self.todo and self.empties[key] > self.options.max_empty_retries:
                why = f"empty reply ({self.empties[key]} times, stop reason {reply.stop_reason})"
                self.finish(key, Outcome(None, "failed", self.attempts[key], why, "empty",
                                         stop_reason=reply.stop_reason))
            elif key in self.todo:
                self.stats.retried += 1
            return
        job = self.todo.get(key) or self.unique.get(key)
        stored = self.cache.put(key, provider=self.provider, model=self.model,
                                request=job.request if job else {}, reply=reply.value,
                                meta=reply.meta())
        if key not in self.todo:
            return  # a resumed batch's answer to a key no longer wanted: kept, paid for
        if not stored and (entry := self.cache.entry(key)) is not None:
            self.finish(key, stored_outcome(entry))
            return
        self.finish(key, Outcome(reply.value, "sent", self.attempts[key], refused=reply.refused,
                                 stop_reason=reply.stop_reason))

    def claimed_by_kind(self) -> dict[str, list[str]]:
        """The wanted keys in no batch yet that this run now holds, by request kind."""
        in_batch = {k for keys in self.inflight.values() for k in keys}
        by_kind: dict[str, list[str]] = defaultdict(list)
        for key in [k for k in self.todo if k not in in_batch]:
            c = self.cache.claim(key)
            if c.state == "stored":
                self.finish(key, stored_outcome(c.entry))
            elif c.state == "mine":
                by_kind[str(self.todo[key].request.get("kind"))].append(key)
            # "taken": another live run is sending it; looked at again at the next poll
        return by_kind

    def submit_fresh(self) -> None:
        size = max(1, self.options.batch_size)
        for keys in self.claimed_by_kind().values():
            for i in range(0, len(keys), size):
                if self.budget.max_tokens is not None and self.inflight:
                    # Under a token cap one batch at a time: its tokens are known only once
                    # it ends, and the cap may be overshot by one batch, not by all of them.
                    for key in keys[i:]:
                        self.cache.release(key)
                    return
                self.submit(keys[i : i + size])

    def submit(self, keys: list[str]) -> None:
        """One batch of the keys the budget allows (the others skipped)."""
        allowed = []
        for key in keys:
            if self.budget.take():
                allowed.append(key)
            else:
                self.skip(key)
        if not allowed:
            return
        items = [(k, self.todo[k].request) for k in allowed]
        try:
            batch_id = _retrying(lambda: self.api.submit(items), self.options, "submitting a batch")
        except RequestError as err:
            self.stats.errors[err.kind] += 1
            for k in allowed:
                self.finish(k, Outcome(None, "failed", self.attempts[k], str(err), err.kind))
            return
        self.cache.add_batch(batch_id, self.api.endpoint, allowed)
        self.inflight[batch_id] = allowed
        for k in allowed:
            self.attempts[k] += 1
        self.stats.requests += len(allowed)
        log.info("submitted batch %s (%d requests)", batch_id, len(allowed))

    def collect(self, batch_id: str) -> None:
        keys = self.inflight[batch_id]
        seen: set[str] = set()
        try:
            results = _retrying(lambda: list(self.api.results(batch_id)), self.options,
                                f"reading batch {batch_id}")
        except RequestError as err:
            # The whole batch failed (the provider refused its file...): its items failed
            # with that error, and the batch is closed, not resumed forever.
            for key in keys:
                self.give_up_or_retry(key, err)
            results = []
            seen.update(keys)
        for r in results:
            seen.add(r.custom_id)
            self.take(r)
        for key in keys:
            if key not in seen:  # no line for it: never processed
                self.take(ItemResult(key, "missing"))
        self.cache.batch_collected(batch_id)
        del self.inflight[batch_id]
