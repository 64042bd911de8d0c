"""Aggregation hooks of the answer tasks (``*_cot``, ``*_direct``).

The task YAMLs name these functions (``aggregation: !function utils.macro_f1``
through each folder's ``utils.py``); the scoring itself is
`opinbench.metrics.answer_tasks`, pure and free of lm-eval.
"""

from opinbench.metrics.answer_tasks import (  # noqa: F401  (the aggregations the task YAMLs name)
    acc_binary_excl_either,
    acc_repeat_std,
    balanced_acc,
    balanced_acc_stderr_boot,
    macro_f1,
    macro_f1_individual,
    macro_f1_individual_stderr_boot,
    macro_f1_repeat_std,
    macro_f1_stderr_boot,
)

__all__ = [
    "acc_binary_excl_either",
    "acc_repeat_std",
    "balanced_acc",
    "balanced_acc_stderr_boot",
    "macro_f1",
    "macro_f1_individual",
    "macro_f1_individual_stderr_boot",
    "macro_f1_repeat_std",
    "macro_f1_stderr_boot",
]
