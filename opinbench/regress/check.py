"""Pairing two sides of a regression check, refusing incomparable ones, and the verdicts.

`check_comparable` raises `ConfigError` (the CLI's exit 2), naming the difference, when
the sides share no task, a baseline task is missing on the candidate's side (its samples
file missing or empty; ``allow_missing_tasks`` accepts it with a note), a shared task has
a different lm-eval version, different data for a shared document (target or document
content), different prompts (unless ``allow_prompt_change``: a template change measured
on purpose), a different ``task_hashes`` entry over the same documents, or fewer than
``min_questions`` shared questions (the sampled unit; documents of one question are not
independent, docs/statistics.md).

`regress` then tests, per shared task, over the shared documents; every test is paired
and clustered by question (a VK situation), the unit that was sampled:

====================== ============ ================================================= ======
metric                 kind         test                                              better
====================== ============ ================================================= ======
``wd``                 distribution sign-flip over questions of the paired differences lower
``kl``                 distribution sign-flip over questions of the paired differences lower
``nonfinite``          distribution the same, on documents with non-finite loglikelihoods lower
``acc``                answer       sign-flip over questions of correctness differences higher
``macro_f1``           answer       paired bootstrap over questions                   higher
``cot_faithfulness``   judge        sign-flip over questions of verdict differences   higher
``cot_offensive_rate`` judge        sign-flip over questions of verdict differences   lower
====================== ============ ================================================= ======

(``nonfinite``, the tasks' own metric: documents whose letter loglikelihoods were NaN or
infinite are left out of WD and KL and counted; the row appears when either side has one.)
For the individual-level stance tasks (two-way units in docs/statistics.md) the paired
differences are clustered by question: the individual is the same on both sides.

Judge rows (`opinbench.regress.judge_values`) pair the items (document, repeat) both
sides' judges judged, on a task's shared documents; a judge kind on one side only
is left out with a note, and judges whose settings differ (provider, model, prompt
mode, prompt, overrides) are refused like incomparable tasks (`check_judges`).

It Holm-corrects the p-values across every (task, metric) tested. A row is a
**regression** when the candidate is worse by more than the metric's tolerance
*and* its Holm-adjusted p < ``alpha``; an **improvement** likewise in the other
direction; otherwise ``ok``.

**Power.** Each row carries its minimum detectable effect (`mde`): the smallest true
change the test finds with probability `POWER` at the level of Holm's first step
(alpha / tests), ``(z_{1-a/2} + z_power) x`` the clustered standard error of the paired
difference, and infinite when the questions are too few for any sign pattern to reach
that level (2 questions: p >= 0.5 whatever happens). A row whose MDE exceeds its
tolerance and an ``ok`` verdict is **underpowered**: ``ok`` there does not mean "no regression", so when
nothing regressed the report's ``exit_code`` is 2 and ``underpowered`` names each such
row with the questions it would need (about Q x (MDE / tolerance)^2);
``allow_underpowered`` accepts it. Otherwise ``exit_code`` is 1 when any row is a
regression, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from opinbench.errors import ConfigError
from opinbench import scoring
from opinbench.metrics import clustered
from opinbench.metrics.answer_tasks import self_consistency
from opinbench.regress import stats
from opinbench.regress.judge_values import settings_difference
from opinbench.regress.values import DISTRIBUTION, RunValues, TaskValues
from opinbench.scoring import Metric

JUDGE = "judge"

# The metrics regress tests and how, read from their objects (`opinbench.scoring`): every
# metric with a paired ``test``; its task kind, direction and default tolerance (absolute, in
# the metric's units: worsening never flagged). A leaderboard definition may supply its own
# tolerances: pass them as `tolerances`.
TESTED: dict[str, Metric] = {m.key: m for m in scoring.registry().values() if m.test is not None}
# metric -> (task kind, lower is better)
METRICS: dict[str, tuple[str, bool]] = {k: (m.kinds[0], not m.higher_is_better) for k, m in TESTED.items()}
DEFAULT_TOLERANCES: dict[str, float] = {k: float(m.tolerance or 0.0) for k, m in TESTED.items()}
DEFAULT_ALPHA = 0.05
# Fewest shared questions per task: with fewer, a sign-flip test cannot reach alpha after
# Holm's correction over a handful of metrics (2^(1-Q) must be under alpha / tests).
DEFAULT_MIN_QUESTIONS = 10
# The power at which the minimum detectable effect is stated.
POWER = 0.8

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
    mde: float = float("nan")
    questions_needed: int | None = None

    @property
    def underpowered(self) -> bool:
        """An ``ok`` that could hide a change of the tolerance's size (a significant change was seen)."""
        return self.verdict == OK and not self.mde <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}
        out["underpowered"] = self.underpowered
        return out


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


