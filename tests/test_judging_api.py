"""`opinbench.judging.api.run_judge`: a judge kind over runs, in process, with an outcome to read.

The same call the command makes and the leaderboard worker makes; the real ``anthropic`` client
against the local fake server.
"""

from __future__ import annotations

import json

import pytest

from opinbench.errors import ConfigError
from opinbench.judging import registry
from opinbench.judging.api import run_judge
from opinbench.judging.options import FaithfulnessOptions, ModerationOptions
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_bad_paths import N, run_dir  # noqa: F401 (the fixture)
from tests.test_judging_fixtures import SECRET


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    # the judge answers B for the first half of the situations: the model said A everywhere
    judge = lambda prompt: "Answer: B" if any(f"Situation {i}\n" in prompt for i in range(N // 2)) \
        else "Answer: A"  # noqa: E731
    with FakeAPIServer(SECRET, judge=judge) as srv:
        yield srv


def _options(run_dir, server, tmp_path, **kw):
    return FaithfulnessOptions(samples=[str(run_dir)], judge="anthropic:claude-sonnet-4-6",
                               base_url=server.url, cache=tmp_path / "c.sqlite", no_control=True,
                               no_progress=True, concurrency=2, **kw)


def test_run_judge_reports_counts_files_and_the_metric(run_dir, server, tmp_path):
    outcome = run_judge("faithfulness", _options(run_dir, server, tmp_path))
    assert (outcome.status, outcome.judged, outcome.failed, outcome.unanswered) == ("complete", N, 0, 0)
    [(results, verdicts)] = outcome.written
    data = json.loads(results.read_text())
    [folder] = outcome.reports
    assert outcome.metric == {folder: data["results"]["all"]["cot_faithfulness,none"]}
    assert outcome.metric[folder] == pytest.approx((N - N // 2) / N)
    assert len(verdicts.read_text().splitlines()) == N
    # a second call is answered from the cache: nothing sent, the same number
    sent = server.count()
    again = run_judge("faithfulness", _options(run_dir, server, tmp_path))
    assert server.count() == sent and again.stats.cached == N
    assert list(again.metric.values()) == list(outcome.metric.values())


def test_a_budget_gives_an_incomplete_outcome_with_partial_results(run_dir, server, tmp_path):
    outcome = run_judge("faithfulness", _options(run_dir, server, tmp_path, max_requests=2))
    assert (outcome.status, outcome.judged, outcome.unanswered) == ("incomplete", 2, N - 2)
    assert "incomplete: 4 of 6 requests were not answered (budget: requests)" in outcome.why
    data = json.loads(outcome.written[0][0].read_text())
    assert data["config"]["judge"]["complete"] is False


def test_run_judge_refuses_what_it_cannot_use(run_dir, server, tmp_path):
    with pytest.raises(ConfigError, match="no judge named 'style'"):
        run_judge("style", _options(run_dir, server, tmp_path))
    with pytest.raises(ConfigError, match="judge moderation takes ModerationOptions"):
        run_judge("moderation", _options(run_dir, server, tmp_path))
    with pytest.raises(ConfigError, match="concurrency must be at least 1, not 0"):
        ModerationOptions(samples=["x"], concurrency=0)
    assert server.count() == 0


def test_the_registry_is_what_regress_and_the_leaderboard_read():
    from opinbench.regress.check import METRICS

    for entry in registry.JUDGES.values():
        assert entry.metric.judge == entry.kind  # the scoring layer's metric object of this judge
        assert METRICS[entry.metric.key] == ("judge", not entry.metric.higher_is_better)
        assert registry.by_metric(entry.metric.key) is entry
        assert f"--{entry.role}" in _flags(entry.options)


def _flags(options_class) -> list[str]:
    import argparse

    p = argparse.ArgumentParser()
    options_class.add_flags(p)
    return [s for a in p._actions for s in a.option_strings]
