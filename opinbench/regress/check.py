"""Pairing two sides of a regression check, refusing incomparable ones, and the verdicts.

`check_comparable` raises `ConfigError` (the CLI's exit 2), naming the difference, when
the sides share no task, or a shared task has a different lm-eval version, different
data for a shared document (target or document content), different prompts (unless
``allow_prompt_change``: a template change measured on purpose), a different
``task_hashes`` entry over the same documents, or fewer than ``min_docs`` shared
documents.

`regress` then tests, per shared task, over the shared documents:

====================== ============ ================================================= ======
metric                 kind         test                                              better
====================== ============ ================================================= ======
``wd``                 distribution sign-flip permutation over questions (mean diff)  lower
``kl``                 distribution sign-flip permutation over questions (mean diff)  lower
``acc``                answer       exact McNemar on per-document correctness         higher
``macro_f1``           answer       paired bootstrap over questions                   higher
``cot_faithfulness``   judge        exact McNemar on per-item verdicts (faithful)     higher
``cot_offensive_rate`` judge        exact McNemar on per-item verdicts (flagged)      lower
====================== ============ ================================================= ======

Judge rows (`opinbench.regress.judge_values`) pair the items (document, repeat) both
sides' judges judged, on a task's shared documents; a judge kind on one side only
is left out with a note, and judges whose settings differ (provider, model, prompt
mode, prompt, overrides) are refused like incomparable tasks (`check_judges`).

It Holm-corrects the p-values across every (task, metric) tested. A row is a
**regression** when the candidate is worse by more than the metric's tolerance
*and* its Holm-adjusted p < ``alpha``; an **improvement** likewise in the other
direction; otherwise ``ok``. The report's ``exit_code`` is 1 when any row is a
regression, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from opinbench.errors import ConfigError
from opinbench.metrics.answer_tasks import self_consistency
from opinbench.metrics.significance import mcnemar_exact
from opinbench.regress import stats
from opinbench.regress.judge_values import settings_difference
from opinbench.regress.values import DISTRIBUTION, RunValues, TaskValues
from opinbench.scoring import registry

# The metrics regress tests: the objects with a paired test (`opinbench.scoring`) -> (task kind,
# lower is better); their default tolerances (absolute, in the metric's units) are the objects'.
# A leaderboard definition may supply its own: pass them as `tolerances`.
_TESTED = [m for m in registry().values() if m.test is not None and m.tolerance is not None]
METRICS: dict[str, tuple[str, bool]] = {m.key: (m.kinds[0], not m.higher_is_better) for m in _TESTED}
DEFAULT_TOLERANCES: dict[str, float] = {m.key: float(m.tolerance) for m in _TESTED}  # type: ignore[arg-type]
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_DOCS = 20

REGRESSION, IMPROVEMENT, OK = "regression", "improvement", "ok"


@dataclass(frozen=True)
class MetricResult:
    """One (task, metric) row of the report. ``delta`` = candidate - baseline."""

    task: str
    metric: str
    test: str
    n_docs: int
    n_questions: int
    baseline: float
    candidate: float
    delta: float
    lower_is_better: bool
    tolerance: float
    pvalue: float
    pvalue_holm: float
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def parse_tolerances(items: list[str] | None, base: Mapping[str, float] | None = None) -> dict[str, float]:
    """``["wd=0.005", "acc=0.02,kl=0.1"]`` over ``base`` (default `DEFAULT_TOLERANCES`).

    Raises:
        ConfigError: not METRIC=NUMBER, an unknown metric or a negative tolerance.
    """
    out = dict(DEFAULT_TOLERANCES if base is None else base)
    for item in items or []:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in METRICS:
                raise ConfigError(f"--tolerance {part!r}: expected METRIC=NUMBER with METRIC one of {', '.join(METRICS)}")
            try:
                tol = float(value)
            except ValueError:
                raise ConfigError(f"--tolerance {part!r}: {value!r} is not a number") from None
            if not tol >= 0:
                raise ConfigError(f"--tolerance {part!r}: must be >= 0")
            out[name.strip()] = tol
    return out


# --------------------------------------------------------------------------- comparability


def _shared_docs(task: str, base: TaskValues, cand: TaskValues, allow_prompt_change: bool) -> list[str]:
    if base.kind != cand.kind:
        raise ConfigError(f"task {task}: a {base.kind} task in the baseline but a {cand.kind} task in the candidate")
    if base.version != cand.version:
        raise ConfigError(
            f"task {task}: task version {base.version!r} in the baseline but {cand.version!r} in the candidate; "
            "scores of different task versions are not comparable (re-record the baseline)"
        )
    shared = sorted(set(base.docs) & set(cand.docs))
    checks = [("target_hash", "gold answer (target)"), ("data_hash", "document data")]
    if not allow_prompt_change:
        checks.insert(0, ("prompt_hash", "prompt"))
    for key, what in checks:
        differ = [k for k in shared if base.docs[k].get(key) != cand.docs[k].get(key)]
        if differ:
            hint = (
                "; the template, steering or chat template changed: re-record the baseline, or pass "
                "--allow-prompt-change to measure the change"
                if key == "prompt_hash"
                else "; the runs used different data or task settings"
            )
            raise ConfigError(
                f"task {task}: the {what} differs for {len(differ)} of {len(shared)} shared documents "
                f"(first: {differ[0]}: {base.docs[differ[0]].get(key)} vs {cand.docs[differ[0]].get(key)}){hint}"
            )
    same_docs = set(base.docs) == set(cand.docs)
    if (
        same_docs
        and not allow_prompt_change
        and base.task_hash
        and cand.task_hash
        and base.task_hash != cand.task_hash
    ):
        raise ConfigError(
            f"task {task}: lm-eval's dataset hash (task_hashes) differs: {base.task_hash[:16]} vs "
            f"{cand.task_hash[:16]} over the same documents"
        )
    return shared


def check_comparable(
    base: RunValues, cand: RunValues, *, min_docs: int = DEFAULT_MIN_DOCS, allow_prompt_change: bool = False,
    tasks: list[str] | None = None,
) -> dict[str, list[str]]:
    """``{task: shared document ids}``; see the module docstring for what is refused.

    Raises:
        ConfigError: naming the first difference found.
    """
    names = sorted(set(base.tasks) & set(cand.tasks))
    if tasks:
        missing = [t for t in tasks if t not in names]
        if missing:
            raise ConfigError(
                f"task(s) {', '.join(missing)} not in both sides; baseline has {', '.join(sorted(base.tasks))}, "
                f"candidate has {', '.join(sorted(cand.tasks))}"
            )
        names = list(tasks)
    if not names:
        raise ConfigError(
            f"the sides share no task: baseline has {', '.join(sorted(base.tasks))}, "
            f"candidate has {', '.join(sorted(cand.tasks))}"
        )
    out = {}
    for t in names:
        shared = _shared_docs(t, base.tasks[t], cand.tasks[t], allow_prompt_change)
        if len(shared) < min_docs:
            raise ConfigError(
                f"task {t}: only {len(shared)} shared documents (baseline {len(base.tasks[t].docs)}, "
                f"candidate {len(cand.tasks[t].docs)}), fewer than --min-docs {min_docs}"
            )
        out[t] = shared
    return out


def check_judges(base: RunValues, cand: RunValues) -> list[str]:
    """The judge kinds both sides hold, sorted.

    Raises:
        ConfigError: a judge kind's settings differ between the sides, naming the setting.
    """
    kinds = sorted(set(base.judges) & set(cand.judges))
    for kind in kinds:
        diff = settings_difference(base.judges[kind].settings, cand.judges[kind].settings)
        if diff:
            raise ConfigError(
                f"judge {kind}: {diff}; verdicts of different judges are not comparable "
                "(judge both sides with the same settings, or re-record the baseline)"
            )
    return kinds


# --------------------------------------------------------------------------- tests


def _distribution_rows(task: str, base: TaskValues, cand: TaskValues, keys: list[str], seed: int, n_resamples: int):
    questions = [base.docs[k]["question"] for k in keys]
    for metric in ("wd", "kl"):
        a = np.array([base.docs[k][metric] for k in keys], dtype=np.float64)
        b = np.array([cand.docs[k][metric] for k in keys], dtype=np.float64)
        p = stats.sign_flip_pvalue(b - a, questions, n_resamples=n_resamples, seed=seed)
        yield metric, "sign-flip over questions", float(a.mean()), float(b.mean()), p


def _answer_rows(task: str, base: TaskValues, cand: TaskValues, keys: list[str], seed: int, n_boot: int):
    def correct(d: dict[str, Any]) -> int:
        pred = self_consistency(d["pred"]) if len(d["pred"]) > 1 else d["pred"][0]
        return int(pred is not None and pred == d["gold"])

    mc = mcnemar_exact([correct(base.docs[k]) for k in keys], [correct(cand.docs[k]) for k in keys])
    yield "acc", "exact McNemar", mc.acc_a, mc.acc_b, mc.pvalue
    labels = base.docs[keys[0]]["labels"]
    if any(base.docs[k]["labels"] != labels or cand.docs[k]["labels"] != labels for k in keys):
        return  # macro-F1 needs one label set (opinbench's tasks have one)
    cells_a = stats.macro_f1_codes([base.docs[k]["gold"] for k in keys], [base.docs[k]["pred"] for k in keys], labels)
    cells_b = stats.macro_f1_codes([cand.docs[k]["gold"] for k in keys], [cand.docs[k]["pred"] for k in keys], labels)
    f_a, f_b, p = stats.bootstrap_macro_f1_pvalue(
        cells_a, cells_b, len(labels), [base.docs[k]["question"] for k in keys], n_boot=n_boot, seed=seed
    )
    yield "macro_f1", "paired bootstrap over questions", f_a, f_b, p


def _judge_rows(kind: str, base: RunValues, cand: RunValues, shared: dict[str, list[str]], notes: list[str]):
    """(task, metric, test, n items, n questions, baseline, candidate, p) per task both judges judged."""
    jb, jc = base.judges[kind], cand.judges[kind]
    for task, keys in shared.items():
        ib, ic = jb.items.get(task), jc.items.get(task)
        if not ib or not ic:
            if ib or ic:
                notes.append(f"{task}: judge {kind} verdicts only in the {'baseline' if ib else 'candidate'}, not tested")
            continue
        pairs = [(k, r) for k in keys if k in ib and k in ic for r in sorted(ib[k]) if r in ic[k]]
        if not pairs:
            notes.append(f"{task}: no item judged by judge {kind} on both sides, not tested")
            continue
        mc = mcnemar_exact([ib[k][r] for k, r in pairs], [ic[k][r] for k, r in pairs])
        n_q = len({base.tasks[task].docs[k]["question"] for k, _ in pairs})
        unpaired = sum(map(len, ib.values())) + sum(map(len, ic.values())) - 2 * len(pairs)
        if unpaired:
            notes.append(f"{task}: {unpaired} items judged by judge {kind} on one side only, left out")
        yield task, jb.metric, "exact McNemar over judged items", len(pairs), n_q, mc.acc_a, mc.acc_b, mc.pvalue


def verdict(delta: float, lower_is_better: bool, tolerance: float, p_holm: float, alpha: float) -> str:
    worse = delta if lower_is_better else -delta
    if math.isnan(p_holm) or p_holm >= alpha:
        return OK
    if worse > tolerance:
        return REGRESSION
    if -worse > tolerance:
        return IMPROVEMENT
    return OK


def regress(
    base: RunValues,
    cand: RunValues,
    *,
    tolerances: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_docs: int = DEFAULT_MIN_DOCS,
    allow_prompt_change: bool = False,
    tasks: list[str] | None = None,
    seed: int = 0,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    n_boot: int = stats.DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """Compare candidate with baseline; a JSON-able report with ``rows``, ``exit_code`` and notes.

    Raises:
        ConfigError: the sides cannot be compared (`check_comparable`).
    """
    tol = dict(DEFAULT_TOLERANCES if tolerances is None else tolerances)
    shared = check_comparable(base, cand, min_docs=min_docs, allow_prompt_change=allow_prompt_change, tasks=tasks)
    judges = check_judges(base, cand)
    raw = []
    notes = []
    for task, keys in shared.items():
        b, c = base.tasks[task], cand.tasks[task]
        n_q = len({b.docs[k]["question"] for k in keys})
        gen = (
            _distribution_rows(task, b, c, keys, seed, n_resamples)
            if b.kind == DISTRIBUTION
            else _answer_rows(task, b, c, keys, seed, n_boot)
        )
        for metric, test, va, vb, p in gen:
            raw.append((task, metric, test, len(keys), n_q, va, vb, p))
        only_b, only_c = len(b.docs) - len(keys), len(c.docs) - len(keys)
        if only_b or only_c:
            notes.append(f"{task}: {only_b} documents only in the baseline, {only_c} only in the candidate, left out")
        if allow_prompt_change:
            moved = sum(b.docs[k].get("prompt_hash") != c.docs[k].get("prompt_hash") for k in keys)
            if moved:
                notes.append(f"{task}: prompts differ for {moved} of {len(keys)} documents (--allow-prompt-change)")
    for kind in judges:
        raw.extend(_judge_rows(kind, base, cand, shared, notes))
    for kind in sorted(set(base.judges) ^ set(cand.judges)):
        notes.append(f"judge {kind}: verdicts only in the {'baseline' if kind in base.judges else 'candidate'}, not tested")
    adjusted = stats.holm([r[-1] for r in raw])
    rows = []
    for (task, metric, test, n, n_q, va, vb, p), ph in zip(raw, adjusted):
        lower = METRICS[metric][1]
        t = float(tol.get(metric, 0.0))
        rows.append(MetricResult(task, metric, test, n, n_q, va, vb, vb - va, lower, t, p, ph, verdict(vb - va, lower, t, ph, alpha)))
    regressions = [r for r in rows if r.verdict == REGRESSION]
    return {
        "baseline": base.source,
        "candidate": cand.source,
        "alpha": alpha,
        "correction": f"Holm over {sum(not math.isnan(p) for p in adjusted)} tests",
        "rows": [r.to_json() for r in rows],
        "regressions": [f"{r.task}/{r.metric}" for r in regressions],
        "improvements": [f"{r.task}/{r.metric}" for r in rows if r.verdict == IMPROVEMENT],
        "notes": notes,
        "exit_code": 1 if regressions else 0,
    }
