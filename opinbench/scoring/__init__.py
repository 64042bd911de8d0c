"""Metric objects and the re-scoring of logged samples: the one definition every consumer reads.

* `metric`: `Metric` (key, display name, direction, aggregation and standard error, default
  regression tolerance, paired test) and the registry (`resolve`, `registry`, `of_kind`);
* catalogs, one per family of tasks, each registering its metrics: `distribution`
  (``*_wd``, with the per-document `View` and `distribution.doc_values`), `answer`
  (``*_cot``, ``*_direct``), `sampled` (``*_wd_sampled``, ``opinionqa_wd_default``), `judge`;
* `kinds`: task kinds, recognised from a logged document, each knowing how to re-score one
  logged row and what its sampling unit is;
* `rescore`: a task's logged rows re-scored (`rescore_rows`) and aggregated (`RescoredTask`).

Layer: above `opinbench.metrics` (pure functions) and `opinbench.runs`; read by the harness
hooks, ``regress``, the leaderboard, ``compare`` and ``report``. No lm-eval import.
"""

from opinbench.scoring.metric import Estimate, Metric, metric, of_kind, register, registry, resolve, unregister

__all__ = ["Estimate", "Metric", "metric", "of_kind", "register", "registry", "resolve", "unregister"]
