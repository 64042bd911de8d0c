"""The answer tasks' metrics (``*_cot``, ``*_direct``): one gold answer per document.

Their per-document values come from `opinbench.metrics.answer_tasks` (``doc_metrics`` for
a reasoning task's parsed generations, ``direct_doc_metrics`` for a direct task's letter
probabilities), called by the live task hooks and by `opinbench.scoring.kinds` when logged
samples are re-scored; the custom aggregations there are what these objects name, and their
standard errors the cluster bootstraps there (lm-eval publishes them as ``X_stderr`` through
`opinbench.harness.stderr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opinbench.answers import extract_doc_answer
from opinbench.metrics.answer_tasks import direct_doc_metrics, doc_metrics
from opinbench.scoring.metric import ANSWER, BOOTSTRAP_MACRO_F1, SIGN_FLIP, Metric, register

_AT = "opinbench.metrics.answer_tasks."


ACC = Metric("acc", "accuracy", True, (ANSWER,), tolerance=0.01, test=SIGN_FLIP, breakdown=True,
             description="share of answers equal to the gold answer (mean over repeats)")
INVALID = Metric("invalid", "invalid answers", False, (ANSWER,),
                 description="share of generations that name no single option")
RECALL = Metric("recall", "recall", True, (ANSWER,), breakdown=True,
                description="per-class recall (recall|<label>)")
BALANCED_ACC = Metric("balanced_acc", "balanced accuracy", True, (ANSWER,), aggregation=_AT + "balanced_acc",
                      stderr=_AT + "balanced_acc_stderr_boot", description="mean per-class recall")
MACRO_F1 = Metric("macro_f1", "macro-F1", True, (ANSWER,), aggregation=_AT + "macro_f1",
                  stderr=_AT + "macro_f1_stderr_boot", tolerance=0.01, test=BOOTSTRAP_MACRO_F1,
                  description="macro-F1 over the label set")
ACC_REPEAT_STD = Metric("acc_repeat_std", "accuracy spread over repeats", False, (ANSWER,),
                        aggregation=_AT + "acc_repeat_std", stderr=None)
MACRO_F1_REPEAT_STD = Metric("macro_f1_repeat_std", "macro-F1 spread over repeats", False, (ANSWER,),
                             aggregation=_AT + "macro_f1_repeat_std", stderr=None)
ACC_BINARY = Metric("acc_binary", "binary accuracy", True, (ANSWER,),
                    description="VK: accuracy on documents whose gold is Supports or Opposes")
MACRO_F1_BINARY = Metric("macro_f1_binary", "binary macro-F1", True, (ANSWER,), aggregation=_AT + "macro_f1",
                         stderr=_AT + "macro_f1_stderr_boot")
ACC_BINARY_EXCL_EITHER = Metric("acc_binary_excl_either", "binary accuracy without Either", True, (ANSWER,),
                                aggregation=_AT + "acc_binary_excl_either", stderr=_AT + "acc_binary_excl_either_stderr")
MACRO_F1_INDIVIDUAL = Metric("macro_f1_individual", "macro-F1 per individual", True, (ANSWER,),
                             aggregation=_AT + "macro_f1_individual", stderr=_AT + "macro_f1_individual_stderr_boot",
                             breakdown=True, description="macro-F1 per individual, averaged over individuals")
P_GOLD = Metric("p_gold", "probability of the gold answer", True, (ANSWER,))

register(
    ACC, INVALID, RECALL, BALANCED_ACC, MACRO_F1, ACC_REPEAT_STD, MACRO_F1_REPEAT_STD, ACC_BINARY, MACRO_F1_BINARY,
    ACC_BINARY_EXCL_EITHER, MACRO_F1_INDIVIDUAL, P_GOLD,
)


def cot_doc_values(doc: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    """Per-document values of a reasoning task from its generations (repeats included): each parsed
    with `opinbench.answers.extract_doc_answer`; the extractor's reason for an invalid answer is
    logged beside it (``why``)."""
    parsed = [extract_doc_answer(doc, t) for t in texts]
    why = [None if p.valid else p.how.removeprefix("invalid: ") for p in parsed]
    return doc_metrics(doc, [p.answer for p in parsed], why=why)


def direct_doc_values(doc: dict[str, Any], probs: np.ndarray) -> dict[str, Any]:
    """Per-document values of a direct task from its option-letter probabilities."""
    return direct_doc_metrics(doc, probs)
