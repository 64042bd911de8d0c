"""Deterministic train/test splits by question, per individual.

Every individual (party, candidate, respondent) gets its own split of the
questions it answered: the questions are ordered by a seeded hash of
``(seed, subject, question_key)`` and the first ``round(test_fraction * n)`` go
to test. The result depends only on the seed, the subject and the set of
question keys, not on file order or Python's hash randomisation, so a split can
be recomputed anywhere and is also stored with each record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DEFAULT_SEED = 0
DEFAULT_TEST_FRACTION = 0.3


def _rank(seed: int, subject: str, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x1f{subject}\x1f{key}".encode()).digest()


def split_questions(
    subject: str,
    question_keys: Iterable[str],
    *,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> dict[str, str]:
    """``{question_key: "train" | "test"}`` for one individual.

    >>> s = split_questions("SPD", [f"q{i}" for i in range(10)], test_fraction=0.3)
    >>> sorted(s.values()).count("test")
    3
    >>> s == split_questions("SPD", [f"q{i}" for i in reversed(range(10))], test_fraction=0.3)
    True
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    keys = sorted(set(question_keys), key=lambda k: _rank(seed, subject, k))
    n_test = round(test_fraction * len(keys))
    return {k: ("test" if i < n_test else "train") for i, k in enumerate(keys)}


def question_splits(
    dataset: str,
    question_keys: Iterable[str],
    *,
    seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> dict[str, str]:
    """Train/test split of a distribution data set's questions (all groups of a question together).

    Distribution records have no individual; the split is by question for the whole
    data set, so that a model trained on the train questions is scored on questions
    it never saw (``--metadata '{"split": "test"}'`` on the ``*_wd`` tasks).
    """
    return split_questions(dataset, question_keys, seed=seed, test_fraction=test_fraction)