def check_counts(*, alpha: float, min_questions: int) -> None:
    """Raises `ConfigError` unless 0 < alpha < 1 and min_questions >= 1 (NaN included)."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigError(f"--alpha {alpha!r}: must lie strictly between 0 and 1")
    if isinstance(min_questions, bool) or not isinstance(min_questions, int) or min_questions < 1:
        raise ConfigError(f"--min-questions {min_questions!r}: must be a whole number >= 1")


def _task_names(base: RunValues, cand: RunValues, tasks: list[str] | None, allow_missing_tasks: bool,
                notes: list[str]) -> list[str]:
    names = sorted(set(base.tasks) & set(cand.tasks))
    if tasks:
        missing = [t for t in tasks if t not in names]
        if missing:
            raise ConfigError(
                f"task(s) {', '.join(missing)} not in both sides; baseline has {', '.join(sorted(base.tasks))}, "
                f"candidate has {', '.join(sorted(cand.tasks))}"
            )
        return list(tasks)
    lost = sorted(set(base.tasks) - set(cand.tasks))
    if lost and not allow_missing_tasks:
        raise ConfigError(
            f"task(s) {', '.join(lost)} in the baseline but not in the candidate (its samples file is missing or "
            "empty, or the run failed): a lost task is not a pass; pass --allow-missing-tasks to compare the rest"
        )
    notes.extend(f"{t}: in the baseline but not in the candidate, not tested (--allow-missing-tasks)" for t in lost)
    if not names:
        raise ConfigError(
            f"the sides share no task: baseline has {', '.join(sorted(base.tasks))}, "
            f"candidate has {', '.join(sorted(cand.tasks))}"
        )
    return names


def check_comparable(
    base: RunValues, cand: RunValues, *, min_questions: int = DEFAULT_MIN_QUESTIONS, allow_prompt_change: bool = False,
    tasks: list[str] | None = None, allow_missing_tasks: bool = False, notes: list[str] | None = None,
) -> dict[str, list[str]]:
    """``{task: shared document ids}``; see the module docstring for what is refused.

    Raises:
        ConfigError: naming the first difference found.
    """
    names = _task_names(base, cand, tasks, allow_missing_tasks, notes if notes is not None else [])
    out = {}
    for t in names:
        shared = _shared_docs(t, base.tasks[t], cand.tasks[t], allow_prompt_change)
        n_q = len({base.tasks[t].docs[k]["question"] for k in shared})
        if n_q < min_questions:
            raise ConfigError(
                f"task {t}: only {n_q} shared questions ({len(shared)} shared documents; baseline "
                f"{len(base.tasks[t].docs)}, candidate {len(cand.tasks[t].docs)} documents), fewer than "
                f"--min-questions {min_questions}: documents of one question are not independent, so they "
                "cannot stand in for questions"
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


@dataclass(frozen=True)
class _Row:
    """One test before Holm's correction: means of each side, p, and the clustered SE of the difference."""

    task: str
    metric: str
    test: str
    n: int
    n_questions: int
    baseline: float
    candidate: float
    pvalue: float
    se: float


def _sign_flip(task: str, metric: str, a: np.ndarray, b: np.ndarray, questions: list[str], seed: int,
               n_resamples: int, what: str = "paired differences") -> _Row:
    d = b - a
    p = stats.sign_flip_pvalue(d, questions, n_resamples=n_resamples, seed=seed)
    se = clustered.cluster_mean_stderr(d, questions) if d.size else float("nan")
    return _Row(task, metric, f"{TESTED[metric].test} ({what})", int(d.size), len(set(questions)),
                float(a.mean()) if a.size else float("nan"), float(b.mean()) if b.size else float("nan"), p, se)


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))


def _distribution_rows(task: str, base: TaskValues, cand: TaskValues, keys: list[str], seed: int, n_resamples: int):
    nonfinite = {k: (not _finite(base.docs[k].get("wd")), not _finite(cand.docs[k].get("wd"))) for k in keys}
    scored = [k for k in keys if not any(nonfinite[k])]
    questions = [base.docs[k]["question"] for k in scored]
    for metric in ("wd", "kl"):
        a = np.array([base.docs[k][metric] for k in scored], dtype=np.float64)
        b = np.array([cand.docs[k][metric] for k in scored], dtype=np.float64)
        yield _sign_flip(task, metric, a, b, questions, seed, n_resamples)
    if any(x for pair in nonfinite.values() for x in pair):
        a = np.array([float(nonfinite[k][0]) for k in keys])
        b = np.array([float(nonfinite[k][1]) for k in keys])
        yield _sign_flip(task, "nonfinite", a, b, [base.docs[k]["question"] for k in keys], seed, n_resamples,
                         "share of documents with non-finite loglikelihoods")


