"""Option-letter probabilities of the multiple-choice tasks (``*_wd``, ``*_direct``).

Each option letter is a choice twice: with a leading space (``" A"``, what
follows ``Answer:`` in running text) and without (``"A"``, what a chat model
emits first). A letter's probability is the sum of its two spellings, so the
score does not depend on what the tokenizer does with a leading space; both
spellings are disjoint next-token events. The letters' total probability
(``letter_mass``) shows a template or tokenizer mismatch first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from opinbench.metrics import clustered

# The aggregations below warn where lm-eval users read the harness's own warnings.
log = logging.getLogger("opinbench.harness")

# Below this much probability on the option letters a document counts as ``low_letter_mass``.
DEFAULT_MASS_THRESHOLD = 0.1


def letter_probabilities(loglikelihoods: Sequence[float], n_letters: int) -> np.ndarray:
    """P(letter) = P(" X") + P("X") for each option letter."""
    ll = np.asarray(loglikelihoods, dtype=np.float64)
    if ll.size != 2 * n_letters:
        raise ValueError(f"expected {2 * n_letters} loglikelihoods, got {ll.size}")
    return np.exp(ll[:n_letters]) + np.exp(ll[n_letters:])


def probabilities(doc: dict[str, Any], results: Sequence[Any]) -> np.ndarray:
    """P(letter) per option of ``doc`` from lm-eval's ``(loglikelihood, is_greedy)`` results (or bare floats)."""
    lls = [r[0] if isinstance(r, (tuple, list)) else float(r) for r in results]
    return letter_probabilities(lls, len(doc["letters"]))


def logged_loglikelihoods(row: dict[str, Any]) -> list[float]:
    """The logged loglikelihoods of a multiple-choice row, one per choice, as floats.

    lm-eval writes ``filtered_resps`` as ``[[ll, is_greedy], ...]`` and ``resps`` as
    ``[[[ll, is_greedy]], ...]``, the numbers as strings.

    >>> logged_loglikelihoods({"filtered_resps": [["-0.5", "True"], ["-2.0", "False"]]})
    [-0.5, -2.0]
    >>> logged_loglikelihoods({"resps": [[["-0.5", "True"]], [["-2.0", "False"]]]})
    [-0.5, -2.0]
    """
    out = []
    for r in row.get("filtered_resps") or row.get("resps") or []:
        x = r[0] if isinstance(r, list) and r and isinstance(r[0], list) else r  # resps: [[ll, greedy]]
        x = x[0] if isinstance(x, list) else x
        out.append(float(x))
    return out


def is_finite(probs: np.ndarray) -> bool:
    """Whether every letter probability is a finite number.

    A NaN or infinite loglikelihood (a broken model, fp16 overflow, a backend bug)
    must never be scored: NaN would pass for a perfect distribution downstream,
    where padded options are masked with NaN.
    """
    return bool(np.all(np.isfinite(probs)))


def predicted_answer(doc: dict[str, Any], probs: np.ndarray) -> str:
    """The option whose letter is most probable (the first on ties)."""
    return doc["options"][int(np.argmax(probs))]


def low_letter_mass(doc: dict[str, Any], mass: float) -> float:
    """1.0 where the letters' total probability is under the document's ``mass_threshold``, else 0.0."""
    return float(mass < float(doc.get("mass_threshold", DEFAULT_MASS_THRESHOLD)))


# --------------------------------------------------------------------------- aggregations (task YAMLs name them)


@clustered.with_stderr(clustered.clustered_mean_stderr)
def share_nonfinite(items: list[float]) -> float:
    """Share of documents whose letter loglikelihoods were NaN or infinite (left unscored); warns when any."""
    share = float(np.mean(items)) if items else float("nan")
    if share > 0:
        log.warning("%d of %d documents got a NaN or infinite loglikelihood and were not scored: check the "
                    "model's dtype (fp16 overflows) and backend", int(round(share * len(items))), len(items))
    return share


@clustered.with_stderr(clustered.clustered_mean_stderr)
def share_low_mass(items: list[float]) -> float:
    """Share of documents with little probability on the option letters; warns when any."""
    share = float(np.mean(items)) if items else float("nan")
    if share > 0:
        log.warning("%.1f%% of documents put less than mass_threshold (default %.2f) probability on the option "
                    "letters: check the prompt template, --apply_chat_template and the tokenizer", 100 * share,
                    DEFAULT_MASS_THRESHOLD)
    return share
