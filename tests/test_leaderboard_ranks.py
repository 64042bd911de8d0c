"""Headline and rank intervals by a paired bootstrap over questions (issue 19, item 3)."""

from __future__ import annotations

import numpy as np
import pytest

from opinbench.leaderboard.ranks import MetricValues, rank_intervals


def _entry(shift: float, noise: float, seed: int, n_q: int = 40, task: str = "opinionqa_wd"):
    rng = np.random.default_rng(seed)
    difficulty = np.random.default_rng(99).normal(0.3, 0.1, n_q)  # shared by every entry: cancels when paired
    wd = difficulty + shift + rng.normal(0, noise, n_q)
    return {"wd": MetricValues(task, {f"q{i}": float(v) for i, v in enumerate(wd)}, floor=0.6, ceiling=0.0)}


def test_clearly_separated_entries_get_single_ranks():
    entries = {"a": _entry(0.0, 0.01, 1), "b": _entry(0.1, 0.01, 2), "c": _entry(0.2, 0.01, 3)}
    out = rank_intervals(entries, n_boot=500)
    assert [out[e].rank_text for e in "abc"] == ["1", "2", "3"]
    assert out["a"].headline > out["b"].headline > out["c"].headline
    lo, hi = out["a"].headline_ci
    assert lo < out["a"].headline < hi


def test_close_entries_share_a_rank_interval():
    entries = {"a": _entry(0.0, 0.05, 1), "b": _entry(0.002, 0.05, 2), "c": _entry(0.3, 0.01, 3)}
    out = rank_intervals(entries, n_boot=500)
    assert out["a"].rank_text == "1–2" and out["b"].rank_text == "1–2"
    assert out["c"].rank_text == "3"


def test_pairing_on_shared_questions_removes_question_difficulty():
    """Unpaired, the questions' spread (sd 0.1) would blur a 0.03 gap; paired, it does not."""
    entries = {"a": _entry(0.0, 0.005, 1), "b": _entry(0.03, 0.005, 2)}
    out = rank_intervals(entries, n_boot=500)
    assert (out["a"].rank_text, out["b"].rank_text) == ("1", "2")
    # the headline interval itself still carries the question spread
    lo, hi = out["a"].headline_ci
    assert hi - lo > 0.05


def test_only_shared_questions_count_and_fixed_metrics_enter_as_published():
    a = _entry(0.0, 0.01, 1)
    b = {"wd": MetricValues("opinionqa_wd", dict(list(_entry(0.1, 0.01, 2)["wd"].per_question.items())[:20]), 0.6, 0.0)}
    a["judge"], b["judge"] = (MetricValues("judged", {}, 0, 1, fixed=0.9), MetricValues("judged", {}, 0, 1, fixed=0.1))
    out = rank_intervals({"a": a, "b": b}, n_boot=300)
    first20 = [a["wd"].per_question[f"q{i}"] for i in range(20)]
    assert out["a"].headline == pytest.approx(((0.6 - np.mean(first20)) / 0.6 + 0.9) / 2)
    assert out["a"].rank_text == "1"


def test_site_shows_rank_intervals_not_a_strict_order():
    from types import SimpleNamespace

    from opinbench.leaderboard import site

    definition = SimpleNamespace(metrics=[SimpleNamespace(id="wd", task="opinionqa_wd"),
                                          SimpleNamespace(id="judge", task="vk_cot")])
    entries = []
    for i, (shift, noise) in enumerate([(0.0, 0.05), (0.002, 0.05), (0.3, 0.01)]):
        wd = _entry(shift, noise, i + 1)["wd"]
        entries.append({"id": i + 1, "headline": 1.0 - shift, "scores": {
            "wd": {"per_question": dict(wd.per_question), "floor": 0.6, "ceiling": 0.0, "normalised": 0.5},
            "judge": {"per_question": None, "floor": 0, "ceiling": 1, "normalised": 0.7}}})
    site._rank_intervals(entries, definition)
    assert [e["rank"] for e in entries] == [1, 2, 3]
    assert [e["rank_text"] for e in entries] == ["1–2", "1–2", "3"]
    lo, hi = entries[2]["headline_ci"]
    assert lo < hi


def test_one_question_gives_no_interval_and_no_order():
    """Found on the smoke board's real runs: three documents of one question gave every entry a
    zero-width headline interval and a definite rank. One question resamples to itself."""
    a = {"wd": MetricValues("opinionqa_wd", {"q1": 0.1}, floor=0.6, ceiling=0.0)}
    b = {"wd": MetricValues("opinionqa_wd", {"q1": 0.3}, floor=0.6, ceiling=0.0)}
    out = rank_intervals({"a": a, "b": b}, n_boot=200)
    assert out["a"].headline == pytest.approx(0.5 / 0.6) and out["b"].headline == pytest.approx(0.5)
    assert out["a"].headline_ci is None and out["b"].headline_ci is None
    assert out["a"].rank_text == out["b"].rank_text == "1–2"
    assert "opinionqa_wd: 1 question shared by every entry" in out["a"].why


def test_site_says_why_there_is_no_interval():
    from types import SimpleNamespace

    from opinbench.leaderboard import site

    definition = SimpleNamespace(metrics=[SimpleNamespace(id="wd", task="opinionqa_wd")])
    entries = [{"id": i, "headline": h, "scores": {"wd": {"per_question": {"q1": v}, "floor": 0.6, "ceiling": 0.0,
                                                          "normalised": h}}}
               for i, (h, v) in enumerate([(0.8, 0.12), (0.5, 0.3)], start=1)]
    site._rank_intervals(entries, definition)
    assert [e["rank"] for e in entries] == [1, 2]
    assert [e["rank_text"] for e in entries] == ["1–2", "1–2"]
    assert all(e["headline_ci"] is None and "too few to resample" in e["interval_note"] for e in entries)
