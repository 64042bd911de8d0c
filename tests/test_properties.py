"""Properties of the metric and the answer extractor on arbitrary input (Hypothesis).

* WD is in [0, 1], zero only for equal distributions, symmetric, and equals
  scipy's 1-D Wasserstein distance divided by the range of the ordinal values;
* the extractor never raises, whatever the text, and returns an option or a reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from opinbench.answers import extract_answer
from opinbench.metrics.distribution import renormalise, wasserstein

SETTINGS = settings(max_examples=100, deadline=None)


@st.composite
def question(draw):
    """Ordinal values with a scale (not all equal) and two distributions over them."""
    k = draw(st.integers(2, 7))
    values = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
    ordinal = draw(st.lists(values, min_size=k, max_size=k).filter(lambda o: max(o) - min(o) > 1e-3))
    weight = st.floats(0, 1, allow_nan=False, width=32)
    p = draw(st.lists(weight, min_size=k, max_size=k).filter(lambda w: sum(w) > 1e-3))
    q = draw(st.lists(weight, min_size=k, max_size=k).filter(lambda w: sum(w) > 1e-3))
    return np.array(ordinal, dtype=np.float64), np.array(p), np.array(q)


@SETTINGS
@given(question())
def test_wd_in_unit_interval_symmetric_and_equal_to_scipy(case):
    ordinal, p, q = case
    wd = float(wasserstein(p, q, ordinal)[0])
    assert -1e-12 <= wd <= 1 + 1e-12
    assert wd == pytest.approx(float(wasserstein(q, p, ordinal)[0]), abs=1e-12)
    reference = wasserstein_distance(ordinal, ordinal, p, q) / (ordinal.max() - ordinal.min())
    assert wd == pytest.approx(reference, abs=1e-9)


@SETTINGS
@given(question())
def test_wd_is_zero_only_for_equal_distributions(case):
    ordinal, p, q = case
    assert float(wasserstein(p, p * 3.0, ordinal)[0]) == pytest.approx(0.0, abs=1e-12)
    pn, qn = renormalise(p, ordinal[None, :])[0], renormalise(q, ordinal[None, :])[0]
    # Options that share an ordinal value are one point of the scale: compare mass per value.
    values = np.unique(ordinal)
    differ = any(abs(pn[ordinal == v].sum() - qn[ordinal == v].sum()) > 1e-6 for v in values)
    wd = float(wasserstein(p, q, ordinal)[0])
    if differ:  # some point of the scale has more mass in one: the CDFs part over a positive gap
        assert wd > 0
    else:  # equal up to 1e-6 per point (and rounding)
        assert wd < 1e-5


OPTIONS = st.lists(st.text(min_size=1, max_size=12).filter(str.strip), min_size=2, max_size=5, unique=True)
# Option texts as surveys write them: words (a one-character or punctuation-only option
# would be ambiguous with a letter by design).
WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=3, max_size=20).filter(lambda t: len(t.strip()) >= 3),
    min_size=2, max_size=5, unique_by=lambda t: t.strip().casefold(),
)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.none(), st.text(max_size=300)), options=OPTIONS)
def test_extractor_never_raises_and_returns_an_option_or_a_reason(text, options):
    ex = extract_answer(text, options)
    if ex.answer is None:
        assert ex.how.startswith("invalid: ")
    else:
        assert ex.answer in options and ex.letter == "ABCDEFGHIJ"[options.index(ex.answer)]


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.text(max_size=80),
    suffix=st.sampled_from(["", "\n", ".", " "]),
    options=WORDS,
    pick=st.integers(0, 4),
)
def test_extractor_reads_a_final_answer_line(prefix, suffix, options, pick):
    i = pick % len(options)
    ex = extract_answer(f"{prefix}\nAnswer: {'ABCDE'[i]}{suffix}", options)
    # A reasoning text may itself contain an answer tag or line that wins; otherwise the last line counts.
    if "<answer" not in prefix.lower() and "answer" not in prefix.lower():
        assert ex.answer == options[i], ex
