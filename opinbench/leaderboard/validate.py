"""Validation of an lm-eval run against a leaderboard definition, before anything is published.

Evaluated and ingested (self-reported) runs go through the same `validate_run`. Errors (the
entry is refused) are:

* the run is not one model's lm-eval folder with a results file and a samples file per task;
* a task version differs from the definition's;
* the run used ``limit`` (always refused), or ``samples`` on a full leaderboard, or other
  document indices than a subset definition's;
* a document is logged more than once, or a test document is missing;
* a logged document does not hash to its ``doc_hash`` (it was edited after the run), or differs
  from the document the leaderboard's data gives at that index (dataset hash, ``check_data``),
  or the ``task_hashes`` entry is not the hash of the logged rows;
* a document's logged metric value differs from the one recomputed from its logged model
  output (named by document), or a published number (the definition's metrics, their stderr,
  floors and ceilings) differs from the one recomputed from all logged samples by more than
  ``TOLERANCE``;
* a judge metric's verdicts, control-set accuracy or published number do not agree, or the
  judge is not the pinned one (`opinbench.leaderboard.judge_scores`).

Per-document values are re-scored by `opinbench.scoring.rescore` (the live hooks' own
functions) and aggregated by each metric's object (`opinbench.scoring.metric`); the logged aggregates
are only compared, never published. Warnings (shown beside the entry, never a refusal): better
than the human bound, low letter mass, high invalid rate, a judge skipped or with low
control-set accuracy.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from opinbench.errors import ConfigError, DataError
from opinbench.leaderboard import diagnostics
from opinbench.leaderboard.definition import Bound, Definition, MetricSpec
from opinbench.leaderboard.judge_scores import judge_score
from opinbench.leaderboard.types import MetricScore, ValidationReport
from opinbench.metrics import answer_tasks
from opinbench.runs import Run, find_runs, task_results
from opinbench.scoring import metric, resolve
from opinbench.scoring.kinds import answers_of
from opinbench.scoring.metric import DISTRIBUTION
from opinbench.scoring.rescore import RescoredTask, rescore_rows

TOLERANCE = 1e-9
NOT_EVALUATED = "not evaluated (optional task: its data are not available to the leaderboard's workers)"


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc_hash(doc: Any) -> str:
    """lm-eval's ``doc_hash`` of a document (``hash_string(json.dumps(doc, indent=2, ensure_ascii=False))``)."""
    return _sha256(json.dumps(doc, indent=2, default=str, ensure_ascii=False))


def _same(a: Any, b: Any) -> bool:
    try:
        return abs(float(a) - float(b)) <= TOLERANCE or (math.isnan(float(a)) and math.isnan(float(b)))
    except (TypeError, ValueError):
        return False


def expected_doc_hashes(definition: Definition, task: str) -> tuple[str, ...]:
    """lm-eval ``doc_hash`` of every document the leaderboard scores ``task`` on, in order, from the
    data (``$OPINBENCH_DATA_DIR``); cached per task, metadata and data folder within a process."""
    import os

    key = json.dumps(definition.metadata, sort_keys=True)
    return _doc_hashes(task, key, os.environ.get("OPINBENCH_DATA_DIR", ""))


@functools.lru_cache(maxsize=64)
def _doc_hashes(task: str, metadata_json: str, _data_dir: str) -> tuple[str, ...]:
    from opinbench.harness.tasks import eval_docs, load_task

    return tuple(doc_hash(d) for d in eval_docs(load_task(task, json.loads(metadata_json))))


