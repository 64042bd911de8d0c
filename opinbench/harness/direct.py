"""lm-eval glue for the direct tasks (``vk_direct``, ``opinionqa_direct``,
``wom_direct``, ``smartvote_direct``, ``anes_direct``): no reasoning, the answer
is the option letter the model puts most probability on as its first token.

These are the baselines a reasoning method must beat, and they work with base
models. The task is lm-eval's ``multiple_choice`` with each letter twice
(``" A"`` and ``"A"``), exactly as the distribution tasks
(`opinbench.harness.distribution`): both spellings are summed, and lm-eval
groups the requests into one forward pass per document.

Scoring (`opinbench.metrics.answer_tasks.direct_doc_metrics`): the answer-task
values of the most probable letter, plus ``p_gold`` (probability of the gold
letter, renormalised over the letters), ``letter_mass`` (probability on any
letter at all) and ``low_letter_mass`` (1 where that mass is under
``mass_threshold``, default 0.1: a template or tokenizer mismatch shows here first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opinbench.harness import answer_docs, settings
from opinbench.harness.distribution import doc_to_choice as doc_to_choice  # " A".. then "A"..
from opinbench.metrics import clustered
from opinbench.metrics.letters import probabilities
from opinbench.scoring.answer import direct_doc_values

__all__ = ["doc_to_choice"]


@settings.same_settings_as(answer_docs.load_dataset)
def load_dataset(**kwargs: Any) -> dict[str, Any]:
    """``custom_dataset`` hook: direct documents (see `opinbench.harness.answer_docs.load_dataset`)."""
    kwargs["format"] = "direct"
    return answer_docs.load_dataset(**kwargs)


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"]


def doc_to_target(doc: dict[str, Any]) -> int:
    """Index of the gold letter among the choices (its ``" X"`` spelling)."""
    return doc["letters"].index(doc["answer_letter"])


@clustered.by_sampling_unit
def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    return direct_doc_values(doc, probabilities(doc, results))
