"""Leaderboard definitions: ``leaderboards/<name>.yaml`` read into a checked `Definition`.

A definition is data: the tasks with the version each must have been run with
(and, on a definition marked ``subset: true``, the fixed document indices,
lm-eval's ``samples``), the metrics (each naming a metric object of `opinbench.scoring`, whose direction and
display name are the defaults) with their group, floor and ceiling, the pinned judges, the lm-eval settings, the headline rule
and the warning thresholds. `load_definition` refuses a file that names an
unknown group, judge, metric or direction (or a direction other than the metric's, a judge
row naming another judge's metric), a floor/ceiling of an unknown kind, a
metric of a task the definition does not run, or ``samples`` on a full
(non-subset) leaderboard, each with the file and the key. A group marked
``headline: false`` (the diagnostics) is shown but never averaged into the
headline; its metrics need no floor and ceiling (they are not normalised). A
metric with ``unsteered: TASK`` is the steering gain: that unsteered task's WD
minus the metric task's, per group, averaged over the groups.

>>> d = load_definition("smoke")
>>> d.subset, [t.name for t in d.tasks]
(True, ['opinionqa_wd', 'wom_cot'])
>>> d.metric("wom_cot").higher_is_better
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opinbench.errors import ConfigError
from opinbench.paths import bundled
from opinbench.scoring import Metric, registry, resolve
from opinbench.scoring.metric import JUDGE

DIRECTIONS = ("higher", "lower")
BOUND_KINDS = ("value", "metric", "baseline")
BASELINES = ("majority", "random")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: Any
    samples: tuple[int, ...] | None = None  # fixed document indices (subset definitions only)
    metadata: dict[str, Any] = field(default_factory=dict)  # lm-eval --metadata for this task
    # How many documents the task scores (stated in the YAML, checked by validation); None: unstated.
    documents: int | None = None
    # A task whose data a worker cannot obtain (e.g. smartvote's candidate answers are not public):
    # not run, its metrics shown as "not evaluated" and left out of the headline.
    optional: bool = False


@dataclass(frozen=True)
class Bound:
    """A floor or ceiling: ``kind`` is ``value`` (a number), ``metric`` (another metric key of the
    same task, e.g. ``wd_uniform``) or ``baseline`` (``majority``/``random`` scored with opinbench)."""

    kind: str
    value: Any


@dataclass(frozen=True)
class MetricSpec:
    id: str
    group: str
    metric: str
    direction: str
    display: str
    floor: Bound | None  # None: not normalised (a metric of a group outside the headline)
    ceiling: Bound | None
    task: str | None = None  # an lm-eval task of the definition ...
    judge: str | None = None  # ... or a judge's result
    filter: str = "none"
    # The worsening `opinbench regress` tolerates before it can flag a regression (None: its default).
    tolerance: float | None = None
    unsteered: str | None = None  # the steering gain: the unsteered task it is measured against

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    @property
    def key(self) -> str:
        """lm-eval's results key: ``<metric>,<filter>``."""
        return f"{self.metric},{self.filter}"


