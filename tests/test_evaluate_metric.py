"""The ordinal WD offered as a Hugging Face ``evaluate`` metric, loaded offline from its local path."""

from __future__ import annotations

import pytest

evaluate = pytest.importorskip("evaluate")


@pytest.fixture(scope="module")
def ordinal_wd():
    import os

    from opinbench.evaluate_metrics import ORDINAL_WD

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    return evaluate.load(str(ORDINAL_WD))


def test_hand_computed_wd_and_uniform_bound(ordinal_wd):
    # Q1 on (1, 2, 3): all mass one step of two away -> 1/2; Q2 on (1, 2): |0.2 - 0.5| = 0.3
    got = ordinal_wd.compute(predictions=[[0, 1, 0], [0.2, 0.8]], references=[[1, 0, 0], [0.5, 0.5]],
                             ordinal=[[1, 2, 3], [1, 2]])
    assert got["wd"] == pytest.approx((0.5 + 0.3) / 2)
    # uniform vs (1, 0, 0): CDF gaps 2/3 and 1/3 over a range of 2 -> 1/2; vs (0.5, 0.5): 0
    assert got["wd_uniform"] == pytest.approx((0.5 + 0.0) / 2)
    assert "wd_human" not in got


def test_human_bound_matches_the_tasks(ordinal_wd):
    from opinbench.metrics.distribution import human_bootstrap_wd

    # n = 2 respondents split 50/50: resamples (2,0), (1,1), (0,2) with probabilities 1/4, 1/2, 1/4
    # give WD 1/2, 0, 1/2 -> expected 1/4 (computed exactly for groups this small)
    got = ordinal_wd.compute(predictions=[[0.5, 0.5]], references=[[0.5, 0.5]], ordinal=[[1, 2]], n=[2])
    assert got["wd_human"] == pytest.approx(0.25)
    assert got["wd_human"] == pytest.approx(float(human_bootstrap_wd([[0.5, 0.5]], [2], [[1, 2]])[0]))
    # wd 0, uniform 0, human 1/4: the gap is (0 - 0) / (0 - 1/4) = 0
    assert got["wd_gap_closed"] == pytest.approx(0.0)


def test_mismatched_lengths_are_refused(ordinal_wd):
    with pytest.raises(ValueError):
        ordinal_wd.compute(predictions=[[0.5, 0.5]], references=[[0.2, 0.3, 0.5]])
