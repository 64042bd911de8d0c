"""Calibration of `opinbench regress` on synthetic data: false alarms stay at alpha.

The synthetic null has strong correlation within questions (`calibration.Setting.question_sd`),
so a test that resampled documents instead of questions would fail here.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from opinbench.regress import calibration as K
from opinbench.regress import check
from opinbench.metrics.significance import mcnemar_exact
from opinbench.regress import stats as S

N = 200
ALPHA = check.DEFAULT_ALPHA
SMALL = K.Setting(n_questions=12, n_groups=3, n_answer_docs=120, docs_per_situation=10, question_sd=0.3, doc_sd=0.05,
                  answer_question_sd=1.5)
ZERO = {m: 0.0 for m in check.DEFAULT_TOLERANCES}
# The largest count of false alarms a test at level alpha shows in N trials, but for 1 in 1,000 runs.
LIMIT = int(stats.binom.ppf(0.999, N, ALPHA))


def test_false_alarm_rate_within_binomial_limits():
    reports = K.simulate(SMALL, N, seed=11, tolerances=ZERO, n_resamples=1_000, n_boot=200)
    family = sum(K.any_significant(r) for r in reports)
    assert family <= LIMIT, f"{family} of {N} null comparisons flagged (limit {LIMIT})"
    for i, metric in enumerate(r["metric"] for r in reports[0]["rows"]):
        raw = sum(r["rows"][i]["pvalue"] < ALPHA for r in reports)
        assert raw <= LIMIT, f"{metric}: {raw} of {N} unadjusted p < alpha"


def test_known_drop_is_found():
    setting = K.Setting(n_questions=12, n_groups=3, n_answer_docs=200)
    reports = K.simulate(setting, 20, seed=12, eps=0.4, flip=0.3, n_resamples=1_000, n_boot=200)
    assert np.mean([any(m.startswith("synthetic_wd/") for m in r["regressions"]) for r in reports]) > 0.8
    assert np.mean(["synthetic_direct/acc" in r["regressions"] for r in reports]) > 0.5


def test_document_level_resampling_would_be_miscalibrated():
    """The same null, tested per document (each document its own cluster): false alarms pile up,
    which is why regress resamples questions."""
    hits = mcnemar = 0
    for i in range(100):
        rng = np.random.default_rng([13, i])
        world = K.make_world(SMALL, rng)
        a, b = K.draw(world, rng), K.draw(world, rng)
        ta, tb = a.tasks["synthetic_wd"], b.tasks["synthetic_wd"]
        d = [tb.docs[k]["wd"] - ta.docs[k]["wd"] for k in ta.docs]
        hits += S.sign_flip_pvalue(d, list(range(len(d))), n_resamples=500, seed=i) < ALPHA
        # accuracy: exact McNemar over documents, the test regress used before
        aa, ab = a.tasks["synthetic_direct"], b.tasks["synthetic_direct"]
        right = [[d.docs[k]["pred"][0] == d.docs[k]["gold"] for k in aa.docs] for d in (aa, ab)]
        mcnemar += mcnemar_exact(*right).pvalue < ALPHA
    assert hits > LIMIT / 2
    assert mcnemar > LIMIT, f"McNemar over documents: {mcnemar} of 100 null comparisons flagged"