@dataclass(frozen=True)
class Definition:
    name: str
    version: int
    title: str
    subset: bool
    description: str
    tasks: tuple[TaskSpec, ...]
    groups: tuple[tuple[str, str], ...]  # (id, display)
    metrics: tuple[MetricSpec, ...]
    judges: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    headline: dict[str, Any]
    warnings: dict[str, float]
    source: str = ""  # the file it was read from
    off_headline: frozenset[str] = frozenset()  # groups shown but not averaged into the headline
    # `opinbench regress leaderboard:ID`: the fewest shared documents per task (None: regress's default).
    regress_min_questions: int | None = None
    # The reproduction audit of a self-reported entry: documents re-run per task.
    audit_documents: int = 5
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the parsed YAML

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def in_headline(self, m: MetricSpec) -> bool:
        return m.group not in self.off_headline

    def metric(self, id_: str) -> MetricSpec:
        for m in self.metrics:
            if m.id == id_:
                return m
        raise KeyError(id_)

    @property
    def task_names(self) -> list[str]:
        """The tasks a worker runs (optional ones left out)."""
        return [t.name for t in self.tasks if not t.optional]

    @property
    def optional_tasks(self) -> list[str]:
        return [t.name for t in self.tasks if t.optional]

    @property
    def metadata(self) -> dict[str, Any]:
        """lm-eval ``--metadata`` of the run: the tasks' metadata merged (one TaskManager, one dict;
        `parse_definition` refuses tasks whose metadata conflict)."""
        out: dict[str, Any] = {}
        for t in self.tasks:
            out.update(t.metadata)
        return out

    @property
    def samples(self) -> dict[str, list[int]] | None:
        """lm-eval's ``samples`` argument (subset definitions), None for a full leaderboard."""
        out = {t.name: list(t.samples) for t in self.tasks if t.samples is not None and not t.optional}
        return out or None

    @property
    def digest(self) -> str:
        """sha256 of the definition as canonical JSON: what an entry was evaluated against."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()


def leaderboards_dir() -> Path:
    """The folder of the shipped definitions (``leaderboards/``)."""
    return bundled("leaderboards")


def shipped_names() -> list[str]:
    """The names of the shipped definitions (``leaderboards/*.yaml``)."""
    return sorted(f.stem for f in leaderboards_dir().glob("*.yaml"))


def definition_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"{p}: no such file or directory")
        return p
    cand = leaderboards_dir() / f"{name_or_path}.yaml"
    if cand.is_file():
        return cand
    known = shipped_names()
    raise ConfigError(f"unknown leaderboard {name_or_path!r}; known: {', '.join(known)}")


def _need(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] is None:
        raise ConfigError(f"{where}: missing {key!r}")
    return d[key]


def _bound(raw: Any, where: str) -> Bound:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ConfigError(f"{where}: expected one of {{{', '.join(BOUND_KINDS)}: ...}}, got {raw!r}")
    (kind, value), = raw.items()
    if kind not in BOUND_KINDS:
        raise ConfigError(f"{where}: unknown bound kind {kind!r}; choose {', '.join(BOUND_KINDS)}")
    if kind == "value" and not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: value must be a number, got {value!r}")
    if kind == "baseline" and value not in BASELINES:
        raise ConfigError(f"{where}: unknown baseline {value!r}; choose {', '.join(BASELINES)}")
    return Bound(kind, float(value) if kind == "value" else str(value))


def _optional_bound(m: dict[str, Any], key: str, where: str, headline: bool) -> Bound | None:
    """A headline metric's floor or ceiling (required); outside the headline, None unless given."""
    if not headline and m.get(key) is None:
        return None
    return _bound(_need(m, key, where), f"{where}: {key}")


def _tolerance(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        tol = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: tolerance {value!r} is not a number") from None
    if not tol >= 0:
        raise ConfigError(f"{where}: tolerance {value!r} must be >= 0")
    return tol


def _metric_object(m: dict[str, Any], where: str) -> Metric:
    """The metric object a definition's metric row names (`opinbench.scoring`); unknown keys refused."""
    try:
        return resolve(str(_need(m, "metric", where)))[0]
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_source(obj: Metric, task: str | None, judge: str | None, where: str) -> None:
    """A judge row must name its judge's metric; a task row must not name a judge's."""
    if judge is not None and obj.judge != judge:
        names = [m.key for m in registry().values() if m.judge == judge]
        raise ConfigError(f"{where}: judge {judge!r} publishes {', '.join(names) or 'no metric'}, not {obj.key!r}")
    if task is not None and JUDGE in obj.kinds:
        raise ConfigError(f"{where}: {obj.key!r} is a judge's metric; name it with judge:, not task:")


# Over 80 lines on purpose: one pass over the YAML keeps each key's check beside the error message
# naming that key.
def parse_definition(raw: Any, source: str = "<definition>") -> Definition:
    """A `Definition` from the parsed YAML; raises `ConfigError` naming the file and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top")
    name = str(_need(raw, "name", source))
    subset = bool(raw.get("subset", False))
    tasks = []
    for tname, spec in (_need(raw, "tasks", source) or {}).items():
        where = f"{source}: tasks.{tname}"
        spec = spec or {}
        samples = spec.get("samples")
        if samples is not None:
            if not subset:
                raise ConfigError(f"{where}: samples (a document subset) on a leaderboard not marked subset: true")
            if not (isinstance(samples, list) and samples and all(isinstance(i, int) and i >= 0 for i in samples)):
                raise ConfigError(f"{where}: samples must be a non-empty list of document indices")
            samples = tuple(samples)
        documents = spec.get("documents")
        if documents is not None and not (isinstance(documents, int) and documents > 0):
            raise ConfigError(f"{where}: documents must be a positive integer, got {documents!r}")
        if samples is not None and documents is not None and documents != len(samples):
            raise ConfigError(f"{where}: documents {documents} but {len(samples)} samples")
        tasks.append(TaskSpec(tname, _need(spec, "version", where), samples, dict(spec.get("metadata") or {}),
                              documents if documents is not None else (len(samples) if samples else None),
                              bool(spec.get("optional", False))))
    if not tasks:
        raise ConfigError(f"{source}: no tasks")
    merged: dict[str, Any] = {}
    for t in tasks:
        for k, v in t.metadata.items():
            if k in merged and merged[k] != v:
                raise ConfigError(f"{source}: tasks.{t.name}: metadata {k}={v!r} conflicts with {merged[k]!r} of another "
                                  "task (lm-eval runs all tasks with one --metadata)")
            merged[k] = v
    groups = tuple((str(g["id"]), str(g.get("display", g["id"]))) for g in raw.get("groups") or [])
    group_ids = {g for g, _ in groups}
    off_headline = frozenset(str(g["id"]) for g in raw.get("groups") or [] if g.get("headline", True) is False)
    judges = dict(raw.get("judges") or {})
    for jname, j in judges.items():
        for key in ("provider", "model"):
            _need(j or {}, key, f"{source}: judges.{jname}")
        _judge_settings(jname, j, f"{source}: judges.{jname}")
    task_names = {t.name for t in tasks}
    metrics, seen = [], set()
    for i, m in enumerate(_need(raw, "metrics", source)):
        where = f"{source}: metrics[{i}]"
        mid = str(_need(m, "id", where))
        where = f"{source}: metrics.{mid}"
        if mid in seen:
            raise ConfigError(f"{where}: defined twice")
        seen.add(mid)
        obj = _metric_object(m, where)
        direction = m.get("direction", obj.direction)
        if direction not in DIRECTIONS:
            raise ConfigError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if direction != obj.direction:
            raise ConfigError(f"{where}: direction {direction!r}, but {obj.key} is {obj.direction} is better")
        if _need(m, "group", where) not in group_ids:
            raise ConfigError(f"{where}: unknown group {m['group']!r}; groups: {', '.join(sorted(group_ids))}")
        task, judge = m.get("task"), m.get("judge")
        if (task is None) == (judge is None):
            raise ConfigError(f"{where}: name exactly one of task or judge")
        for t in (task, m.get("unsteered")):
            if t is not None and t not in task_names:
                raise ConfigError(f"{where}: task {t!r} is not among the definition's tasks")
        if m.get("unsteered") is not None and task is None:
            raise ConfigError(f"{where}: unsteered needs the steered task under task")
        headline = m["group"] not in off_headline
        if judge is not None and judge not in judges:
            raise ConfigError(f"{where}: judge {judge!r} is not pinned under judges")
        _check_source(obj, task, judge, where)
        metrics.append(MetricSpec(
            id=mid, group=m["group"], metric=str(m["metric"]), direction=direction,  # breakdown part kept
            display=str(m.get("display", obj.display)), floor=_optional_bound(m, "floor", where, headline),
            ceiling=_optional_bound(m, "ceiling", where, headline), task=task, judge=judge,
            filter=str(m.get("filter", "none")), tolerance=_tolerance(m.get("tolerance"), where),
            unsteered=None if m.get("unsteered") is None else str(m["unsteered"]),
        ))
    return Definition(
        name=name, version=int(_need(raw, "version", source)), title=str(raw.get("title", name)), subset=subset,
        description=str(raw.get("description", "")).strip(), tasks=tuple(tasks), groups=groups,
        metrics=tuple(metrics), judges=judges, settings=dict(raw.get("settings") or {}),
        headline=dict(raw.get("headline") or {"aggregate": "mean_normalised", "ci_z": 1.96}),
        warnings={k: float(v) for k, v in (raw.get("warnings") or {}).items()}, source=source, raw=raw,
        off_headline=off_headline,
        regress_min_questions=_min_docs((raw.get("regress") or {}).get("min_questions"), f"{source}: regress.min_questions"),
        audit_documents=_min_docs((raw.get("audit") or {}).get("documents"), f"{source}: audit.documents") or 5,
    )


def _judge_settings(name: str, judge: dict[str, Any], where: str) -> None:
    """A pinned judge's ``settings:`` read as its options dataclass (`opinbench.judging.options`),
    so that an unknown judge, key or value is refused when the definition loads, not at judging."""
    from opinbench.judging.registry import JUDGES

    if name not in JUDGES:
        raise ConfigError(f"{where}: no judge named {name!r} (known: {', '.join(JUDGES)})")
    settings = judge.get("settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: settings must be a mapping")
    JUDGES[name].options.from_mapping({**settings, "samples": ["-"]}, where=f"{where}.settings")


def _min_docs(value: Any, where: str) -> int | None:
    if value is not None and not (isinstance(value, int) and value > 0):
        raise ConfigError(f"{where}: must be a positive integer, got {value!r}")
    return value


def load_definition(name_or_path: str | Path) -> Definition:
    """The definition ``leaderboards/<name>.yaml`` (or a YAML file path), checked."""
    path = definition_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not YAML: {err}") from None
    return parse_definition(raw, str(path))
