"""Classification metrics: hand-computed cases, scikit-learn as the reference, bootstrap."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from sklearn import metrics as skm

import opinbench.metrics.classification as C

LABELS = ["Yes", "Neutral", "No"]


def test_hand_computed():
    gold = ["Yes", "Yes", "No", "No", "Neutral"]
    pred = ["Yes", "No", "No", None, "Yes"]
    conf = C.confusion(gold, pred, LABELS)
    assert conf.tolist() == [[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1]]
    assert C.accuracy(gold, pred) == 0.4
    assert C.invalid_rate(pred) == 0.2
    assert C.recall_per_class(gold, pred, LABELS) == {"Yes": 0.5, "Neutral": 0.0, "No": 0.5}
    assert C.balanced_accuracy(gold, pred, LABELS) == pytest.approx(1 / 3)
    # F1: Yes 2*1/(2+2)=0.5, Neutral 0, No 2*1/(2+1)... support 2, predicted 2 -> 0.5
    assert C.f1_per_class(gold, pred, LABELS) == {"Yes": 0.5, "Neutral": 0.0, "No": 0.5}
    assert C.macro_f1(gold, pred, LABELS) == pytest.approx(1 / 3)


def test_absent_class_is_left_out_of_macro_f1():
    """An individual who never answered Neutral, and was never predicted Neutral."""
    gold, pred = ["Yes", "No", "No"], ["Yes", "No", "Yes"]
    f1 = C.f1_per_class(gold, pred, LABELS)
    assert math.isnan(f1["Neutral"])
    assert C.macro_f1(gold, pred, LABELS) == pytest.approx((2 / 3 + 2 / 3) / 2)
    # predicted but never gold: F1 = 0 and it counts
    assert C.macro_f1(gold, ["Yes", "No", "Neutral"], LABELS) == pytest.approx((1 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = 300
    gold = list(rng.choice(LABELS, size=n, p=[0.5, 0.2, 0.3]))
    pred = [None if rng.random() < 0.1 else str(rng.choice(LABELS + ["Either"])) for _ in range(n)]
    sk_pred = ["<invalid>" if p is None else p for p in pred]
    assert C.accuracy(gold, pred) == pytest.approx(skm.accuracy_score(gold, sk_pred))
    assert C.balanced_accuracy(gold, pred, LABELS) == pytest.approx(
        np.mean(skm.recall_score(gold, sk_pred, labels=LABELS, average=None, zero_division=0))
    )
    assert C.macro_f1(gold, pred, LABELS) == pytest.approx(
        skm.f1_score(gold, sk_pred, labels=LABELS, average="macro", zero_division=0)
    )
    recall = C.recall_per_class(gold, pred, LABELS)
    sk_recall = skm.recall_score(gold, sk_pred, labels=LABELS, average=None, zero_division=0)
    assert [recall[x] for x in LABELS] == pytest.approx(list(sk_recall))


def test_matches_scikit_learn_with_absent_class():
    gold = ["Yes", "No"] * 20
    pred = ["Yes", "No", "No", None] * 10
    sk_pred = ["<invalid>" if p is None else p for p in pred]
    ours = C.macro_f1(gold, pred, LABELS)
    ref = skm.f1_score(gold, sk_pred, labels=LABELS, average="macro", zero_division=np.nan)
    assert ours == pytest.approx(ref)


def test_label_set_is_checked():
    with pytest.raises(ValueError, match="not in the label set"):
        C.confusion(["Maybe"], ["Yes"], LABELS)
    with pytest.raises(ValueError, match="duplicate"):
        C.confusion(["Yes"], ["Yes"], ["Yes", "Yes"])
    with pytest.raises(ValueError, match="predictions"):
        C.macro_f1(["Yes"], [], LABELS)


def test_per_individual_macro_f1():
    gold = ["Yes", "No", "Yes", "Neutral", "No"]
    pred = ["Yes", "No", "No", "Neutral", "No"]
    ind = ["a", "a", "b", "b", "b"]
    scores = C.per_individual_macro_f1(gold, pred, ind, LABELS)
    assert scores["a"] == 1.0
    ref = skm.f1_score(gold[2:], pred[2:], labels=LABELS, average="macro", zero_division=np.nan)
    assert scores["b"] == pytest.approx(ref)


def test_majority_label():
    assert C.majority_label(["No", "Yes", "No"], LABELS) == "No"
    assert C.majority_label(["No", "Yes"], LABELS) == "Yes"  # tie: label-set order


def test_scores_vectorised_over_batches():
    rng = np.random.default_rng(0)
    confs = rng.integers(0, 20, size=(7, 4, 3, 4)).astype(float)
    batched = C.scores(confs)["macro_f1"]
    assert batched.shape == (7, 4)
    assert batched[3, 2] == pytest.approx(C.scores(confs[3, 2])["macro_f1"])


def test_bootstrap_confusions_keep_repeats_together():
    g = np.array([0, 1, 2, 0, 1])
    p = np.array([[0, 0], [1, 3], [2, 2], [1, 1], [1, 0]])
    boot = C.bootstrap_confusions(g, p, 3, n_boot=50, seed=1)
    assert boot.shape == (50, 2, 3, 4)
    assert (boot.sum(axis=(2, 3)) == 5).all()
    # document 3 (gold 0 -> 1 in both repeats) is drawn the same number of times in both repeats
    assert (boot[:, 0, 0, 1] == boot[:, 1, 0, 1]).all()


def test_bootstrap_stderr_matches_theory_for_accuracy():
    """Bootstrap stderr of accuracy ~ sqrt(p(1-p)/n)."""
    rng = np.random.default_rng(3)
    n = 2000
    g = rng.integers(0, 3, size=n)
    p = np.where(rng.random(n) < 0.6, g, (g + 1) % 3)[:, None]
    se = C.bootstrap_stderr_repeats(g, p, 3, "accuracy", n_boot=2000, seed=0)
    acc = float((p[:, 0] == g).mean())
    assert se == pytest.approx(math.sqrt(acc * (1 - acc) / n), rel=0.1)
    assert math.isnan(C.bootstrap_stderr_repeats(g[:1], p[:1], 3, "accuracy"))


def test_bootstrap_stderr_of_a_mean():
    x = np.random.default_rng(0).normal(size=400)
    assert C.bootstrap_stderr_mean(x, n_boot=2000) == pytest.approx(x.std(ddof=1) / 20, rel=0.1)


def test_doctests():
    assert doctest.testmod(C).failed == 0
