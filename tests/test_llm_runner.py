"""The request layer without a network: cache, retries, Retry-After, budget, dedup, stops."""

from __future__ import annotations

import threading
import time

import pytest

from opinbench.llm.cache import ReplyCache, request_key
from opinbench.llm.errors import AuthError, RequestError
from opinbench.llm.runner import Budget, Job, RunOptions, run_jobs

FAST = RunOptions(concurrency=4, max_retries=3, backoff=0.001, max_backoff=0.01, progress=False)


def _run(jobs, cache=None, budget=None, options=FAST, **kw):
    return run_jobs(
        jobs,
        cache=cache or ReplyCache(None),
        provider="p",
        model="m",
        options=options,
        budget=budget or Budget(None),
        **kw,
    )


class Flaky:
    """A request that fails with the given errors first, then answers."""

    def __init__(self, reply, errors=()):
        self.reply = reply
        self.errors = list(errors)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            err = self.errors.pop(0) if self.errors else None
        if err is not None:
            raise err
        return self.reply


def retryable(kind="http 500", after=None):
    return RequestError(kind, kind=kind, retryable=True, retry_after=after)


def test_cache_is_write_through_and_persistent(tmp_path):
    path = tmp_path / "c.sqlite"
    key = request_key({"provider": "p", "model": "m"}, {"prompt": "x"})
    assert key == request_key({"model": "m", "provider": "p"}, {"prompt": "x"})  # order-insensitive
    c = ReplyCache(path)
    c.put(key, provider="p", model="m", request={"prompt": "x"}, reply={"a": [1, "é"]})
    # A second connection sees it before the first is closed: committed at once.
    assert ReplyCache(path).get(key) == {"a": [1, "é"]}
    c.close()
    assert ReplyCache(path).get("nope") is None


def test_retries_then_success_and_counts_add_up(tmp_path):
    calls = [Flaky(f"r{i}", [retryable()] * (i % 3)) for i in range(9)]
    jobs = [Job(f"k{i}", {"i": i}, c) for i, c in enumerate(calls)]
    cache = ReplyCache(tmp_path / "c.sqlite")
    outcomes, stats = _run(jobs, cache)
    assert all(o.status == "sent" for o in outcomes.values())
    assert [outcomes[f"k{i}"].reply for i in range(9)] == [f"r{i}" for i in range(9)]
    assert stats.retried == 9 and stats.requests == 18 == sum(o.attempts for o in outcomes.values())
    assert stats.sent + stats.cached + stats.failed + stats.skipped == stats.unique == 9
    # Second run: everything from the cache, nothing called.
    again = [Job(f"k{i}", {"i": i}, Flaky("other")) for i in range(9)]
    outcomes2, stats2 = _run(again, cache)
    assert stats2.cached == 9 and stats2.requests == 0
    assert outcomes2["k4"].reply == "r4"


def test_gives_up_and_non_retryable(tmp_path):
    forever = Flaky("x", [retryable("timeout")] * 10)
    bad = Flaky("x", [RequestError("400", kind="http 400", retryable=False)])
    outcomes, stats = _run([Job("a", {}, forever), Job("b", {}, bad)])
    assert outcomes["a"].status == "failed" and outcomes["a"].attempts == 4  # 1 + max_retries
    assert outcomes["b"].status == "failed" and outcomes["b"].attempts == 1
    assert stats.failed == 2 and stats.errors == {"timeout": 4, "http 400": 1}


def test_retry_after_is_honoured():
    call = Flaky("ok", [retryable("http 429", after=0.3)])
    t = time.monotonic()
    outcomes, _ = _run([Job("a", {}, call)])
    assert outcomes["a"].reply == "ok" and time.monotonic() - t >= 0.3


def test_budget_skips_the_rest_and_a_rerun_finishes(tmp_path):
    cache = ReplyCache(tmp_path / "c.sqlite")
    jobs = [Job(f"k{i}", {}, Flaky(i)) for i in range(6)]
    outcomes, stats = _run(
        jobs, cache, budget=Budget(4), options=RunOptions(concurrency=1, progress=False)
    )
    assert stats.sent == 4 and stats.skipped == 2 and stats.requests == 4
    assert {o.error_kind for o in outcomes.values() if o.status == "skipped"} == {"budget"}
    outcomes, stats = _run(jobs, cache, budget=Budget(4))
    assert stats.cached == 4 and stats.sent == 2


def test_duplicates_are_sent_once():
    call = Flaky("same")
    outcomes, stats = _run([Job("k", {}, call) for _ in range(5)])
    assert call.calls == 1 and stats.deduplicated == 4 and stats.unique == 1


def test_auth_error_stops_the_run_and_keeps_what_was_paid_for(tmp_path):
    cache = ReplyCache(tmp_path / "c.sqlite")
    jobs = [Job("ok", {}, Flaky("fine"))] + [
        Job(f"k{i}", {}, Flaky("x", [AuthError("401")])) for i in range(20)
    ]
    with pytest.raises(AuthError):
        _run(jobs, cache, options=RunOptions(concurrency=1, progress=False))
    assert cache.get("ok") == "fine"


def test_interrupt_keeps_finished_replies(tmp_path):
    cache = ReplyCache(tmp_path / "c.sqlite")

    def boom():
        raise KeyboardInterrupt

    jobs = [
        Job("a", {}, Flaky(1)),
        Job("b", {}, Flaky(2)),
        Job("c", {}, boom),
        Job("d", {}, Flaky(4)),
    ]
    with pytest.raises(KeyboardInterrupt):
        _run(jobs, cache, options=RunOptions(concurrency=1, progress=False))
    assert cache.get("a") == 1 and cache.get("b") == 2