def _answer_rows(task: str, base: TaskValues, cand: TaskValues, keys: list[str], seed: int, n_resamples: int,
                 n_boot: int):
    def correct(d: dict[str, Any]) -> int:
        pred = self_consistency(d["pred"]) if len(d["pred"]) > 1 else d["pred"][0]
        return int(pred is not None and pred == d["gold"])

    questions = [base.docs[k]["question"] for k in keys]
    a = np.array([correct(base.docs[k]) for k in keys], dtype=np.float64)
    b = np.array([correct(cand.docs[k]) for k in keys], dtype=np.float64)
    yield _sign_flip(task, "acc", a, b, questions, seed, n_resamples, "correctness differences")
    labels = base.docs[keys[0]]["labels"]
    if any(base.docs[k]["labels"] != labels or cand.docs[k]["labels"] != labels for k in keys):
        return  # macro-F1 needs one label set (opinbench's tasks have one)
    cells_a = stats.macro_f1_codes([base.docs[k]["gold"] for k in keys], [base.docs[k]["pred"] for k in keys], labels)
    cells_b = stats.macro_f1_codes([cand.docs[k]["gold"] for k in keys], [cand.docs[k]["pred"] for k in keys], labels)
    f_a, f_b, p, se = stats.bootstrap_macro_f1_pvalue(cells_a, cells_b, len(labels), questions, n_boot=n_boot, seed=seed)
    yield _Row(task, "macro_f1", str(TESTED["macro_f1"].test), len(keys), len(set(questions)), f_a, f_b, p, se)


def _judge_rows(kind: str, base: RunValues, cand: RunValues, shared: dict[str, list[str]], notes: list[str],
                seed: int, n_resamples: int):
    """One `_Row` per task both judges judged: verdicts paired by item, clustered by question."""
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
        unpaired = sum(map(len, ib.values())) + sum(map(len, ic.values())) - 2 * len(pairs)
        if unpaired:
            notes.append(f"{task}: {unpaired} items judged by judge {kind} on one side only, left out")
        a = np.array([ib[k][r] for k, r in pairs], dtype=np.float64)
        b = np.array([ic[k][r] for k, r in pairs], dtype=np.float64)
        questions = [base.tasks[task].docs[k]["question"] for k, _ in pairs]
        yield _sign_flip(task, jb.metric, a, b, questions, seed, n_resamples, "verdict differences")


def minimum_detectable_effect(se: float, n_questions: int, level: float, power: float = POWER) -> float:
    """The smallest true difference found with probability ``power`` by a two-sided test at ``level``.

    ``(z_{1-level/2} + z_power) * se``; infinite when ``n_questions`` is too small for any
    sign pattern to give p < level (2^(1 - Q) >= level), or when ``se`` is unknown.

    >>> minimum_detectable_effect(0.01, 2, 0.05)
    inf
    >>> round(minimum_detectable_effect(0.01, 30, 0.05), 4)
    0.028
    """
    if n_questions < 2 or 2.0 ** (1 - n_questions) >= level or not math.isfinite(se):
        return math.inf
    return (NormalDist().inv_cdf(1 - level / 2) + NormalDist().inv_cdf(power)) * se


