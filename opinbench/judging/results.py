"""Judge scores in lm-eval's results schema, and per-item verdict files.

Written beside the lm-eval run that produced the samples::

    <run dir>/results_judge-faithfulness_<timestamp>.json
    <run dir>/judge-faithfulness_verdicts_<timestamp>.jsonl

The results file has lm-eval's shape (``results: {task: {"metric,none": x,
"metric_stderr,none": se}}``, ``groups``, ``versions``, ``n-samples``,
``higher_is_better``, ``config``, ``date``), so every tool that reads lm-eval
results reads judge metrics the same way. Judge settings (provider, model,
template hash, temperature, ...) are under ``config["judge"]``; what the
metrics cannot hold (confusion matrices, counts, the flagged items) is under
``judge_details``. The verdict file's name deliberately does not start with
``samples_``, which lm-eval's tools treat as their own per-sample logs.

Standard errors are clustered on the document: with ``repeats``, the
generations of one document are not independent. With one generation per
document the formula reduces to lm-eval's own ``mean`` stderr (sample standard
deviation over sqrt(n)). Confidence intervals are Wilson 95 % intervals on the
effective sample size (n over the design effect of the clustering).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opinbench.errors import DataError
from opinbench.io import finite_json, write_json, write_jsonl
from opinbench.runs import Run, results_files

Z95 = 1.959963984540054
NA = "N/A"  # what lm-eval writes for a stderr it cannot compute


@dataclass(frozen=True)
class Share:
    """A proportion with its clustered standard error and a 95 % interval."""

    value: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    clusters: int

    def metrics(self, name: str, *, ci: bool = True) -> dict[str, Any]:
        """``{"name,none": x, "name_stderr,none": se, ...}`` (``N/A`` where undefined)."""

        def v(x: float | None) -> Any:
            return NA if x is None else x

        out = {f"{name},none": v(self.value), f"{name}_stderr,none": v(self.stderr)}
        if ci:
            out[f"{name}_ci_low,none"] = v(self.ci_low)
            out[f"{name}_ci_high,none"] = v(self.ci_high)
        return out


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` trials.

    >>> [round(x, 3) for x in wilson(0.5, 100)]
    [0.404, 0.596]
    """
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def share(values: Sequence[bool], clusters: Sequence[Hashable] | None = None) -> Share:
    """Mean of booleans with a cluster-robust standard error.

    ``se^2 = C/(C-1) * sum_c (sum_{i in c} (x_i - p))^2 / n^2`` over C clusters;
    with every item its own cluster this is ``s^2 / n`` (s the sample standard
    deviation), lm-eval's stderr of a mean.

    >>> s = share([True, False, True, True])
    >>> s.value, round(s.stderr, 4)
    (0.75, 0.25)
    """
    n = len(values)
    if n == 0:
        return Share(None, None, None, None, 0, 0)
    clusters = list(range(n)) if clusters is None else list(clusters)
    p = sum(values) / n
    resid: dict[Hashable, float] = defaultdict(float)
    for x, c in zip(values, clusters, strict=True):
        resid[c] += float(x) - p
    c = len(resid)
    if c < 2:
        return Share(p, None, *wilson(p, n), n, c)
    var = c / (c - 1) * sum(r * r for r in resid.values()) / (n * n)
    se = math.sqrt(var)
    # Effective sample size = n / design effect, the design effect being the
    # clustered variance over the same formula with every item its own cluster,
    # p(1-p)/(n-1): without repeats n_eff == n and the interval is plain Wilson.
    var_iid = p * (1 - p) / (n - 1)
    n_eff = n * var_iid / var if var > 0 and var_iid > 0 else n
    lo, hi = wilson(p, min(n_eff, n))
    return Share(p, se, lo, hi, n, c)


def timestamp() -> str:
    """lm-eval's file timestamp: ``datetime.now().isoformat()`` with ``:`` -> ``-``."""
    return datetime.now().isoformat().replace(":", "-")


def run_config(run_dir: Path) -> dict[str, Any]:
    """Model settings of the lm-eval run in ``run_dir`` (its newest ``results_*.json``).

    Copied into the judge results so that a leaderboard can tell which model a
    judge score belongs to. Judge results files are not lm-eval's and are skipped.
    """
    run = Run(run_dir, {}, results_files(run_dir))
    if run.results_file is None:
        return {}
    try:
        data = run.results
    except DataError:  # an unreadable results file leaves the judge results without model settings
        return {}
    out: dict[str, Any] = {"lm_eval_results": run.results_file.name}
    cfg = data.get("config") if isinstance(data.get("config"), dict) else {}
    for k in ("model", "model_args", "batch_size", "limit", "gen_kwargs", "random_seed"):
        if k in cfg:
            out[k] = cfg[k]
    for k in ("model_name", "model_name_sanitized", "model_source", "model_revision"):
        if k in data:
            out[k] = data[k]
    return out


def write_results(
    run_dir: Path,
    kind: str,
    *,
    results: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]] | None = None,
    group_subtasks: dict[str, list[str]] | None = None,
    versions: dict[str, Any],
    n_samples: dict[str, dict[str, int]],
    higher_is_better: dict[str, dict[str, bool]],
    configs: dict[str, Any],
    judge_config: dict[str, Any],
    details: dict[str, Any],
    verdicts: Iterable[dict[str, Any]],
    date_id: str | None = None,
) -> tuple[Path, Path]:
    """Write ``results_<kind>_<ts>.json`` and ``<kind>_verdicts_<ts>.jsonl`` into ``run_dir``.

    Returns:
        (results path, verdicts path).
    """
    from opinbench import __version__

    date_id = date_id or timestamp()
    run = run_config(run_dir)
    doc: dict[str, Any] = {
        "results": results,
        "groups": groups or {},
        "group_subtasks": group_subtasks or {},
        "configs": configs,
        "versions": versions,
        "n-shot": {},
        "higher_is_better": higher_is_better,
        "n-samples": n_samples,
        "config": {
            **{k: v for k, v in run.items() if k != "lm_eval_results"},
            "judge": judge_config,
        },
        "judge_details": details,
        "judged_run": run.get("lm_eval_results"),
        "date": time.time(),
        "opinbench_version": __version__,
    }
    for k in ("model_name", "model_name_sanitized"):
        if k in run:
            doc[k] = run[k]
    try:
        from importlib.metadata import version

        doc["lm_eval_version"] = version("lm_eval")
    except Exception:  # noqa: BLE001 (informational only)
        pass
    results_path = run_dir / f"results_{kind}_{date_id}.json"
    verdicts_path = run_dir / f"{kind}_verdicts_{date_id}.jsonl"
    # Strict JSON, chosen per field: a metric is never NaN (undefined ones are already
    # lm-eval's "N/A"), so a NaN there is a bug and stops the write before any file is
    # touched; anything else (settings copied from the lm-eval run, API scores in the
    # verdicts) becomes null, listed under "non_finite" with what it was.
    finite_json(results, "error", what=f"{kind} metrics")
    finite_json(groups or {}, "error", what=f"{kind} group metrics")
    write_jsonl(verdicts_path, verdicts, non_finite="null")
    write_json(results_path, doc, non_finite="null")
    return results_path, verdicts_path
