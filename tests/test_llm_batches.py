"""Batch mode: the real anthropic / openai SDKs against the fake batch endpoints.

Covers the wire protocols (Message Batches; Files + Batch), partial failures
(errored items retried, invalid ones failed, empty replies asked again, refusals
kept), expired batches, the budget, and a crash: a process killed while its batch is
processed, resumed by the next run from the batch recorded in the cache file, with
nothing sent twice and every item charged once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opinbench.errors import ConfigError
from opinbench.llm.batches import batch_api
from opinbench.llm.cache import ReplyCache, request_key
from opinbench.llm.providers import ChatRequest, ProviderSpec, make_provider, moderation_request_json
from opinbench.llm.runner import Budget, Job, RunOptions, run_jobs
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_fixtures import SECRET
from tests.helpers.api_keys import keys  # noqa: F401 - autouse: fake keys, no base-URL override

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def server():
    with FakeAPIServer(SECRET) as srv:
        yield srv


def _provider(srv, which):
    if which == "anthropic":
        return make_provider(ProviderSpec.parse("anthropic:claude-haiku-4-5", base_url=srv.url))
    return make_provider(ProviderSpec.parse("openai:gpt-4o-mini", base_url=srv.openai_url))


def _jobs(provider, n, *, dup=0):
    jobs = []
    for i in list(range(n)) + list(range(dup)):
        req = ChatRequest((("user", f"Question {i}: A or B?"),), system="Judge.", max_tokens=8)
        rj = req.to_json()
        jobs.append(Job(request_key(provider.spec.identity(), rj), rj, lambda: None))
    return jobs


def _run(provider, jobs, cache, *, budget=None, **opts):
    options = RunOptions(progress=False, backoff=0.01, max_retries=2, poll_interval=0.01,
                         claim_poll=0.01, batch=batch_api(provider), **opts)
    budget = budget or Budget()
    outcomes, stats = run_jobs(jobs, cache=cache, provider=provider.spec.provider,
                               model=provider.spec.model, options=options, budget=budget)
    return outcomes, stats, budget


def _counts_add_up(stats):
    assert stats.sent + stats.cached + stats.failed + stats.skipped == stats.unique
    assert stats.unique + stats.deduplicated == stats.items


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_batch_answers_are_cached_and_a_rerun_sends_nothing(server, which):
    p = _provider(server, which)
    jobs = _jobs(p, 5, dup=2)
    with ReplyCache(None) as cache:
        outcomes, stats, budget = _run(p, jobs, cache)
        assert {o.reply for o in outcomes.values()} == {"Answer: A"}
        assert stats.sent == 5 and stats.deduplicated == 2 and stats.requests == 5
        assert len(server.batch_items) == 5  # one batch, each distinct request once
        assert budget.spent()["requests"] == 5 and budget.spent()["input_tokens"] > 0
        _counts_add_up(stats)
        _, again, _ = _run(p, jobs, cache)
        assert again.cached == 5 and again.requests == 0 and len(server.batch_items) == 5
    paths = {path for path, _, _ in server.requests}
    if which == "anthropic":
        assert "/v1/messages/batches" in paths and "/v1/messages" not in paths
        cid, params = server.batch_items[0]
        assert len(cid) == 64 and params["model"] == "claude-haiku-4-5"
        # The fixed instructions are marked for the prompt cache, as in live calls.
        assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    else:
        assert {"/v1/files", "/v1/batches"} <= paths and "/v1/chat/completions" not in paths
        assert server.batch_items[0][1]["max_completion_tokens"] == 8


def test_batch_and_live_share_the_cache(server):
    """A batch answer is what a live call would have stored under the same key."""
    p = _provider(server, "anthropic")
    jobs = _jobs(p, 3)
    with ReplyCache(None) as cache:
        _run(p, jobs, cache)
        live = RunOptions(progress=False)
        _, stats = run_jobs(jobs, cache=cache, provider="anthropic", model="m", options=live,
                            budget=Budget())
        assert stats.cached == 3 and stats.requests == 0


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_partial_failures_retried_invalid_failed_refusal_kept(server, which):
    p = _provider(server, which)
    jobs = _jobs(p, 6)
    # Item by item in submission order: retryable error, invalid request, empty, refusal.
    server.batch_faults.extend(["error", "invalid", "empty", "refusal"])
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)
        _counts_add_up(stats)
        by_key = [outcomes[j.key] for j in jobs]
        assert by_key[0].ok and by_key[0].attempts == 2  # errored once, answered in batch 2
        assert by_key[1].status == "failed" and by_key[1].attempts == 1
        assert "invalid" in (by_key[1].error_kind or "")
        assert by_key[2].ok and by_key[2].reply == "Answer: A" and stats.empty == 1
        assert by_key[3].refused and by_key[3].ok
        assert all(o.ok for o in by_key[4:])
        assert stats.failed == 1 and stats.sent == 5 and stats.refused == 1
        assert stats.requests == 6 + 2 == len(server.batch_items)  # two resubmitted items
        assert cache.get(jobs[1].key) is None  # a failure is never cached


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_expired_items_are_resubmitted(server, which):
    p = _provider(server, which)
    jobs = _jobs(p, 5)
    server.batch_expire.extend([2])  # the first batch processes two items, then expires
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)
    assert all(o.ok for o in outcomes.values())
    assert stats.requests == 5 + 3 and stats.errors["batch expired"] == 3
    assert len(server.batch_items) == 8


@pytest.mark.parametrize("which", ["anthropic", "openai"])
def test_canceled_items_are_resubmitted_and_cancel_reaches_the_api(server, which):
    p = _provider(server, which)
    jobs = _jobs(p, 3)
    server.batch_faults.extend(["canceled", None, "canceled"])
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)
    assert all(o.ok for o in outcomes.values()) and stats.errors["batch canceled"] == 2
    assert len(server.batch_items) == 5
    api = batch_api(p)
    server.batch_polls = 10**9
    bid = api.submit([(jobs[0].key, jobs[0].request)])
    api.cancel(bid)
    assert api.status(bid).status in ("canceling", "cancelling") and not api.status(bid).ended


def test_a_failed_batch_fails_its_items_once_and_is_closed(server):
    p = _provider(server, "openai")
    jobs = _jobs(p, 2)
    server.batch_fail_next = True
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)
        assert stats.failed == 2 and "injected failure" in outcomes[jobs[0].key].error
        assert cache.open_batches(batch_api(p).endpoint) == {}  # not resumed forever
        again, more, _ = _run(p, jobs, cache)  # a rerun sends them anew
        assert more.sent == 2


def test_items_still_expiring_after_the_retries_fail(server):
    p = _provider(server, "openai")
    jobs = _jobs(p, 2)
    server.batch_expire.extend([0, 0, 0])
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)  # max_retries=2: three submissions
    assert stats.failed == 2 and all(o.attempts == 3 for o in outcomes.values())


def test_request_budget_counts_items_and_skips_the_rest(server):
    p = _provider(server, "anthropic")
    jobs = _jobs(p, 5)
    with ReplyCache(None) as cache:
        outcomes, stats, budget = _run(p, jobs, cache, budget=Budget(max_requests=3))
    assert stats.sent == 3 and stats.skipped == 2 and len(server.batch_items) == 3
    assert budget.exhausted_by == "requests"
    assert {o.error_kind for o in outcomes.values() if o.status == "skipped"} == {"budget"}


def test_token_budget_stops_further_batches(server):
    p = _provider(server, "anthropic")
    jobs = _jobs(p, 6)
    with ReplyCache(None) as cache:
        _, stats, budget = _run(p, jobs, cache, budget=Budget(max_tokens=1), batch_size=2)
    # The first batch's replies spend the budget: the other two batches are never sent.
    assert stats.sent == 2 and stats.skipped == 4 and len(server.batch_items) == 2
    assert budget.exhausted_by == "tokens"


def test_openai_moderation_batch(server):
    p = _provider(server, "openai")
    p = make_provider(ProviderSpec.parse("openai:omni-moderation-latest", base_url=server.openai_url))
    texts = ["I will kill it", "a calm walk"]
    jobs = []
    for t in texts:
        rj = moderation_request_json(t)
        jobs.append(Job(request_key(p.spec.identity(), rj), rj, lambda: None))
    with ReplyCache(None) as cache:
        outcomes, stats, _ = _run(p, jobs, cache)
    first, second = (outcomes[j.key].reply for j in jobs)
    assert first["flagged"] and first["categories"]["violence"] and not second["flagged"]
    assert any(path == "/v1/batches" for path, _, _ in server.requests)


def test_batch_mode_needs_a_batch_api():
    with pytest.raises(ConfigError, match="batch mode"):
        batch_api(make_provider(ProviderSpec.parse("local:smollm2")))
    compat = ProviderSpec.parse("vllm:m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="batch mode"):
        batch_api(make_provider(compat))


CHILD = textwrap.dedent(
    """
    import sys
    from opinbench.llm.batches import batch_api
    from opinbench.llm.cache import ReplyCache
    from opinbench.llm.providers import ProviderSpec, make_provider
    from opinbench.llm.runner import Budget, RunOptions, run_jobs
    from tests.test_llm_batches import _jobs
    url, cache_path = sys.argv[1], sys.argv[2]
    p = make_provider(ProviderSpec.parse("anthropic:claude-haiku-4-5", base_url=url))
    opts = RunOptions(progress=False, poll_interval=0.05, batch=batch_api(p))
    with ReplyCache(cache_path) as cache:
        run_jobs(_jobs(p, 4), cache=cache, provider="anthropic", model="m", options=opts,
                 budget=Budget())
    """
)


def test_killed_run_is_resumed_from_the_recorded_batch(server, tmp_path):
    """Submit, kill -9 while the batch is processed, rerun: the batch is collected, not resent."""
    server.batch_polls = 10**9  # the child's batch never ends while it lives
    cache_path = tmp_path / "cache.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, server.url, str(cache_path)], env=env,
                             cwd=ROOT)
    try:
        # The recorded batch is the event; the deadline only bounds a hung child (a child took
        # over a minute to start on a machine at load 19: a 60 s one would fail there).
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not _recorded_batches(cache_path):
            assert child.poll() is None, "the child ended before submitting"
            time.sleep(0.05)
        assert _recorded_batches(cache_path), "no batch recorded"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert len(server.batch_items) == 4
    server.batch_polls = 0  # the provider finishes the batch meanwhile
    p = _provider(server, "anthropic")
    jobs = _jobs(p, 4)
    with ReplyCache(cache_path) as cache:
        outcomes, stats, budget = _run(p, jobs, cache)
        assert all(o.ok and o.reply == "Answer: A" for o in outcomes.values())
        assert stats.sent == 4 and stats.requests == 0  # collected, not sent again
        assert len(server.batch_items) == 4
        # Charged once: the killed run paid the items, this one only reads their tokens.
        assert budget.spent()["requests"] == 0 and budget.spent()["input_tokens"] > 0
        assert cache.open_batches(_batch_endpoint(p)) == {}
        _, again, _ = _run(p, jobs, cache)
        assert again.cached == 4 and len(server.batch_items) == 4


def _batch_endpoint(p):
    return batch_api(p).endpoint


def _recorded_batches(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as c:
            return int(c.execute("SELECT COUNT(*) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_judge_cli_batch_mode(server, tmp_path, shared_data):
    from opinbench.cli import main
    from tests.test_judging_fixtures import make_vk_run

    out = make_vk_run(tmp_path, shared_data, n_docs=4)
    argv = ["judge", "faithfulness", "--samples", str(out), "--judge",
            "anthropic:claude-haiku-4-5", "--base-url", server.url, "--cache",
            str(tmp_path / "c.sqlite"), "--no-control", "--no-progress", "--mode", "batch",
            "--poll-interval", "0.01"]
    assert main(argv) == 0
    results = json.loads(sorted(out.rglob("results_judge-faithfulness_*.json"))[-1].read_text())
    judge = results["config"]["judge"]
    assert judge["mode"] == "batch" and judge["complete"]
    assert judge["stats"]["sent"] == len(server.batch_items) > 0
    assert not any(path == "/v1/messages" for path, _, _ in server.requests)
