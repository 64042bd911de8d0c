"""The analyses against the papers' own definitions (issue 19, item 5)."""

from __future__ import annotations

import pytest

from opinbench.analysis import improvement, topics
from opinbench.analysis.improvement import Improvement


@pytest.mark.parametrize(
    "group, lower, zero_shot, tuned, expected",
    [  # SubPOP (Suh et al. 2025), Table 2: lower bound, zero-shot, fine-tuned WD -> relative improvement
        (("AGE", "18-29"), 0.023, 0.185, 0.096, 0.549),
        (("EDUCATION", "Less than high school"), 0.043, 0.161, 0.101, 0.508),
        (("AGE", "65+"), 0.013, 0.195, 0.115, 0.440),
    ],
)
def test_subpop_table2_relative_improvement(group, lower, zero_shot, tuned, expected):
    imp = Improvement(group=group, questions=10, base_wd=zero_shot, tuned_wd=tuned, lower_bound=lower)
    assert imp.relative == pytest.approx(expected, abs=5e-4)
    assert (zero_shot - tuned) / zero_shot != pytest.approx(expected, abs=5e-3)  # the old formula is not it


def test_relative_improvement_without_a_gap_is_nan():
    assert Improvement(("A", "a"), 1, 0.1, 0.05, 0.1).relative != Improvement(("A", "a"), 1, 0.1, 0.05, 0.1).relative


def _topic_wd():
    # three topics; POLIDEOLOGY: Liberal closest overall, closest in 2 of 3 topics;
    # EDUCATION: College closest overall and in 1 of 3; INCOME: High everywhere (3 of 3);
    # pooled over all six groups, High is closest overall and in every topic.
    g = {
        ("POLIDEOLOGY", "Liberal"): [0.20, 0.21, 0.30],
        ("POLIDEOLOGY", "Conservative"): [0.25, 0.26, 0.22],
        ("EDUCATION", "College"): [0.20, 0.30, 0.30],
        ("EDUCATION", "High school"): [0.22, 0.25, 0.28],
        ("INCOME", "High"): [0.10, 0.10, 0.10],
        ("INCOME", "Low"): [0.30, 0.30, 0.30],
    }
    wd = {t: {grp: v[i] for grp, v in g.items()} for i, t in enumerate(["t1", "t2", "t3"])}
    overall = {grp: sum(v) / 3 for grp, v in g.items()}
    return topics.TopicWD(wd, overall, ())


def test_c_m_is_the_mean_over_three_attributes():
    t = _topic_wd()
    cm = topics.c_m(t)
    assert cm.by_attribute["POLIDEOLOGY"].share == pytest.approx(2 / 3)
    assert cm.by_attribute["EDUCATION"].closest_overall == ("EDUCATION", "High school")
    assert cm.value == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert topics.consistency(t).share == pytest.approx(1.0)  # the pooled figure differs
    assert cm.missing == ()


def test_c_m_names_missing_attributes():
    t = _topic_wd()
    only = topics.TopicWD({k: {g: v for g, v in d.items() if g[0] == "INCOME"} for k, d in t.wd.items()},
                          {g: v for g, v in t.overall.items() if g[0] == "INCOME"}, ())
    cm = topics.c_m(only)
    assert cm.value == 1.0 and cm.missing == ("POLIDEOLOGY", "EDUCATION")
    assert topics.c_m(topics.TopicWD({}, {}, ())) is None
