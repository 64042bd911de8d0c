"""lm-eval hooks of the answer tasks in this folder; the code lives in opinbench.harness."""

from opinbench.harness.cot import doc_to_target as cot_doc_to_target  # noqa: F401
from opinbench.harness.cot import doc_to_text, keep_all  # noqa: F401
from opinbench.harness.cot import load_dataset as load_cot_dataset  # noqa: F401
from opinbench.harness.cot import process_results as cot_process_results  # noqa: F401
from opinbench.harness.direct import doc_to_choice  # noqa: F401
from opinbench.harness.direct import doc_to_target as direct_doc_to_target  # noqa: F401
from opinbench.harness.direct import load_dataset as load_direct_dataset  # noqa: F401
from opinbench.harness.direct import process_results as direct_process_results  # noqa: F401
from opinbench.harness.distribution import share_low_mass  # noqa: F401
from opinbench.harness.scoring import (  # noqa: F401
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
