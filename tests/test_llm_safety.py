"""No lost, no double-paid, no silently wrong reply: the reply cache and the runner under stress.

Real processes share one cache file, a real Ctrl-C (SIGINT) arrives with requests
in flight, and the real anthropic / openai clients meet empty replies, refusals
and token usage from the local wire-protocol server.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from opinbench.llm.cache import ReplyCache
from opinbench.llm.providers import ChatRequest, ProviderSpec, make_provider
from opinbench.llm.runner import Budget, Job, RunOptions, run_jobs
from opinbench.llm.cache import request_key
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_fixtures import SECRET
from tests.helpers.api_keys import keys  # noqa: F401 - autouse: fake keys, no base-URL override

ROOT = Path(__file__).resolve().parents[1]
FAST = RunOptions(concurrency=2, max_retries=2, backoff=0.001, progress=False)


def _runner(srv, cache, n, concurrency=4):
    """`tests.helpers.llm_run` in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.llm_run", srv.url, str(cache), str(n), str(concurrency)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _prompts(pairs):
    return Counter(body["messages"][0]["content"] for _, body in pairs)


def test_two_processes_over_one_cache_pay_for_each_request_once(tmp_path):
    n = 24
    with FakeAPIServer(SECRET, delay_seconds=0.05) as srv:
        procs = [_runner(srv, tmp_path / "c.sqlite", n) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    stats = [json.loads(out) for out, _ in outs]
    sent = _prompts((p, b) for p, b, _ in srv.requests)
    assert len(sent) == n and set(sent.values()) == {1}, sent  # every key sent exactly once
    assert sum(s["sent"] for s in stats) == n
    assert all(s["sent"] + s["cached"] == n and s["failed"] == s["skipped"] == 0 for s in stats)
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        assert len(cache) == n
        assert cache._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_a_stored_reply_is_never_overwritten(tmp_path):
    with ReplyCache(tmp_path / "c.sqlite") as a, ReplyCache(tmp_path / "c.sqlite") as b:
        assert a.put("k", provider="p", model="m", request={}, reply="first") is True
        assert b.put("k", provider="p", model="m", request={}, reply="second") is False
        assert a.get("k") == b.get("k") == "first"
        # A key one cache object claimed is not free for another, until released.
        assert a.claim("k2").state == "mine" and b.claim("k2").state == "taken"
        a.release("k2")
        assert b.claim("k2").state == "mine"


def test_a_claim_of_a_process_that_is_gone_lapses(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        cache._conn.execute(
            "INSERT INTO claims VALUES ('k', 'x', ?, ?, ?)", (cache.host, dead.pid, time.time() + 600)
        )
        assert cache.claim("k").state == "mine"


def test_opening_waits_while_another_process_holds_the_file(tmp_path):
    # sqlite does not always apply the busy timeout to the switch to WAL: a cache opened
    # while another connection holds the file must wait, not fail with "database is locked".
    path = tmp_path / "c.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    with ReplyCache(path) as cache:
        cache.put("k", provider="p", model="m", request={}, reply="r")
        assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()


def test_database_is_locked_while_switching_to_wal_is_retried(tmp_path, monkeypatch):
    # Two processes starting at once both read the file, then both ask for the exclusive
    # lock the switch to WAL needs: sqlite answers one of them "database is locked" at
    # once, without its busy timeout (waiting could deadlock). That race is too rare to
    # provoke on demand (~1 in 35 starts), so the error is injected where sqlite raises it.
    import opinbench.llm.cache as cache_module

    real_connect = sqlite3.connect
    raised = []

    class Racy:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA journal_mode=WAL") and not raised:
                raised.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    monkeypatch.setattr(cache_module.sqlite3, "connect", lambda *a, **k: Racy(real_connect(*a, **k)))
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", provider="p", model="m", request={}, reply="r")
        assert cache.get("k") == "r"
    assert raised


def _wait_in_flight(srv, proc, n: int, limit: float = 600.0) -> None:
    """Until ``n`` requests reached the server; the child ending first fails at once. The limit
    only bounds a hung run: a child that takes minutes to start on a loaded machine is waited for."""
    deadline = time.monotonic() + limit
    while srv.wait_for_requests(n, timeout=1.0) < n:
        assert proc.poll() is None, f"the child ended before sending {n} requests:\n{proc.communicate()}"
        assert time.monotonic() < deadline, f"{srv.count()} of {n} requests after {limit} s"


def _read_until(stream, needle: str, timeout: float = 600.0) -> str:
    """Lines of ``stream`` up to the first holding ``needle`` (a thread reads: no blocking forever)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if needle in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return "".join(seen)


def test_ctrl_c_stores_every_reply_in_flight(tmp_path):
    # Events, not sleeps: the server holds every reply until the child has said that it
    # is waiting for the four in flight; only then are they answered. A loaded machine
    # cannot reorder that (a 3-second reply delay and a polling loop could).
    with FakeAPIServer(SECRET) as srv:
        srv.hold()
        proc = _runner(srv, tmp_path / "c.sqlite", 12, concurrency=4)
        try:
            _wait_in_flight(srv, proc, 4)
            assert srv.count() == 4  # four in flight, none answered
            proc.send_signal(signal.SIGINT)
            seen = _read_until(proc.stderr, "waiting for 4 request(s) in flight")
            assert "waiting for 4 request(s) in flight" in seen, seen
            assert srv.count() == 4  # no new request after Ctrl-C
            srv.release()
            out, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130 and "interrupted" in out, seen + err
    assert srv.count() == 4  # none after the replies either
    replied = _prompts(srv.replied)
    assert len(replied) == 4
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        stored = {
            json.loads(r)["messages"][0][1]
            for (r,) in cache._conn.execute("SELECT request FROM replies")
        }
    assert stored == set(replied)  # every reply the server sent is in the cache


def _providers(srv):
    return {
        "anthropic": make_provider(
            ProviderSpec.parse("anthropic:claude-sonnet-4-6", base_url=srv.url, timeout=5)
        ),
        "openai": make_provider(
            ProviderSpec.parse("openai:gpt-4o-mini", base_url=srv.openai_url, timeout=5)
        ),
    }


def _jobs(provider, prompts):
    out = []
    for text in prompts:
        req = ChatRequest(messages=(("user", text),), max_tokens=8)
        key = request_key(provider.spec.identity(), req.to_json())
        out.append(Job(key, req.to_json(), lambda r=req: provider.complete(r)))
    return out


def _run(provider, jobs, cache, budget=None, options=FAST):
    return run_jobs(
        jobs,
        cache=cache,
        provider=provider.spec.provider,
        model=provider.spec.model,
        options=options,
        budget=budget or Budget(),
    )


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_empty_replies_are_retried_then_failed_never_cached(which):
    with FakeAPIServer(SECRET) as srv:
        p = _providers(srv)[which]
        cache = ReplyCache(None)
        srv.faults.extend(["empty", "empty"])  # twice empty, then an answer
        outcomes, stats = _run(p, _jobs(p, ["one"]), cache, options=RunOptions(concurrency=1, progress=False))
        (out,) = outcomes.values()
        assert out.status == "sent" and out.reply == "Answer: A" and out.attempts == 3
        assert stats.empty == 2 and stats.retried == 2
        srv.faults.extend(["empty"] * 3)  # empty every time: failed with its reason
        outcomes, stats = _run(p, _jobs(p, ["two"]), cache, options=RunOptions(concurrency=1, progress=False))
        (out,) = outcomes.values()
        assert out.status == "failed" and out.error_kind == "empty" and out.attempts == 3
        assert "empty reply" in out.error and stats.failed == 1 and stats.empty == 3
        assert len(cache) == 1  # only the real answer is stored


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_refusals_are_told_apart_counted_and_stay_refusals_from_the_cache(which):
    with FakeAPIServer(SECRET) as srv:
        p = _providers(srv)[which]
        cache = ReplyCache(None)
        srv.faults.append("refusal")
        jobs = _jobs(p, ["declined", "fine"])
        outcomes, stats = _run(p, jobs, cache, options=RunOptions(concurrency=1, progress=False))
        refused, fine = outcomes[jobs[0].key], outcomes[jobs[1].key]
        assert refused.status == "sent" and refused.refused and refused.attempts == 1
        assert refused.stop_reason == {"anthropic": "refusal", "openai": "content_filter"}[which]
        assert not fine.refused and stats.refused == 1 and stats.empty == 0
        outcomes, stats = _run(p, jobs, cache)
        assert stats.cached == 2 and stats.refused == 1 and outcomes[jobs[0].key].refused
        assert srv.count() == 2


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_token_budget_stops_sending_and_says_what_was_spent(which):
    # Each request: 4 words in ("a b c N"), 2 out ("Answer: A"): 6 tokens.
    with FakeAPIServer(SECRET) as srv:
        p = _providers(srv)[which]
        budget = Budget(max_tokens=20)
        jobs = _jobs(p, [f"a b c {i}" for i in range(10)])
        outcomes, stats = _run(p, jobs, ReplyCache(None), budget, RunOptions(concurrency=1, progress=False))
    assert srv.count() == 4 and stats.sent == 4 and stats.skipped == 6  # 18 < 20, then 24
    assert {o.error for o in outcomes.values() if o.status == "skipped"} == {
        "token budget exhausted (--max-tokens-budget 20)"
    }
    spent = budget.spent()
    assert (spent["input_tokens"], spent["output_tokens"], spent["requests"]) == (16, 8, 4)
    assert spent["exhausted_by"] == "tokens" and spent["replies_without_usage"] == 0
    assert (stats.input_tokens, stats.output_tokens) == (16, 8)
