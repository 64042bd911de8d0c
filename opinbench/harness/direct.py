"""lm-eval glue for the direct tasks (``vk_direct``, ``opinionqa_direct``,
``wom_direct``, ``smartvote_direct``, ``anes_direct``): no reasoning, the answer
is the option letter the model puts most probability on as its first token.

These are the baselines a reasoning method must beat, and they work with base
models. The task is lm-eval's ``multiple_choice`` with each letter twice
(``" A"`` and ``"A"``), exactly as the distribution tasks
(`opinbench.harness.distribution`): both spellings are summed, and lm-eval
groups the requests into one forward pass per document.

Per-document values beyond the shared ones (`opinbench.harness.scoring`):
``p_gold`` (probability of the gold letter, renormalised over the letters),
``letter_mass`` (probability on any letter at all) and ``low_letter_mass``
(1 where that mass is under ``mass_threshold``, default 0.1: a template or
tokenizer mismatch shows here first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opinbench.harness import answer_docs
from opinbench.harness.distribution import DEFAULT_MASS_THRESHOLD, letter_probabilities, share_low_mass
from opinbench.harness.distribution import doc_to_choice as doc_to_choice  # " A".. then "A"..
from opinbench.harness.scoring import (  # noqa: F401  (re-exported for the task YAMLs)
    acc_binary_excl_either,
    acc_repeat_std,
    balanced_acc,
    balanced_acc_stderr_boot,
    doc_metrics,
    macro_f1,
    macro_f1_individual,
    macro_f1_individual_stderr_boot,
    macro_f1_repeat_std,
    macro_f1_stderr_boot,
)

__all__ = ["doc_to_choice", "share_low_mass"]


def load_dataset(**kwargs: Any) -> dict[str, Any]:
    """``custom_dataset`` hook: direct documents (see `opinbench.harness.answer_docs.load_dataset`)."""
    kwargs["format"] = "direct"
    return answer_docs.load_dataset(**kwargs)


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"]


def doc_to_target(doc: dict[str, Any]) -> int:
    """Index of the gold letter among the choices (its ``" X"`` spelling)."""
    return doc["letters"].index(doc["answer_letter"])


def probabilities(doc: dict[str, Any], results: Sequence[Any]) -> np.ndarray:
    """P(letter) per option from the loglikelihoods lm-eval returns."""
    lls = [r[0] if isinstance(r, (tuple, list)) else float(r) for r in results]
    return letter_probabilities(lls, len(doc["letters"]))


def predicted_answer(doc: dict[str, Any], probs: np.ndarray) -> str:
    """The option whose letter is most probable (the first on ties)."""
    return doc["options"][int(np.argmax(probs))]


def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    probs = probabilities(doc, results)
    out = doc_metrics(doc, [predicted_answer(doc, probs)], with_invalid=False)
    for key in ("acc_repeat_std", "macro_f1_repeat_std"):  # one answer per document: no repeats
        del out[key]
    mass = float(probs.sum())
    gold = doc["letters"].index(doc["answer_letter"])
    out["p_gold"] = float(probs[gold] / mass) if mass > 0 else 1.0 / len(probs)
    out["letter_mass"] = mass
    out["low_letter_mass"] = float(mass < float(doc.get("mass_threshold", DEFAULT_MASS_THRESHOLD)))
    return out
