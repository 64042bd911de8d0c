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
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

from opinbench.llm.batches import BatchAPI, ItemResult
from opinbench.llm.cache import ReplyCache
from opinbench.llm.errors import RequestError
from opinbench.llm.runner import Budget, Job, Outcome, RunOptions, RunStats, _stored, from_cache

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
            delay = (
                min(err.retry_after, options.max_retry_after)
                if err.retry_after is not None
                else min(options.max_backoff, options.backoff * 2 ** (n - 1)) * random.uniform(0.5, 1)
            )
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
    unique, stats, outcomes, pending = from_cache(jobs, cache)
    todo: dict[str, Job] = {job.key: job for job in pending}
    bar = tqdm(total=len(unique), initial=stats.cached, desc=desc, unit="req",
               disable=not options.progress, dynamic_ncols=True)
    attempts: Counter[str] = Counter()
    empties: Counter[str] = Counter()
    # Batches at the provider whose results are not read yet: this run's, and a killed run's.
    inflight: dict[str, list[str]] = cache.open_batches(api.endpoint)
    for batch_id, keys in inflight.items():
        log.info("resuming batch %s: %d requests submitted earlier, %d still wanted",
                 batch_id, len(keys), sum(k in todo for k in keys))
        for key in keys:
            # Ours now (the submitting run is gone): a live run must not send them meanwhile.
            if key in todo and (c := cache.claim(key)).state == "stored":
                finish_early = _stored(c.entry)
                outcomes[key] = finish_early
                todo.pop(key)
                stats.cached += 1
                stats.refused += finish_early.refused

    def finish(key: str, out: Outcome) -> None:
        outcomes[key] = out
        todo.pop(key, None)
        if out.status != "sent":
            cache.release(key)
        setattr(stats, out.status, getattr(stats, out.status) + 1)
        stats.refused += out.refused
        bar.update(1)

    def give_up_or_retry(key: str, err: RequestError) -> None:
        stats.errors[err.kind] += 1
        if key not in todo:
            return
        if not err.retryable or attempts[key] > options.max_retries:
            why = "not retryable" if not err.retryable else f"gave up after {attempts[key]} submissions"
            log.warning("%s (%s)", err, why)
            finish(key, Outcome(None, "failed", attempts[key], str(err), err.kind))
        else:
            stats.retried += 1  # left in todo: the next batch sends it again

    def take(r: ItemResult) -> None:
        key = r.custom_id
        if r.kind == "succeeded" and r.reply is not None:
            reply = r.reply
            budget.spend(reply)
            stats.input_tokens += reply.input_tokens or 0
            stats.output_tokens += reply.output_tokens or 0
            stats.unmetered += not reply.metered
            if reply.empty:
                stats.empty += 1
                empties[key] += 1
                if key in todo and empties[key] > options.max_empty_retries:
                    why = f"empty reply ({empties[key]} times, stop reason {reply.stop_reason})"
                    finish(key, Outcome(None, "failed", attempts[key], why, "empty",
                                        stop_reason=reply.stop_reason))
                elif key in todo:
                    stats.retried += 1
                return
            job = todo.get(key) or unique.get(key)
            stored = cache.put(key, provider=provider, model=model,
                               request=job.request if job else {}, reply=reply.value, meta=reply.meta())
            if key not in todo:
                return  # a resumed batch's answer to a key no longer wanted: kept, paid for
            if not stored and (entry := cache.entry(key)) is not None:
                finish(key, _stored(entry))
                return
            finish(key, Outcome(reply.value, "sent", attempts[key], refused=reply.refused,
                                stop_reason=reply.stop_reason))
        elif r.kind == "errored" and r.error is not None:
            give_up_or_retry(key, r.error)
        else:
            give_up_or_retry(key, RequestError(
                f"{provider}:{model}: batch item {r.kind}", kind=f"batch {r.kind}", retryable=True))

    def submit_fresh() -> None:
        in_batch = {k for keys in inflight.values() for k in keys}
        by_kind: dict[str, list[str]] = defaultdict(list)
        for key in [k for k in todo if k not in in_batch]:
            c = cache.claim(key)
            if c.state == "stored":
                finish(key, _stored(c.entry))
            elif c.state == "mine":
                by_kind[str(todo[key].request.get("kind"))].append(key)
            # "taken": another live run is sending it; looked at again at the next poll
        for keys in by_kind.values():
            for i in range(0, len(keys), max(1, options.batch_size)):
                if budget.max_tokens is not None and inflight:
                    # Under a token cap one batch at a time: its tokens are known only once
                    # it ends, and the cap may be overshot by one batch, not by all of them.
                    for key in keys[i:]:
                        cache.release(key)
                    return
                allowed = []
                for key in keys[i : i + options.batch_size]:
                    if budget.take():
                        allowed.append(key)
                    else:
                        finish(key, Outcome(None, "skipped", attempts[key], budget.why_skipped(), "budget"))
                if not allowed:
                    continue
                items = [(k, todo[k].request) for k in allowed]
                try:
                    batch_id = _retrying(lambda: api.submit(items), options, "submitting a batch")
                except RequestError as err:
                    stats.errors[err.kind] += 1
                    for k in allowed:
                        finish(k, Outcome(None, "failed", attempts[k], str(err), err.kind))
                    continue
                cache.add_batch(batch_id, api.endpoint, allowed)
                inflight[batch_id] = allowed
                for k in allowed:
                    attempts[k] += 1
                stats.requests += len(allowed)
                log.info("submitted batch %s (%d requests)", batch_id, len(allowed))

    def collect(batch_id: str) -> None:
        keys = inflight[batch_id]
        seen: set[str] = set()
        try:
            results = _retrying(lambda: list(api.results(batch_id)), options,
                                f"reading batch {batch_id}")
        except RequestError as err:
            # The whole batch failed (the provider refused its file...): its items failed
            # with that error, and the batch is closed, not resumed forever.
            for key in keys:
                give_up_or_retry(key, err)
            results = []
            seen.update(keys)
        for r in results:
            seen.add(r.custom_id)
            take(r)
        for key in keys:
            if key not in seen:  # no line for it: never processed
                take(ItemResult(key, "missing"))
        cache.batch_collected(batch_id)
        del inflight[batch_id]

    try:
        while True:
            if not budget.exhausted or not inflight:
                submit_fresh()
            if not inflight:
                if not todo:
                    break
                # Only keys another live run holds are left: wait for their replies.
                time.sleep(options.claim_poll)
                continue
            time.sleep(options.poll_interval)
            cache.refresh_claims()
            for batch_id in list(inflight):
                st = _retrying(lambda b=batch_id: api.status(b), options, f"polling batch {batch_id}")
                if st.ended:
                    log.info("batch %s ended (%s)", batch_id, st.status)
                    collect(batch_id)
            if budget.exhausted and not inflight:
                for key in list(todo):
                    finish(key, Outcome(None, "skipped", attempts[key], budget.why_skipped(), "budget"))
    except KeyboardInterrupt:
        if inflight:
            log.warning("stopping: %d batch(es) keep running at the provider (paid for); "
                        "rerun the same command to collect them, nothing is sent twice",
                        len(inflight))
        raise
    finally:
        bar.close()
    return outcomes, stats