class _Task:
    """One task of a run: its rows (first per document), documents and re-scored values
    (`opinbench.scoring.rescore`: the live hooks' own functions, human bounds included)."""

    def __init__(self, run: Run, task: str):
        self.rows: dict[int, dict[str, Any]] = {}
        self.counts: Counter[int] = Counter()
        self.order: list[dict[str, Any]] = []
        logged = list(run.rows(task))
        for row in logged:
            data = row.data if isinstance(row.data, dict) else {}
            if not isinstance(data.get("doc"), dict) or not isinstance(data.get("doc_id"), int):
                raise DataError("not an lm-eval samples row (no doc or doc_id)", file=row.file, key=row.key)
            key = data["doc_id"]
            self.counts[(key, data.get("filter"))] += 1
            self.order.append(data)
            self.rows.setdefault(key, data)
        self.scored: RescoredTask | None = rescore_rows(task, logged)

    @property
    def kind(self) -> str:
        return self.scored.kind.name if self.scored is not None else ""

    def name(self, doc_id: int) -> str:
        doc = self.rows[doc_id]["doc"]
        return f"document {doc.get('id', doc_id)} (doc_id {doc_id})"

    def values(self, doc_id: int) -> dict[str, Any] | None:
        """The re-scored values of the document logged under ``doc_id``."""
        doc = self.rows[doc_id]["doc"]
        scored = self.scored.docs.get(str(doc.get("id", doc_id))) if self.scored is not None else None
        return scored.values if scored is not None else None


def _recompute(t: _Task, metric: str) -> tuple[float, float | None]:
    """(value, stderr) of ``metric`` over a task's documents, as its metric object aggregates the
    re-scored per-document values.

    Raises:
        DataError: a metric the task does not publish.
    """
    assert t.scored is not None
    try:
        m = resolve(metric)[0]
    except ConfigError as err:
        raise DataError(str(err)) from None
    if t.scored.kind.name not in m.kinds or not t.scored.values(metric)[0]:
        raise DataError(f"cannot recompute {metric!r} of a {t.kind} task")
    est = t.scored.estimate(metric)
    return est.value, est.stderr


def _invalid_share(t: _Task) -> float:
    """Share of answers that could not be used (unparsable generations, non-finite letters)."""
    assert t.scored is not None
    items = [answers_of(d.values) for d in t.scored.ordered()]
    return float(np.mean([np.mean([p is None for p in it["pred"]]) for it in items]))


def _per_question(t: _Task, metric: str) -> dict[str, float] | None:
    """Mean of a distribution task's per-document ``wd``/``kl`` per question, for the site's paired
    bootstrap over questions (`opinbench.leaderboard.ranks`); None for other metrics."""
    if t.scored is None or t.scored.kind.name != DISTRIBUTION or metric not in ("wd", "kl"):
        return None
    by: dict[str, list[float]] = {}
    for v, c in zip(*t.scored.values(metric)):
        if v is not None and math.isfinite(v):
            by.setdefault(str(c), []).append(float(v))
    return {q: float(np.mean(v)) for q, v in sorted(by.items())}


def _baseline(t: _Task, kind: str) -> float:
    assert t.scored is not None
    docs = [d.doc for d in t.scored.ordered()]
    answers = answer_tasks.baseline_answers(docs, kind)
    return metric("macro_f1").aggregate([answer_tasks.doc_metrics(d, [a])["macro_f1"] for d, a in zip(docs, answers)])


def _bound(t: _Task, b: Bound | None) -> float | None:
    if b is None:
        return None
    if b.kind == "value":
        return float(b.value)
    if b.kind == "metric":
        return _recompute(t, b.value)[0]
    return _baseline(t, b.value)


def _value(t: RescoredTask, key: str) -> float | None:
    values = t.values(key)[0]
    return float(t.estimate(key).value) if values else None


def _breakdown(t: _Task) -> dict[str, dict[str, float | None]]:
    """Per-group values for the entry page, recomputed like the headline numbers: distribution tasks
    WD per ``attribute=group`` with its uniform and human bounds; answer tasks macro-F1 per
    ideology group (``subject_group``) averaged over individuals."""
    assert t.scored is not None
    if t.kind == DISTRIBUTION:
        groups = t.scored.group_by(lambda d: f"{d.doc.get('attribute')}={d.doc.get('group')}")
        return {g: {"wd": _value(sub, "wd"), "uniform": _value(sub, "wd_uniform"), "human": _value(sub, "wd_human")}
                for g, sub in groups.items()}
    individual = t.scored.group_by(lambda d: str(d.doc.get("subject_group") or ""))
    out: dict[str, dict[str, float | None]] = {}
    for g, sub in individual.items():
        if not g or not sub.values("macro_f1_individual")[0]:
            continue
        try:
            out[g] = {"macro_f1_individual": sub.estimate("macro_f1_individual").value}
        except ValueError:
            continue
    return out


