"""Scoring is pure: importing `opinbench.metrics` touches neither lm-eval nor logging; the harness
installs lm-eval's log filter where lm-eval runs."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import logging, sys
import opinbench.commands.compare, opinbench.judging.samples, opinbench.runs
import opinbench.metrics.answer_tasks, opinbench.metrics.distribution_tasks, opinbench.metrics.letters
assert not logging.getLogger("lm_eval.evaluator_utils").filters, "a log filter was installed"
leaked = sorted(m for m in sys.modules if m.startswith(("opinbench.harness", "lm_eval")))
assert not leaked, leaked
import opinbench.harness.cot
from opinbench.harness.quiet_logs import BreakdownLogFilter
assert any(isinstance(f, BreakdownLogFilter) for f in logging.getLogger("lm_eval.evaluator_utils").filters)
"""


def test_metrics_import_without_harness_or_log_filter():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
