"""Shares with Wilson intervals and cluster-robust standard errors (judge results)."""

from __future__ import annotations

from opinbench.judging.results import share, wilson


def test_share_and_wilson():
    s = share([True] * 8 + [False] * 2)
    assert s.value == 0.8 and abs(s.stderr - (0.8 * 0.2 * 10 / 9 / 10) ** 0.5) < 1e-12
    lo, hi = wilson(0.8, 10)
    assert abs(s.ci_low - lo) < 1e-9 and abs(s.ci_high - hi) < 1e-9
    # Repeats of one document are one cluster: fewer clusters, larger stderr.
    clustered = share([True, True, False, False] * 5, [i // 2 for i in range(20)])
    assert clustered.stderr > share([True, True, False, False] * 5).stderr
    assert share([]).value is None and share([True]).stderr is None