def normalised(raw: float, floor: float, ceiling: float) -> float | None:
    """0 at the floor, 1 at the ceiling (either direction).

    >>> normalised(0.1, 0.2, 0.0), normalised(0.75, 0.5, 1.0)
    (0.5, 0.5)
    """
    if ceiling == floor or any(map(math.isnan, (raw, floor, ceiling))):
        return None
    return (raw - floor) / (ceiling - floor)


def _check_docs(t: _Task, task: str, definition: Definition, n_original: int | None, errors: list[str],
                check_data: bool) -> None:
    for (doc_id, filt), n in sorted(t.counts.items(), key=lambda kv: str(kv[0])):
        if n > 1:
            errors.append(f"{task}: {t.name(doc_id)} is logged {n} times (filter {filt})")
    wanted = definition.task(task).samples
    logged = set(t.rows)
    if wanted is not None:
        expected_ids = set(wanted)
    elif n_original is not None:
        expected_ids = set(range(n_original))
    else:
        expected_ids = logged
    if logged != expected_ids:
        missing, extra = sorted(expected_ids - logged), sorted(logged - expected_ids)
        if missing:
            errors.append(f"{task}: {len(missing)} test documents missing (doc_id {missing[:10]})")
        if extra:
            errors.append(f"{task}: documents outside the leaderboard's set (doc_id {extra[:10]})")
    for doc_id, row in sorted(t.rows.items()):
        if doc_hash(row["doc"]) != row.get("doc_hash"):
            errors.append(f"{task}: {t.name(doc_id)} does not match its logged doc_hash (edited after the run)")
    if check_data:
        hashes = expected_doc_hashes(definition, task)
        if n_original is not None and wanted is None and len(hashes) != n_original:
            errors.append(f"{task}: the run had {n_original} test documents, the leaderboard's data has {len(hashes)}")
        for doc_id, row in sorted(t.rows.items()):
            if doc_id >= len(hashes) or hashes[doc_id] != row.get("doc_hash"):
                errors.append(f"{task}: {t.name(doc_id)} differs from the leaderboard's data (dataset hash)")


def _check_doc_values(t: _Task, task: str, errors: list[str]) -> None:
    """Each document's logged per-document metric against the value recomputed from its logged output."""
    for doc_id, row in sorted(t.rows.items()):
        vals = t.values(doc_id)
        if vals is None:
            continue
        if t.kind == DISTRIBUTION:
            bad = [m for m in ("wd", "kl") if m in row and not _same(row[m], vals.get(m))]
        else:
            logged = row.get("macro_f1") if isinstance(row.get("macro_f1"), dict) else {}
            item = answers_of(vals)
            bad = [] if logged.get("pred") == item["pred"] and logged.get("gold") == item["gold"] else ["pred"]
        for m in bad:
            errors.append(f"{task}: {t.name(doc_id)}: logged {m} does not match the value recomputed from its "
                          "logged model output")


