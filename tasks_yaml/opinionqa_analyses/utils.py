"""lm-eval hooks of the OpinionQA analysis tasks; the code lives in opinbench.harness."""

from opinbench.harness.default_model import load_dataset, process_results  # noqa: F401
from opinbench.harness.distribution import doc_to_choice, doc_to_target, doc_to_text  # noqa: F401
