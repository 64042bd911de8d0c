"""lm-eval hooks for the OpinionQA and SubPOP distribution tasks; the code lives in opinbench.harness."""

from opinbench.harness.distribution import (  # noqa: F401
    doc_to_choice,
    doc_to_target,
    doc_to_text,
    gap_closed,
    load_dataset,
    process_results,
    share_low_mass,
)
from opinbench.harness.cot import keep_all  # noqa: F401
from opinbench.harness.sampled import process_results as sampled_process_results  # noqa: F401
