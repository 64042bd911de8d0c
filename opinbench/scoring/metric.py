"""A metric is an object: the one definition every consumer reads.

A `Metric` names what lm-eval publishes under its key (``wd``, ``macro_f1``, ...): its
display name, its direction, the task kinds that publish it, how its per-document values
become the published number (``aggregation``: exactly what the task YAML names), its
standard error, the worsening ``opinbench regress`` tolerates by default and the paired
test it runs. The task YAMLs (checked against it by a test), ``regress``, leaderboard
definitions and validation, the site, ``compare`` and ``report`` read these objects
instead of matching strings.

Keys with a ``|`` are breakdowns of the metric before it (``wd|POLIDEOLOGY`` and
``wd|POLIDEOLOGY=Liberal``, ``recall|Yes``, ``macro_f1_individual|Left``): `resolve`
maps them to their metric. Every ``X_stderr`` lm-eval publishes is the standard error the
object names (``stderr``), clustered on the sampling unit (`opinbench.harness.stderr`,
docs/statistics.md); no task publishes a separate ``X_stderr`` metric.

Adding a metric = its object in one of the catalog modules of this package (with its
per-document function where the task kind computes values from a `view`) + its line in
the task YAML (`yaml_entry` gives it).

>>> from opinbench.scoring import resolve
>>> m, part = resolve("wd|POLIDEOLOGY=Liberal")
>>> m.key, m.higher_is_better, part
('wd', False, 'POLIDEOLOGY=Liberal')
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opinbench.errors import ConfigError

# Task kinds (`opinbench.scoring.kinds` says how each is recognised and re-scored).
DISTRIBUTION = "distribution"  # *_wd: first-token distribution vs a group's distribution
SAMPLED = "sampled"  # *_wd_sampled: the distribution estimated from sampled answers
DEFAULT_MODEL = "default_model"  # opinionqa_wd_default: one unsteered question vs every group
ANSWER = "answer"  # *_cot, *_direct: one gold answer per document
JUDGE = "judge"  # opinbench judge: per-item verdicts of a judge
DERIVED = "derived"  # a leaderboard score from several tasks' samples, which no task publishes (the steering gain)

# The paired tests `opinbench regress` knows (`opinbench.regress.check` runs them); each is
# clustered by question: documents of one question are one piece of evidence.
SIGN_FLIP = "sign-flip over questions"
BOOTSTRAP_MACRO_F1 = "paired bootstrap over questions"

# Standard-error kinds: what `Metric.stderr` computes from per-document values and clusters.
STDERR_MEAN = "mean"  # lm-eval's mean_stderr: std(ddof=1) / sqrt(n); documents as independent (not used)
STDERR_CLUSTERED = "clustered"  # CR1 clustered on the sampling unit (`opinbench.metrics.clustered`)


@dataclass(frozen=True)
class Estimate:
    """A published number with its standard error (None where none is defined) and its counts."""

    value: float
    stderr: float | None
    n: int
    n_clusters: int


@dataclass(frozen=True)
class Metric:
    """One metric key (see the module docstring).

    Attributes:
        key: lm-eval's metric name (``<key>,<filter>`` in the results).
        display: the name people read (tables, the site, reports).
        higher_is_better: the direction, as the task YAML's ``higher_is_better``.
        kinds: the task kinds that publish it.
        aggregation: what the task YAML names: ``"mean"`` or a dotted path to a function of the
            list of per-document values (``opinbench.metrics.answer_tasks.macro_f1``).
        stderr: how its standard error is computed from per-document values: `STDERR_CLUSTERED`
            (CR1 on the sampling unit; two-way for (question, individual) units), a dotted path to
            a function of the per-document values carrying their clusters (a cluster bootstrap,
            `opinbench.metrics.clustered.with_cluster`), `STDERR_MEAN`, or None.
        per_doc: for kinds scored from a view (`opinbench.scoring.distribution`), the function
            of the view that gives the document's value (None: no value for that document).
        tolerance: the worsening ``opinbench regress`` tolerates by default (None: not tested).
        test: the paired test ``regress`` runs on it (one of the constants above), or None.
        breakdown: whether ``key|PART`` keys exist (per attribute, group, label or stratum).
        judge: for a judge metric, the judge kind whose verdicts it reads.
        description: one sentence for the docs.
    """

    key: str
    display: str
    higher_is_better: bool
    kinds: tuple[str, ...]
    aggregation: str = "mean"
    stderr: str | None = STDERR_CLUSTERED
    per_doc: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    tolerance: float | None = None
    test: str | None = None
    breakdown: bool = False
    judge: str | None = None
    description: str = ""

    @property
    def direction(self) -> str:
        """``higher`` or ``lower``: how leaderboard definitions spell the direction."""
        return "higher" if self.higher_is_better else "lower"

    def yaml_entry(self) -> dict[str, Any]:
        """The task YAML's ``metric_list`` entry of this metric (``!function`` for a dotted path)."""
        agg = self.aggregation if self.aggregation == "mean" else f"!function {self.aggregation}"
        return {"metric": self.key, "aggregation": agg, "higher_is_better": self.higher_is_better}

    def aggregate(self, values: Sequence[Any]) -> float:
        """The published number from the per-document values (the YAML's aggregation)."""
        if self.aggregation == "mean":
            x = np.asarray(values, dtype=np.float64)
            return float(x.mean()) if x.size else float("nan")
        return _function(self.aggregation)(list(values))

    def standard_error(self, values: Sequence[Any], clusters: Sequence[object]) -> float | None:
        """Its standard error from the per-document values and each document's sampling unit."""
        if self.stderr is None:
            return None
        if self.stderr == STDERR_MEAN:
            x = np.asarray(values, dtype=np.float64)
            return float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
        from opinbench.metrics import clustered

        tagged = [clustered.with_cluster(v, c) for v, c in zip(values, clusters)]
        if self.stderr == STDERR_CLUSTERED:
            se = clustered.clustered_mean_stderr(tagged)
        else:
            se = _function(self.stderr)(tagged)
        return float(se) if isinstance(se, (int, float)) and math.isfinite(se) else None

    def estimate(self, values: Sequence[Any], clusters: Sequence[object]) -> Estimate:
        """`aggregate` and `standard_error` together, with the counts."""
        from opinbench.metrics.clustered import n_clusters

        return Estimate(self.aggregate(values), self.standard_error(values, clusters), len(values),
                        n_clusters(list(clusters)))


