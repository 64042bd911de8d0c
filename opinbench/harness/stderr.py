"""lm-eval publishes opinbench's clustered standard errors under ``X_stderr``.

lm-eval 0.4.13 computes every ``X_stderr`` itself (``TaskOutput.calculate_aggregate_metric``
asks ``stderr_for_metric(aggregation)``): by the *identity* of the aggregation function,
``mean`` gets ``mean_stderr`` (documents taken as independent; 2.9x too small on
``opinionqa_wd``, whose 17 groups per question share the question) and every custom
aggregation "N/A". A task cannot supply its own, and a separate metric named ``X_stderr``
makes lm-eval write ``X_stderr_stderr: N/A`` beside it. So opinbench wraps that one
lookup (`install`, run when `opinbench.harness` is imported, i.e. when lm-eval loads an
opinbench task):

* an aggregation marked with `opinbench.metrics.clustered.with_stderr` gets its own
  standard error (the cluster bootstrap of macro-F1, for instance);
* ``mean`` over per-document values that carry their cluster
  (`opinbench.metrics.clustered.with_cluster`, set by the tasks' ``process_results``)
  gets the CR1 standard error clustered on it (`clustered_mean_stderr`);
* anything else (other benchmarks' tasks in the same run) is left to lm-eval.

An undefined clustered figure (fewer than two clusters) is written "N/A", lm-eval's own
mark, never NaN and never the naive figure. ``--bootstrap_iters 0`` still turns every
standard error off. docs/statistics.md says which unit each task clusters on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from opinbench.metrics import clustered


def _published(fn: Callable[[Sequence[Any]], Any]) -> Callable[[Sequence[Any]], Any]:
    def stderr(items: Sequence[Any]) -> Any:
        value = fn(items)
        return "N/A" if isinstance(value, float) and not math.isfinite(value) else value

    return stderr


def _mean_stderr(naive: Callable[[Sequence[Any]], float]) -> Callable[[Sequence[Any]], Any]:
    def stderr(items: Sequence[Any]) -> Any:
        if clustered.clusters_of(items) is None:
            return naive(items)
        return _published(clustered.clustered_mean_stderr)(items)

    return stderr


def stderr_for(original: Callable[..., Any], lm_mean: Callable[..., Any], lm_mean_stderr: Callable[..., Any]):
    """lm-eval's ``stderr_for_metric`` with opinbench's clustered figures in front (module docstring)."""

    def stderr_for_metric(metric: Callable[..., Any], bootstrap_iters: int):
        if bootstrap_iters <= 0:
            return original(metric, bootstrap_iters)
        own = getattr(metric, "stderr", None)
        if callable(own):
            return _published(own)
        if metric is lm_mean:
            return _mean_stderr(lm_mean_stderr)
        return original(metric, bootstrap_iters)

    stderr_for_metric.opinbench = True  # type: ignore[attr-defined]
    return stderr_for_metric


def install() -> None:
    """Wrap ``lm_eval.evaluator_utils.stderr_for_metric`` once (idempotent)."""
    import lm_eval.evaluator_utils as eu
    from lm_eval.api import metrics as lm_metrics

    if getattr(eu.stderr_for_metric, "opinbench", False):
        return
    eu.stderr_for_metric = stderr_for(eu.stderr_for_metric, lm_metrics.mean, lm_metrics.mean_stderr)