def questions_needed(row: _Row, mde: float, tolerance: float, level: float) -> int:
    """About how many questions bring the MDE under the tolerance (SE ~ 1/sqrt(Q)), and enough
    for the sign-flip test to reach ``level`` at all."""
    floor = max(2, math.floor(1 - math.log2(level)) + 1)
    if tolerance <= 0 or not math.isfinite(row.se) or row.n_questions < 2:
        return max(floor, DEFAULT_MIN_QUESTIONS)
    z = NormalDist().inv_cdf(1 - level / 2) + NormalDist().inv_cdf(POWER)
    return max(floor, row.n_questions, math.ceil(row.n_questions * (z * row.se / tolerance) ** 2))


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
    min_questions: int = DEFAULT_MIN_QUESTIONS,
    allow_prompt_change: bool = False,
    tasks: list[str] | None = None,
    seed: int = 0,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    n_boot: int = stats.DEFAULT_BOOTSTRAP,
    allow_underpowered: bool = False,
    allow_missing_tasks: bool = False,
) -> dict[str, Any]:
    """Compare candidate with baseline; a JSON-able report with ``rows``, ``exit_code`` and notes.

    Raises:
        ConfigError: bad ``alpha``/``min_questions``, or the sides cannot be compared (`check_comparable`).
    """
    check_counts(alpha=alpha, min_questions=min_questions)
    tol = dict(DEFAULT_TOLERANCES if tolerances is None else tolerances)
    notes: list[str] = []
    shared = check_comparable(base, cand, min_questions=min_questions, allow_prompt_change=allow_prompt_change,
                              tasks=tasks, allow_missing_tasks=allow_missing_tasks, notes=notes)
    judges = check_judges(base, cand)
    raw: list[_Row] = []
    for task, keys in shared.items():
        b, c = base.tasks[task], cand.tasks[task]
        raw.extend(
            _distribution_rows(task, b, c, keys, seed, n_resamples)
            if b.kind == DISTRIBUTION
            else _answer_rows(task, b, c, keys, seed, n_resamples, n_boot)
        )
        notes.extend(_task_notes(task, b, c, keys, allow_prompt_change))
    for kind in judges:
        raw.extend(_judge_rows(kind, base, cand, shared, notes, seed, n_resamples))
    for kind in sorted(set(base.judges) ^ set(cand.judges)):
        notes.append(f"judge {kind}: verdicts only in the {'baseline' if kind in base.judges else 'candidate'}, not tested")
    rows = _results(raw, tol, alpha)
    return _report(base, cand, rows, alpha, notes, allow_underpowered)


def _task_notes(task: str, b: TaskValues, c: TaskValues, keys: list[str], allow_prompt_change: bool) -> list[str]:
    out = []
    only_b, only_c = len(b.docs) - len(keys), len(c.docs) - len(keys)
    if only_b or only_c:
        out.append(f"{task}: {only_b} documents only in the baseline, {only_c} only in the candidate, left out")
    if b.kind == DISTRIBUTION:
        nf = [sum(not _finite(side.docs[k].get("wd")) for k in keys) for side in (b, c)]
        if any(nf):
            out.append(f"{task}: documents with non-finite loglikelihoods (the tasks' nonfinite): baseline {nf[0]}, "
                       f"candidate {nf[1]}; left out of wd and kl, tested as nonfinite")
    if allow_prompt_change:
        moved = sum(b.docs[k].get("prompt_hash") != c.docs[k].get("prompt_hash") for k in keys)
        if moved:
            out.append(f"{task}: prompts differ for {moved} of {len(keys)} documents (--allow-prompt-change)")
    return out


def _results(raw: list[_Row], tol: Mapping[str, float], alpha: float) -> list[MetricResult]:
    adjusted = stats.holm([r.pvalue for r in raw])
    level = alpha / max(1, sum(not math.isnan(p) for p in adjusted))  # Holm's first step
    rows = []
    for r, ph in zip(raw, adjusted):
        lower = METRICS[r.metric][1]
        t = float(tol.get(r.metric, 0.0))
        mde = minimum_detectable_effect(r.se, r.n_questions, level)
        need = questions_needed(r, mde, t, level) if not mde <= t else None
        rows.append(MetricResult(r.task, r.metric, r.test, r.n, r.n_questions, r.baseline, r.candidate,
                                 r.candidate - r.baseline, lower, t, r.pvalue, ph,
                                 verdict(r.candidate - r.baseline, lower, t, ph, alpha), mde, need))
    return rows


def _report(base: RunValues, cand: RunValues, rows: list[MetricResult], alpha: float, notes: list[str],
            allow_underpowered: bool) -> dict[str, Any]:
    regressions = [r for r in rows if r.verdict == REGRESSION]
    weak = [r for r in rows if r.underpowered and r.verdict == OK]  # a significant change was not missed
    underpowered = [
        f"{r.task}/{r.metric}: minimum detectable effect {r.mde:.4g} exceeds the tolerance {r.tolerance:g} "
        f"with {r.n_questions} questions; about {r.questions_needed} questions needed"
        for r in weak
    ]
    if underpowered and allow_underpowered:
        notes.append(f"{len(underpowered)} rows underpowered, accepted (--allow-underpowered)")
    exit_code = 1 if regressions else (2 if underpowered and not allow_underpowered else 0)
    return {
        "baseline": base.source,
        "candidate": cand.source,
        "alpha": alpha,
        "power": POWER,
        "correction": f"Holm over {sum(r.pvalue_holm == r.pvalue_holm for r in rows)} tests",
        "rows": [r.to_json() for r in rows],
        "regressions": [f"{r.task}/{r.metric}" for r in regressions],
        "improvements": [f"{r.task}/{r.metric}" for r in rows if r.verdict == IMPROVEMENT],
        "underpowered": underpowered,
        "notes": notes,
        "exit_code": exit_code,
    }