# Over 80 lines on purpose: the run's checks in the order of the module docstring's checklist, one
# block each; the blocks share the run, the report and the error list.
def validate_run(run_dir: str | Path, definition: Definition, *, skipped_judges: dict[str, str] | None = None,
                 check_data: bool = True) -> ValidationReport:
    """Validate a run folder against ``definition``; returns the report stored with the entry:
    ``errors``, ``warnings``, ``scores`` (per metric id: raw, stderr, ci, floor, ceiling, normalised,
    or ``missing`` with the reason), ``headline``, ``tasks`` (version, task hash, documents),
    ``environment`` (versions from the results file) and ``subset``."""
    errors: list[str] = []
    warnings: list[str] = []
    runs = find_runs(run_dir)
    if len(runs) != 1:
        return {"errors": [f"{run_dir}: holds {len(runs)} model folders; one is expected"], "warnings": [], "scores": {}}
    run = runs[0]
    tasks: dict[str, _Task] = {}
    task_info: dict[str, Any] = {}
    config: dict[str, Any] = {}
    env: dict[str, Any] = {}
    for spec in definition.tasks:
        name = spec.name
        if name not in run.samples_files:
            if not spec.optional:
                errors.append(f"{name}: no samples file (the run must cover every task of {definition.name})")
            continue
        res = task_results(run, name) or {}
        config = config or dict(res.get("config") or {})
        env = env or {k: res.get(k) for k in ("lm_eval_version", "transformers_version", "git_hash", "date",
                                                "model_name", "chat_template_sha", "task_hashes")}
        version = (res.get("versions") or {}).get(name)
        if str(version) != str(spec.version):
            errors.append(f"{name}: task version {version!r}, the leaderboard requires {spec.version!r}")
        limit = (res.get("config") or {}).get("limit")
        if limit is not None:
            errors.append(f"{name}: run with limit={limit}; {definition.name} refuses limited runs")
        n_samples = (res.get("n-samples") or {}).get(name) or {}
        try:
            t = _Task(run, name)
        except DataError as err:
            errors.append(str(err))
            continue
        derived_only = name in {m.unsteered for m in definition.metrics}  # read by the steering gain alone
        if t.scored is None and not derived_only:
            errors.append(f"{name}: not an opinbench task whose samples can be rescored")
            continue
        tasks[name] = t
        _check_docs(t, name, definition, n_samples.get("original") if spec.samples is None else None, errors,
                    check_data)
        logged_hash = (res.get("task_hashes") or {}).get(name)
        recomputed = _sha256("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in t.order))
        if logged_hash is not None and logged_hash != recomputed:
            errors.append(f"{name}: task_hashes entry is not the hash of the logged samples")
        if spec.documents is not None and len(t.rows) != spec.documents:
            errors.append(f"{name}: {len(t.rows)} documents, the definition states {spec.documents}")
        task_info[name] = {"version": version, "task_hash": recomputed, "documents": len(t.rows),
                           "n_original": n_samples.get("original")}
        if t.scored is None:  # opinionqa_wd_default: its documents checked, its scores the steering gain's
            continue
        _check_doc_values(t, name, errors)
        task_info[name]["breakdown"] = _breakdown(t)
        if t.kind == DISTRIBUTION:
            task_info[name]["strata"] = diagnostics.strata(t.scored)
        if t.kind == DISTRIBUTION:
            mass = (res.get("results") or {}).get(name, {}).get("letter_mass,none")
            if isinstance(mass, (int, float)) and mass < definition.warnings.get("min_letter_mass", 0.0):
                warnings.append(f"{name}: low letter mass ({mass:.3g}): the model rarely answers with an option letter")
        else:
            invalid = _invalid_share(t)
            if invalid > definition.warnings.get("max_invalid_rate", 1.0):
                warnings.append(f"{name}: high invalid rate ({invalid:.0%} of answers could not be parsed)")

    scores: dict[str, Any] = {}
    z = float(definition.headline.get("ci_z", 1.96))
    doc_keys = {name: {str(i): str(t.rows[i]["doc"].get("id", i)) for i in t.rows} for name, t in tasks.items()}
    for m in definition.metrics:
        if m.task in definition.optional_tasks and m.task not in tasks:
            scores[m.id] = {"display": m.display, "group": m.group, "direction": m.direction, "missing": NOT_EVALUATED}
        elif m.judge is not None:
            scores[m.id] = judge_score(m, definition, run, doc_keys, skipped_judges or {}, errors, warnings, z)
        elif m.unsteered is not None:
            scores[m.id] = diagnostics.steering_gain_score(m, run, z)
        else:
            scores[m.id] = _score(m, run, tasks, errors, warnings, z)
    # groups outside the headline (the diagnostics) are shown, never averaged
    headline, norm = headline_of({m.id: scores[m.id] for m in definition.metrics if definition.in_headline(m)})
    return {
        "errors": errors, "warnings": warnings, "scores": scores, "headline": headline,
        "headline_metrics": norm, "tasks": task_info, "config": config, "environment": env,
        "subset": definition.subset, "leaderboard": definition.name, "leaderboard_version": definition.version,
        "definition_digest": definition.digest,
    }


def headline_of(scores: dict[str, Any]) -> tuple[float | None, int]:
    """The headline (mean of the normalised scores an entry has) and how many it averages.

    >>> headline_of({"a": {"normalised": 0.2}, "b": {"normalised": 0.6}, "c": {"missing": "x"}})
    (0.4, 2)
    """
    norm = [s["normalised"] for s in scores.values() if s.get("normalised") is not None]
    return (float(np.mean(norm)) if norm else None), len(norm)


STORED_KEYS = ("raw", "stderr", "floor", "ceiling", "normalised")


def compare_stored(stored: dict[str, Any] | None, recomputed: dict[str, Any], definition: Definition,
                   stored_digest: str | None = None) -> list[str]:
    """What a stored entry's numbers say against the ones recomputed from its stored files with
    the registered ``definition``: every metric's raw value, stderr, floor, ceiling and normalised
    score, the headline (also recomputed from the stored normalised scores), the digest. Each
    difference is named; an empty list means the stored numbers are the definition's."""
    stored = stored or {}
    out: list[str] = []
    digest = stored_digest or stored.get("definition_digest")
    if digest != definition.digest:
        out.append(f"scored with definition digest {str(digest)[:12]}, {definition.name} v{definition.version} "
                   f"is {definition.digest[:12]}")
    old_scores, new_scores = stored.get("scores") or {}, recomputed.get("scores") or {}
    for m in definition.metrics:
        old, new = old_scores.get(m.id) or {}, new_scores.get(m.id) or {}
        for key in STORED_KEYS:
            a, b = old.get(key), new.get(key)
            if (a is None) != (b is None) or (a is not None and not _same(a, b)):
                out.append(f"{m.id}: stored {key} {a!r}, recomputed {b!r}")
    for m_id in sorted(set(old_scores) - {m.id for m in definition.metrics}):
        out.append(f"{m_id}: stored, but not a metric of {definition.name} v{definition.version}")
    head = recomputed.get("headline")
    for what, value in (("headline", stored.get("headline")),
                        ("headline of the stored normalised scores", headline_of(old_scores)[0])):
        if (value is None) != (head is None) or (value is not None and not _same(value, head)):
            out.append(f"{what} {value!r}, recomputed {head!r}")
    return out


def check_settings(run_dir: str | Path, definition: Definition, request: Any) -> list[str]:
    """The run's lm-eval settings against the definition's and the request's: few-shot per task,
    generation arguments, chat template, system instruction, seeds, dtype. A self-reported run made
    otherwise is not the leaderboard's evaluation, however right its numbers."""
    runs = find_runs(run_dir)
    if len(runs) != 1:
        return []
    run = runs[0]
    s, errors = definition.settings, []
    res = next((task_results(run, t) for t in definition.task_names if task_results(run, t)), None) or {}
    config = dict(res.get("config") or {})
    for task in definition.task_names:
        shots = ((task_results(run, task) or {}).get("n-shot") or {}).get(task)
        if shots is not None and int(shots) != int(s.get("num_fewshot", 0)):
            errors.append(f"{task}: run with {shots} few-shot examples, {definition.name} uses {s.get('num_fewshot', 0)}")
    for key, logged in (("random_seed", "random_seed"), ("numpy_random_seed", "numpy_seed"),
                        ("torch_random_seed", "torch_seed"), ("fewshot_random_seed", "fewshot_seed")):
        want = s.get(key, {"random_seed": 0}.get(key, 1234))
        if logged in config and config[logged] != want:
            errors.append(f"settings: {logged} {config[logged]!r}, {definition.name} uses {want!r}")
    errors += _generation_errors(config, definition)
    chat = res.get("chat_template_sha") is not None
    if "chat_template_sha" in res and chat != bool(getattr(request, "chat_template", chat)):
        errors.append(f"settings: chat template {'applied' if chat else 'not applied'}, the entry says "
                      f"{'applied' if not chat else 'not applied'}")
    if res.get("system_instruction") not in (None, "", s.get("system_instruction")):
        errors.append(f"settings: system instruction {str(res['system_instruction'])[:60]!r}; {definition.name} sets none")
    margs = config.get("model_args") or {}
    if isinstance(margs, str):
        margs = dict(p.split("=", 1) for p in margs.split(",") if "=" in p)
    dtype = str(margs.get("dtype") or "auto")
    want_dtype = s.get("dtype") or getattr(request, "dtype", None)
    if want_dtype and dtype != str(want_dtype):
        errors.append(f"settings: dtype {dtype}, the entry says {want_dtype}")
    return errors


def _generation_errors(config: dict[str, Any], definition: Definition) -> list[str]:
    gen = config.get("gen_kwargs") or {}
    if isinstance(gen, str):
        gen = dict(p.split("=", 1) for p in gen.split(",") if "=" in p)
    want = {"max_gen_toks": int(definition.settings["max_gen_toks"])} if definition.settings.get("max_gen_toks") else {}
    have = {k: (int(v) if str(v).isdigit() else v) for k, v in dict(gen).items()}
    if have != want:
        return [f"settings: generation arguments {have or 'none'}, {definition.name} uses {want or 'none'}"]
    return []


def _score(m: MetricSpec, run: Run, tasks: dict[str, _Task], errors: list[str], warnings: list[str],
           z: float) -> MetricScore:
    base: MetricScore = {"display": m.display, "group": m.group, "direction": m.direction}
    t = tasks.get(m.task)
    if t is None:
        return base | {"missing": f"task {m.task} not validated"}
    res = ((task_results(run, m.task) or {}).get("results") or {}).get(m.task, {})
    try:
        raw, stderr = _recompute(t, m.metric)
        floor, ceiling = _bound(t, m.floor), _bound(t, m.ceiling)
    except (DataError, ValueError, KeyError) as err:
        errors.append(f"{m.id}: cannot recompute {m.metric} of {m.task}: {err}")
        return base | {"missing": str(err)}
    checks = [(m.key, raw), (f"{m.metric}_stderr,{m.filter}", stderr)]
    for b, v in ((m.floor, floor), (m.ceiling, ceiling)):
        if b is not None and b.kind == "metric":
            checks.append((f"{b.value},{m.filter}", v))
    for key, value in checks:
        if value is None or key not in res or not isinstance(res[key], (int, float)):
            continue
        if not _same(res[key], value):
            errors.append(f"{m.task}: published {key} = {res[key]!r}, recomputed from the logged samples: {value!r}")
    if m.ceiling is not None and m.ceiling.kind == "metric" and m.ceiling.value == "wd_human":
        if (raw < ceiling) if not m.higher_is_better else (raw > ceiling):
            warnings.append(f"{m.id}: better than the human bound ({raw:.4g} vs {ceiling:.4g}): check for leakage")
    half = z * stderr if stderr is not None and not math.isnan(stderr) else None
    bounded = floor is not None and ceiling is not None  # a diagnostic has no bounds: shown, not normalised
    norm = normalised(raw, floor, ceiling) if bounded else None
    span = (ceiling - floor) if bounded and ceiling != floor else None
    return base | {
        "raw": raw, "stderr": stderr, "ci": [raw - half, raw + half] if half is not None else None,
        "per_question": _per_question(t, m.metric),
        "floor": floor, "ceiling": ceiling, "normalised": norm,
        "normalised_ci": (sorted([(raw - half - floor) / span, (raw + half - floor) / span]) if half is not None and span
                          else None),
    }
