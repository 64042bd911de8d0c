"""An lm-eval run in the Every Eval Ever schema (evaleval/every_eval_ever, vendored in ``schemas/``).

lm-eval's results and samples files stay the primary format; this is a translation for tools
that read Every Eval Ever. Per run (one model folder, read through `opinbench.runs`):

* ``<uuid>.json``, the aggregate file (``eval.schema.json``): one ``evaluation_results`` item per
  task and numeric metric of lm-eval's results (``wd,none`` -> metric ``wd``, filter ``none``),
  with lm-eval's standard error, the number of documents, ``lower_is_better`` from lm-eval's
  ``higher_is_better`` (a breakdown key ``wd|CREGION=South`` takes its metric's, ``wd``);
* ``<uuid>_samples.jsonl``, the per-instance records (``instance_level_eval.schema.json``): one per
  sample row and metric the row scored with a finite number, as that schema asks (one record
  per aggregate result), linked by ``evaluation_result_id``.

Choices that the schema leaves to the exporter: ``is_correct`` is "the value is the metric's
best" (1 when higher is better, 0 when lower is, so a WD of 0 is correct; the schema requires
the field even for continuous metrics); the data sets are ``source_type: other`` (opinbench's
tasks read local files); the file name is a UUIDv4-shaped digest of the run's results and
samples, so that exporting the same run again gives the same names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opinbench import __version__
from opinbench.errors import DataError
from opinbench.io import write_json, write_jsonl
from opinbench.runs import Run, SampleRow, generations, task_results

log = logging.getLogger(__name__)

SCHEMAS = Path(__file__).resolve().parent / "schemas"
AGGREGATE_SCHEMA = SCHEMAS / "eval.schema.json"
INSTANCE_SCHEMA = SCHEMAS / "instance_level_eval.schema.json"
SCHEMA_VERSION = json.loads(AGGREGATE_SCHEMA.read_text(encoding="utf-8"))["version"]
COLLECTION = "opinbench"  # the datastore's first folder level (its "collection")
_NOT_METRICS = {"alias", "name", "sample_len", "samples"}


@dataclass(frozen=True)
class Source:
    """Who made the records: ``source_metadata`` (the schema requires an organisation and the
    evaluator's relationship to the model: first_party, third_party, collaborative or other)."""

    organization: str = "unspecified"
    relationship: str = "other"
    origin: str = ""  # the run folder or leaderboard:ID, recorded as a detail


@dataclass(frozen=True)
class Metric:
    task: str
    key: str  # lm-eval's "metric,filter"
    name: str
    filter: str
    lower_is_better: bool

    @property
    def result_id(self) -> str:
        return f"{self.task}/{self.key}"


def _finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number (lm-eval writes 'N/A' and NaN too).

    >>> _finite(0.5), _finite("N/A"), _finite(float("nan")), _finite(True), _finite("0.25")
    (0.5, None, None, None, 0.25)
    """
    if isinstance(x, bool):
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _strings(d: dict[str, Any]) -> dict[str, str]:
    """``additional_details`` hold strings only: others as JSON, None left out."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for k, v in d.items() if v is not None}


def _metrics(task: str, values: dict[str, Any], higher: dict[str, Any]) -> list[Metric]:
    out = []
    for key, value in values.items():
        name, _, filt = key.partition(",")
        if name in _NOT_METRICS or name.endswith("_stderr") or _finite(value) is None:
            continue
        better = higher.get(name, higher.get(name.split("|")[0]))
        if not isinstance(better, bool):
            log.info("%s: %s left out of the export: lm-eval records no direction for it", task, key)
            continue
        out.append(Metric(task, key, name, filt or "none", not better))
    return out


def _result_item(m: Metric, values: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    config = (results.get("configs") or {}).get(m.task) or {}
    n = ((results.get("n-samples") or {}).get(m.task) or {}).get("effective")
    uncertainty: dict[str, Any] = {}
    stderr = _finite(values.get(f"{m.name}_stderr,{m.filter}"))
    if stderr is not None:
        uncertainty["standard_error"] = {"value": stderr, "method": "lm-eval"}
    if isinstance(n, int):
        uncertainty["num_samples"] = n
    details = {"task_hash": (results.get("task_hashes") or {}).get(m.task),
               "task_version": (results.get("versions") or {}).get(m.task), "documents": n}
    return {
        "evaluation_result_id": m.result_id,
        "evaluation_name": m.task,
        "source_data": {"dataset_name": str(config.get("dataset_path") or m.task), "source_type": "other",
                        "additional_details": _strings(details)},
        "metric_config": {"metric_id": m.key, "metric_name": m.name, "lower_is_better": m.lower_is_better,
                          # continuous metrics must state their range; null = not provided (KL is unbounded)
                          "score_type": "continuous", "min_score": None, "max_score": None, "additional_details": _strings({"lm_eval_filter": m.filter})},
        "score_details": {"score": _finite(values[m.key])} | ({"uncertainty": uncertainty} if uncertainty else {}),
    }


def _iso(unix: Any) -> str | None:
    t = _finite(unix)
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat()


def aggregate(run: Run, *, source: Source, retrieved: float) -> tuple[dict[str, Any], list[Metric]]:
    """The aggregate record of ``run`` (without ``detailed_evaluation_results``) and its metrics."""
    items, metrics, newest = [], [], run.results
    for task in run.tasks:
        results = task_results(run, task) or {}
        values = (results.get("results") or {}).get(task) or {}
        found = _metrics(task, values, (results.get("higher_is_better") or {}).get(task) or {})
        items += [_result_item(m, values, results) for m in found]
        metrics += found
    if not items:
        raise DataError("no numeric lm-eval result to export", file=run.results_file or run.folder)
    config = newest.get("config") or {}
    info = _model_info(newest, config)
    record = {
        "schema_version": SCHEMA_VERSION,
        "evaluation_id": f"{'+'.join(run.tasks)}/{info['id']}/{int(retrieved)}",  # the schema's eval/model/time
        "evaluation_timestamp": _iso(newest.get("date")),
        "retrieved_timestamp": str(int(retrieved)),
        "source_metadata": {"source_name": "opinbench", "source_type": "evaluation_run",
                            "source_organization_name": source.organization,
                            "evaluator_relationship": source.relationship,
                            "additional_details": _strings({"origin": source.origin, "exported_by": f"opinbench {__version__}",
                                                            "lm_eval_results_file": (run.results_file or run.folder).name})},
        "eval_library": {"name": "lm_eval", "version": str(newest.get("lm_eval_version") or "unknown"),
                         "additional_details": _strings({"git_hash": newest.get("git_hash"),
                                                         "transformers_version": newest.get("transformers_version")})},
        "model_info": info,
        "evaluation_results": items,
    }
    return {k: v for k, v in record.items() if v is not None}, metrics


def model_id(name: str) -> str:
    """The schema's model id (Hugging Face ``developer/model``): a local folder becomes ``local/<its name>``.

    >>> model_id("HuggingFaceTB/SmolLM2-135M-Instruct"), model_id("/root/.cache/opinbench/models/smollm2")
    ('HuggingFaceTB/SmolLM2-135M-Instruct', 'local/smollm2')
    """
    parts = name.strip().split("/")
    if len(parts) >= 2 and all(p and p not in {".", ".."} for p in parts) and not name.startswith("~"):
        return name.strip()
    return f"local/{Path(name.rstrip('/')).name or 'unknown'}"


def _model_info(results: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    name = str(results.get("model_name") or config.get("model") or "unknown")
    details = {"deployment_type": "self_deployed", "model_availability": "unknown",
               "model_args": config.get("model_args"), "model_dtype": config.get("model_dtype"),
               "model_num_parameters": config.get("model_num_parameters"), "model_sha": config.get("model_sha") or None,
               "chat_template_sha": results.get("chat_template_sha")}
    return {"name": name, "id": model_id(name), "inference_engine": {"name": f"lm-eval {config.get('model', 'unknown')}"},
            "additional_details": _strings(details)}


def _request_args(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The arguments of a row's requests in order (lm-eval: ``{"gen_args_0": {"arg_0": context,
    "arg_1": continuation or generation settings}, ...}``)."""
    args = row.get("arguments")
    if not isinstance(args, dict):
        return []
    order = {k: int(n) if (n := k.rsplit("_", 1)[-1]).isdigit() else 0 for k in args}
    return [args[k] for k in sorted(args, key=order.__getitem__) if isinstance(args[k], dict)]


def _answer(row: dict[str, Any]) -> tuple[list[str] | None, list[str], str, str]:
    """(choices, raw outputs, extracted answer, how): a multiple-choice row's outputs are its
    options' loglikelihoods and its answer the likeliest option; a generation row's are its texts."""
    requests = _request_args(row)
    texts = generations(row.get("resps"))
    if texts is not None:
        filtered = row.get("filtered_resps")
        first = filtered[0] if isinstance(filtered, list) and filtered else ""
        return None, texts, first if isinstance(first, str) else json.dumps(first), f"lm-eval filter {row.get('filter', 'none')}"
    choices = [str(a.get("arg_1", "")) for a in requests]
    lls = [_finite(r[0]) if isinstance(r, list) and r else None for r in row.get("filtered_resps") or []]
    raw = ["" if ll is None else repr(ll) for ll in lls]
    scored = [(ll, c) for ll, c in zip(lls, choices) if ll is not None]
    return choices or None, raw, max(scored)[1] if scored else "", "argmax loglikelihood"


def instances(run: Run, metrics: list[Metric], *, evaluation_id: str, model_id: str):
    """The per-instance records of ``run``: one per sample row and metric scored finitely there."""
    by_task: dict[str, list[Metric]] = {}
    for m in metrics:
        by_task.setdefault(m.task, []).append(m)
    for task, task_metrics in by_task.items():
        for sample in run.rows(task):
            yield from _row_records(sample, task, task_metrics, evaluation_id=evaluation_id, model_id=model_id)


def _row_records(sample: SampleRow, task: str, metrics: list[Metric], *, evaluation_id: str, model_id: str):
    row = sample.data
    if not isinstance(row, dict):
        raise DataError("a samples row is not a JSON object", file=sample.file, key=sample.key)
    requests = _request_args(row)
    prompt = str(requests[0].get("arg_0", "")) if requests else ""
    reference = [str(row.get("target", ""))]
    choices, raw, extracted, how = _answer(row)
    doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
    sample_id = doc.get("id") if isinstance(doc.get("id"), str) else str(row.get("doc_id"))
    digest = hashlib.sha256(json.dumps({"raw": prompt, "reference": reference}, sort_keys=True).encode()).hexdigest()
    for m in metrics:
        score = _finite(row.get(m.name)) if row.get("filter", "none") == m.filter else None
        if score is None:
            continue
        yield {
            "schema_version": SCHEMA_VERSION, "evaluation_id": evaluation_id, "model_id": model_id,
            "evaluation_name": task, "evaluation_result_id": m.result_id, "sample_id": sample_id,
            "sample_hash": digest, "interaction_type": "single_turn",
            "input": {"raw": prompt, "reference": reference, "choices": choices},
            "output": {"raw": raw},
            "answer_attribution": [{"turn_idx": 0, "source": "output.raw", "extracted_value": extracted,
                                    "extraction_method": how, "is_terminal": True}],
            "evaluation": {"score": score, "is_correct": score == (0.0 if m.lower_is_better else 1.0), "num_turns": 1},
            "metadata": _strings({"doc_id": str(row.get("doc_id")), "doc_hash": row.get("doc_hash"),
                                  "prompt_hash": row.get("prompt_hash"), "metric": m.key}),
        }


def _file_id(run: Run) -> str:
    """A UUIDv4-shaped name from the run's results and samples files: the same run, the same name."""
    h = hashlib.sha256()
    for path in [*run.results_files, *run.samples_files.values()]:
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return str(uuid.UUID(bytes=h.digest()[:16], version=4))


def export_run(run: Run, out: str | Path, *, source: Source, retrieved: float | None = None) -> Path:
    """Write ``run`` into ``out`` laid out as Every Eval Ever's datastore,
    ``data/opinbench/<developer>/<model>/<uuid>.json`` and ``<uuid>_samples.jsonl`` beside it
    (the aggregate names its samples file by that path); returns the aggregate file."""
    retrieved = time.time() if retrieved is None else retrieved
    record, metrics = aggregate(run, source=source, retrieved=retrieved)
    ident = record["model_info"]["id"]
    developer, _, model = ident.partition("/")
    relative = Path("data", COLLECTION, developer, model.replace("/", "_"))
    folder, file_id = Path(out) / relative, _file_id(run)
    samples = folder / f"{file_id}_samples.jsonl"
    rows = write_jsonl(samples, instances(run, metrics, evaluation_id=record["evaluation_id"], model_id=ident))
    record["detailed_evaluation_results"] = {
        "format": "jsonl", "file_path": (relative / samples.name).as_posix(), "hash_algorithm": "sha256",
        "checksum": hashlib.sha256(samples.read_bytes()).hexdigest(), "total_rows": rows,
    }
    path = folder / f"{file_id}.json"
    write_json(path, record)
    return path
