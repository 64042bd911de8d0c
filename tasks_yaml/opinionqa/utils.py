"""lm-eval hooks for the OpinionQA tasks; the code lives in opinbench.harness."""

from opinbench.harness.distribution import (  # noqa: F401
    doc_to_choice,
    doc_to_target,
    doc_to_text,
    gap_closed,
    load_dataset,
    process_results,
    share_low_mass,
)