def _function(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, Metric] = {}


def register(*metrics: Metric) -> None:
    """Add metrics to the registry.

    Raises:
        ConfigError: a key registered twice with another definition.
    """
    for m in metrics:
        old = _REGISTRY.get(m.key)
        if old is not None and old != m:
            raise ConfigError(f"metric {m.key!r} is defined twice, differently")
        _REGISTRY[m.key] = m


def unregister(key: str) -> None:
    """Remove a metric (tests registering a toy metric clean up with it)."""
    _REGISTRY.pop(key, None)


def registry() -> dict[str, Metric]:
    """Every registered metric by key (a copy), catalogs loaded."""
    _load_catalogs()
    return dict(_REGISTRY)


def of_kind(kind: str) -> list[Metric]:
    """The metrics a task kind publishes, in registration order."""
    _load_catalogs()
    return [m for m in _REGISTRY.values() if kind in m.kinds]


def resolve(key: str) -> tuple[Metric, str | None]:
    """``(metric, breakdown part)`` of a published key: ``wd|SEX=Male`` -> (wd, ``SEX=Male``).

    Raises:
        ConfigError: no such metric, or a breakdown of a metric that has none.
    """
    _load_catalogs()
    base, sep, part = key.partition("|")
    m = _REGISTRY.get(base)
    if m is None:
        raise ConfigError(f"unknown metric {key!r}; known: {', '.join(sorted(_REGISTRY))}")
    if sep and not m.breakdown:
        raise ConfigError(f"metric {base!r} has no breakdown, so {key!r} is not a metric")
    return m, (part if sep else None)


def metric(key: str) -> Metric:
    """The metric of a key (breakdowns resolve to their metric); `resolve` raises for unknown keys."""
    return resolve(key)[0]


_LOADED = False


def _load_catalogs() -> None:
    """Import the catalog modules once: each registers its metrics on import."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from opinbench.scoring import answer, distribution, judge, sampled  # noqa: F401
