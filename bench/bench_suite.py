"""Benchmark: every task of the leaderboard suite, ``--model hf`` and ``--model vllm`` side by side.

One run, the same documents (lm-eval's ``--limit N`` per task) on both backends. For each
task it reports documents, requests, forward passes per document (hf: rows fed to the model,
counted by hooks around its forward; vllm: prompts sent to the engine) or generated tokens per
document (``generate_until`` tasks: the outputs re-tokenised), and the throughput of each
backend in lm-eval: the task is built first and timed apart (its data set is read whole
whatever ``--limit`` is: a fixed cost per task, reported as "build s"), then
``lm_eval.simple_evaluate`` on it is timed: prompts, requests, lm-eval's batching, the model,
process_results, aggregations. Each backend also measures the
model's raw throughput alone, in the same run, on the same loaded model:

* prefill tokens/s: forward passes over batches of random prompt-length token sequences
  (hf: batches of ``--batch-size`` rows; vllm: ``max_tokens=1`` generation over token-id
  prompts, all at once as lm-eval sends them, prefix cache reset and every prompt distinct, so
  nothing is cached);
* decode tokens/s: ``T`` generated tokens per sequence (``min_new_tokens`` / ``ignore_eos``,
  greedy) minus a 1-token generation of the same shape, over a batch as lm-eval uses it (hf:
  ``--batch-size``; vllm: the task's generation requests, up to 256, at once).

and the ratio task/raw: for loglikelihood tasks the document tokens (per document its longest
request, context + continuation: the one forward pass that a document needs) per second over
raw prefill tokens/s; for generation tasks the generated tokens per second over raw decode
tokens/s. 1.0 means the task runs at the model's raw speed; a backend that feeds the model
more than one pass per document (vllm: one prompt per answer option) shows it in both the
ratio and the passes-per-document column.

Each backend runs in a worker subprocess (the main venv's python for hf, ``--vllm-python``
for vllm: vLLM lives in a venv of its own), one after the other (never both at once: they would
compete for the cores); each loads the model once and runs every task. The documents, requests
and prompt tokens the run should see are counted beforehand with
`opinbench.estimate.counts.count_tasks` (the same lm-eval requests, the model's tokenizer), and
a worker that saw a different number of requests is flagged in the table.

Usage (from the repository root)::

    OPINBENCH_DATA_DIR=../shared/data python bench/bench_suite.py --limit 8 \\
        --vllm-python ../vllm-venv/bin/python --max-gen-toks 128 --json bench/suite_cpu.json
    # a subset of tasks, hf only:
    python bench/bench_suite.py --tasks opinionqa_wd,wom_cot --limit 2

``--leaderboard NAME`` (default ``opinbench``) takes the tasks and their ``--metadata`` from
``leaderboards/NAME.yaml``; ``--tasks`` names tasks or groups instead. ``--device auto`` uses CUDA
when the worker's torch sees a GPU (then dtype bfloat16 and no ``enforce_eager``), otherwise the
CPU (float32; vLLM with ``VLLM_TARGET_DEVICE=cpu``, ``VLLM_CPU_KVCACHE_SPACE=2``,
``enforce_eager``, ``max_model_len=2048``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("hf", "vllm")
VLLM_MAX_SEQS = 256  # vLLM's default max_num_seqs: the most sequences its scheduler runs at once
GENERATION = "generate_until"


# --------------------------------------------------------------------------- pure parts


def task_tokens(result: dict[str, Any]) -> int:
    """The tokens a task's throughput is measured in: generated tokens for a generation task,
    document tokens (one forward pass per document) otherwise.

    >>> task_tokens({"output_type": "generate_until", "gen_tokens": 40, "doc_tokens": 900})
    40
    >>> task_tokens({"output_type": "multiple_choice", "gen_tokens": 0, "doc_tokens": 900})
    900
    """
    return int(result["gen_tokens"] if result["output_type"] == GENERATION else result["doc_tokens"])


def raw_ratio(result: dict[str, Any], raw: dict[str, Any]) -> float | None:
    """Task tokens/s over the matching raw tokens/s (decode for generation tasks, prefill
    otherwise); None when either is missing or zero.

    >>> raw_ratio({"output_type": "generate_until", "gen_tokens": 50, "doc_tokens": 0, "seconds": 10.0},
    ...           {"prefill_tps": 1000.0, "decode_tps": 20.0})
    0.25
    """
    seconds = result.get("seconds") or 0.0
    key = "decode_tps" if result["output_type"] == GENERATION else "prefill_tps"
    base = raw.get(key) or 0.0
    if seconds <= 0 or base <= 0:
        return None
    return task_tokens(result) / seconds / base


def best_raw(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The raw measurement taken before the tasks and the one after, merged: the higher
    throughput of each kind (load from other jobs only ever slows a measurement down), with
    both kept under ``prefill_tps_runs`` / ``decode_tps_runs``.

    >>> r = best_raw({"prefill_tps": 100.0, "decode_tps": 9.0, "prefill_len": 8},
    ...              {"prefill_tps": 80.0, "decode_tps": 10.0, "prefill_len": 8})
    >>> r["prefill_tps"], r["decode_tps"], r["prefill_tps_runs"]
    (100.0, 10.0, [100.0, 80.0])
    """
    out = dict(before)
    for key in ("prefill_tps", "decode_tps"):
        runs = [before[key], after[key]]
        out[key] = max(runs)
        out[f"{key}_runs"] = runs
    return out


def passes_per_doc(result: dict[str, Any]) -> float | None:
    """Forward rows (hf) or engine prompts (vllm) per document of a loglikelihood task;
    generated tokens per document of a generation task."""
    docs = result.get("documents") or 0
    if not docs:
        return None
    if result["output_type"] == GENERATION:
        return result["gen_tokens"] / docs
    return result["model_rows"] / docs


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def suite_rows(counts: Sequence[dict[str, Any]], workers: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One row per counted task: the estimate's documents and requests beside each worker's
    measurements (None for a backend not run or a task it failed), its docs/s and ratio to raw."""
    rows = []
    for c in counts:
        row: dict[str, Any] = {"task": c["task"], "output_type": c["output_type"],
                               "documents": c["documents"], "requests": c["requests"],
                               "prompt_tokens": c["prompt_tokens"]}
        for backend in BACKENDS:
            w = workers.get(backend)
            res = (w or {}).get("tasks", {}).get(c["task"])
            if not res or res.get("error"):
                row[backend] = None if not res else {"error": res["error"]}
                continue
            row[backend] = {
                **res,
                "docs_per_s": res["documents"] / res["seconds"] if res["seconds"] > 0 else None,
                "tokens_per_s": task_tokens(res) / res["seconds"] if res["seconds"] > 0 else None,
                "passes_per_doc": passes_per_doc(res),
                "model_share": res["model_s"] / res["seconds"] if res["seconds"] > 0 else None,
                "ratio_to_raw": raw_ratio(res, w["raw"]),
                "requests_match": res["requests"] == c["requests"] and res["documents"] == c["documents"],
            }
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The side-by-side table; ``*`` marks a backend that saw other requests or documents than
    counted beforehand, ``failed`` a task the backend could not run, ``–`` a backend not run.
    "in model" is the share of the task's time spent inside the model (hf: its forward passes;
    vllm: ``LLM.generate``), the rest being lm-eval's and the task's own work; "build s" the
    seconds to build the task (its data set, read whole whatever ``--limit`` is), timed apart.

    >>> r = {"task": "t", "output_type": "multiple_choice", "documents": 2, "requests": 8,
    ...      "hf": {"passes_per_doc": 1.0, "docs_per_s": 4.0, "ratio_to_raw": 0.9, "model_share": 0.5,
    ...             "build_s": 1.25, "requests_match": True},
    ...      "vllm": None}
    >>> print(markdown_table([r]).splitlines()[-1])
    | t | 2 | 8 | fwd 1.00 / – | 4.00 | – | 0.90 | – | 50 % / – | 1.2 / – |
    """
    head = ("| task | docs | requests | fwd/doc or gen tok/doc (hf / vllm) | hf docs/s | vllm docs/s "
            "| hf/raw | vllm/raw | in model (hf / vllm) | build s (hf / vllm) |\n"
            "|---|---:|---:|---|---:|---:|---:|---:|---|---|")
    lines = [head]
    for r in rows:
        cells = {}
        for b in BACKENDS:
            m = r.get(b)
            if m is None:
                cells[b] = ("–",) * 5
            elif "error" in m:
                cells[b] = ("failed",) * 5
            else:
                mark = "" if m.get("requests_match", True) else "*"
                share = m.get("model_share")
                cells[b] = (_fmt(m["passes_per_doc"]) + mark, _fmt(m["docs_per_s"]), _fmt(m["ratio_to_raw"]),
                            "–" if share is None else f"{100 * share:.0f} %", _fmt(m.get("build_s"), 1))
        kind = "gen" if r["output_type"] == GENERATION else "fwd"
        lines.append(f"| {r['task']} | {r['documents']} | {r['requests']} | {kind} {cells['hf'][0]} / "
                     f"{cells['vllm'][0]} | {cells['hf'][1]} | {cells['vllm'][1]} | {cells['hf'][2]} | "
                     f"{cells['vllm'][2]} | {cells['hf'][3]} / {cells['vllm'][3]} | {cells['hf'][4]} / {cells['vllm'][4]} |")
    return "\n".join(lines)


def metric_gap(rows: Sequence[dict[str, Any]]) -> tuple[float, str] | None:
    """The largest |hf - vllm| over the metric values both backends report for the same task
    (same documents, same prompts: distribution tasks agree to float noise, greedy generation
    tasks mostly; sampled ones need not), with ``task/metric``; None if no value is shared.

    >>> metric_gap([{"task": "t", "hf": {"results": {"wd,none": 0.25, "kl,none": 1.0}},
    ...              "vllm": {"results": {"wd,none": 0.2501, "kl,none": 1.0}}}])
    (0.0001, 't/wd,none')
    """
    best: tuple[float, str] | None = None
    for r in rows:
        a, b = (r.get(x) or {} for x in BACKENDS)
        shared = set(a.get("results") or {}) & set(b.get("results") or {})
        for key in sorted(shared - {"sample_len"}):
            gap = round(abs(a["results"][key] - b["results"][key]), 12)
            if best is None or gap > best[0]:
                best = (gap, f"{r['task']}/{key}")
    return best


def raw_lines(workers: dict[str, dict[str, Any] | None]) -> list[str]:
    """One line per backend: its raw throughput, the shapes measured, and versions."""
    out = []
    for b in BACKENDS:
        w = workers.get(b)
        if not w:
            continue
        if w.get("error"):
            out.append(f"{b}: failed: {w['error']}")
            continue
        r = w["raw"]
        cache = {True: ", prefix caching on", False: ", prefix caching off"}.get(w.get("prefix_caching"), "")
        out.append(
            f"{b} ({w['model_class']}, {w['device']}, {w['dtype']}{cache}; load {w['load_s']:.1f} s): raw prefill "
            f"{_fmt(r['prefill_tps'], 0)} tok/s ({r['prefill_seqs']} x {r['prefill_len']} tokens, batch "
            f"{r['prefill_batch']}), decode {_fmt(r['decode_tps'], 1)} tok/s (batch {r['decode_batch']}, "
            f"{r['decode_tokens']} tokens after {r['decode_context']})")
    return out


def hardware_line(info: dict[str, Any]) -> str:
    """
    >>> hardware_line({"cpu": "Xeon", "cores": 2, "gpu": None, "versions": {"torch": "2.13.0+cpu"}})
    'CPU Xeon, 2 cores, no GPU; torch 2.13.0+cpu'
    """
    gpu = info.get("gpu") or "no GPU"
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
    load = info.get("loadavg")
    busy = f"; load average {load[0]:.2f} at the start, {load[1]:.2f} at the end" if load else ""
    return f"CPU {info['cpu']}, {info['cores']} cores, {gpu}; {versions}{busy}"


# --------------------------------------------------------------------------- orchestrator


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def json_object(text: str | None, flag: str = "--metadata") -> dict[str, Any]:
    """
    >>> json_object('{"split": "test"}')
    {'split': 'test'}
    >>> json_object("split=test")
    Traceback (most recent call last):
    SystemExit: --metadata: expected a JSON object, got 'split=test'
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SystemExit(f"{flag}: expected a JSON object, got {text!r}")
    return value


def limit_arg(text: str) -> int | None:
    """``--limit``: a positive number of documents per task, or ``none`` for whole tasks."""
    if text.lower() == "none":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or none, got {text!r}")
    return int(text)


def resolve_tasks(args: argparse.Namespace) -> tuple[list[str], dict[str, Any], int | None]:
    """Task names, lm-eval metadata and the leaderboard's max_gen_toks setting (if any)."""
    if args.tasks:
        names = [t.strip() for t in args.tasks.split(",") if t.strip()]
        return names, json_object(args.metadata), None
    from opinbench.leaderboard.definition import load_definition

    d = load_definition(args.leaderboard)
    metadata = d.metadata | json_object(args.metadata)
    cap = d.settings.get("max_gen_toks")
    return list(d.task_names), metadata, int(cap) if cap else None


def count_suite(names: Sequence[str], tokenizer: Any, **kw: Any) -> tuple[list[Any], dict[str, str]]:
    """`count_tasks` name by name, so that a task that cannot be built here (e.g. smartvote
    without its private answers file) is left out with its error (``{name: error}``) instead of
    stopping the suite (each call indexes lm-eval's tasks again: ~5 s a name)."""
    from opinbench.errors import OpinbenchError
    from opinbench.estimate.counts import count_tasks

    counts, skipped = [], {}
    for name in names:
        try:
            counts += count_tasks([name], tokenizer, **kw)
        except (OpinbenchError, FileNotFoundError, ValueError, KeyError) as err:
            skipped[name] = f"{type(err).__name__}: {err}"
    return counts, skipped


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Count the suite's requests (`count_tasks`) and fix the shapes both workers measure."""
    from transformers import AutoTokenizer

    from opinbench.models import resolve

    names, metadata, leaderboard_cap = resolve_tasks(args)
    model = str(resolve(args.model))
    tokenizer = AutoTokenizer.from_pretrained(model)
    t0 = time.perf_counter()
    counts, skipped = count_suite(names, tokenizer, limit=args.limit, apply_chat_template=not args.no_chat,
                                  metadata=metadata)
    counted_s = time.perf_counter() - t0
    ll = [c for c in counts if c.output_type != GENERATION]
    gen = [c for c in counts if c.output_type == GENERATION]
    cap = args.max_gen_toks or leaderboard_cap
    task_max_gen = max((c.max_gen_tokens // max(1, c.generations) for c in gen), default=256)
    return {
        "model": model,
        "model_name": args.model,
        "tasks": [c.task for c in counts],
        "metadata": metadata,
        "limit": args.limit,
        "chat": not args.no_chat,
        "max_gen_toks": cap,
        "batch_size": args.batch_size,
        "device": args.device,
        "dtype": args.dtype,
        "hf_model": args.hf_model,
        "vllm_model": args.vllm_model,
        "vllm_args": args.vllm_args or "",
        "raw_seconds": args.raw_seconds,
        "counts": [{"task": c.task, "output_type": c.output_type, "documents": c.documents,
                    "requests": c.requests, "prompt_tokens": c.prompt_tokens,
                    "generations": c.generations} for c in counts],
        "counted_s": counted_s,
        "skipped": skipped,
        # raw shapes: the suite's mean request lengths
        "prefill_len": round(sum(c.prompt_tokens for c in ll) / max(1, sum(c.requests for c in ll))) if ll else 256,
        "decode_context": round(sum(c.prompt_tokens for c in gen) / max(1, sum(c.requests for c in gen))) if gen else 256,
        # at least 32: decode tokens/s is (T-token run - 1-token run) / (T-1) tokens, noise below that
        "decode_tokens": max(32, int(cap or task_max_gen)),
        "gen_requests": max((c.requests for c in gen), default=args.batch_size),
    }


def run_worker(backend: str, python: str, spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one backend's worker subprocess; its JSON, or ``{"error": ...}`` with the log's tail."""
    spec_path, out_path, log_path = (workdir / f"{backend}.{x}" for x in ("spec.json", "json", "log"))
    spec_path.write_text(json.dumps(spec))
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                        "TOKENIZERS_PARALLELISM": "false"}
    cmd = [python, str(Path(__file__).resolve()), "--worker", backend, "--spec", str(spec_path), "--out", str(out_path)]
    print(f"[{backend}] {' '.join(cmd)}  (log: {log_path})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out_path.exists():
        tail = log_path.read_text(errors="replace")[-1500:]
        return {"error": f"worker exited with status {proc.returncode} after {wall:.0f} s; log {log_path}:\n{tail}"}
    out = json.loads(out_path.read_text())
    out["wall_s"] = wall
    return out


def merged_versions(per_backend: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One version per package; where the backends' environments differ, each one named.

    >>> merged_versions({"hf": {"torch": "2.13", "transformers": "5.24"},
    ...                  "vllm": {"torch": "2.13", "transformers": "5.19", "vllm": "0.32"}})
    {'torch': '2.13', 'transformers': '5.24 (hf) / 5.19 (vllm)', 'vllm': '0.32'}
    """
    out: dict[str, Any] = {}
    for pkg in dict.fromkeys(k for v in per_backend.values() for k in v):
        seen = {b: v[pkg] for b, v in per_backend.items() if pkg in v}
        values = set(seen.values())
        out[pkg] = values.pop() if len(values) == 1 else " / ".join(f"{v} ({b})" for b, v in seen.items())
    return out


def orchestrate(args: argparse.Namespace) -> int:
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    spec = plan(args)
    print(f"{len(spec['tasks'])} tasks counted in {spec['counted_s']:.1f} s: {', '.join(spec['tasks'])}",
          file=sys.stderr, flush=True)
    workdir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="bench_suite_"))
    workdir.mkdir(parents=True, exist_ok=True)
    pythons = {"hf": args.hf_python, "vllm": args.vllm_python}
    workers: dict[str, dict[str, Any] | None] = {}
    notes = [f"{name}: not run: {err}" for name, err in spec["skipped"].items()]
    t0 = time.perf_counter()
    for backend in BACKENDS:
        if backend in args.skip:
            workers[backend] = None
            notes.append(f"{backend}: skipped (--skip {backend})")
        elif not pythons[backend]:
            workers[backend] = None
            notes.append(f"{backend}: not run (no --vllm-python: give the python of a venv with vLLM, "
                         "e.g. one built by scripts/setup_vllm_cpu_env.sh)")
        else:
            workers[backend] = run_worker(backend, pythons[backend], spec, workdir)
    total = time.perf_counter() - t0
    rows = suite_rows(spec["counts"], workers)
    hardware = next((w["hardware"] for w in workers.values() if w and "hardware" in w),
                    {"cpu": cpu_name(), "cores": os.cpu_count(), "gpu": None, "versions": {}})
    versions = merged_versions({b: w["hardware"]["versions"] for b, w in workers.items() if w and "hardware" in w})
    hardware = hardware | {"versions": versions}
    if load_start is not None:  # 1-minute load averages: other jobs on the cores skew every number
        hardware["loadavg"] = [load_start, os.getloadavg()[0]]
    cap = spec["max_gen_toks"]
    print(f"\n## Suite on {spec['model_name']}, --limit {spec['limit']} per task, "
          f"{'max_gen_toks capped at ' + str(cap) if cap else 'the tasks own max_gen_toks'}, "
          f"batch size {spec['batch_size']} (hf); lm-eval models: hf = `{spec.get('hf_model', 'hf')}`, "
          f"vllm = `{spec.get('vllm_model', 'vllm')}`\n")
    print(hardware_line(hardware) + "\n")
    for line in raw_lines(workers) + notes:
        print(f"- {line}")
    print()
    print(markdown_table(rows))
    gap = metric_gap(rows)
    if gap:
        print(f"\nhf vs vllm, same documents: largest metric difference {gap[0]:.2g} ({gap[1]})")
    if any(r[b] and "error" not in r[b] and not r[b]["requests_match"] for r in rows for b in BACKENDS):
        print("\n`*`: that backend saw other requests or documents than counted beforehand (see the JSON).")
    for r in rows:
        for b in BACKENDS:
            if r[b] and "error" in r[b]:
                print(f"\n{r['task']} on {b} failed: {r[b]['error']}")
    print(f"\nworkers took {total:.0f} s (wall, model loads and raw measurements included); logs in {workdir}")
    if args.json:
        report = {"spec": spec, "hardware": hardware, "workers": workers, "rows": rows, "wall_s": total,
                  "notes": notes}
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0 if all(not (w or {}).get("error") for w in workers.values()) else 1


# --------------------------------------------------------------------------- worker


class Meter:
    """What the model is fed while a task runs: rows/prompts, tokens, seconds inside the model."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rows = 0  # hf: forward rows inside loglikelihood calls; vllm: engine prompts
        self.tokens = 0  # tokens of those rows (hf: padded)
        self.model_s = 0.0  # hf: inside the model's forward; vllm: inside LLM.generate
        self.engine_gen_tokens = 0  # vllm: generated token ids as the engine returned them
        self.requests: list[Any] = []  # lm-eval Instances, repeats included
        self.outputs: list[str] = []  # generate_until outputs
        self.in_loglikelihood = False


def _wrap_requests(lm: Any, meter: Meter) -> None:
    """Record the requests lm-eval hands the model (the evaluator calls ``lm.<request type>``)."""
    for name in ("loglikelihood", "generate_until"):
        original = getattr(lm, name)

        def wrapped(requests, *a, _original=original, _name=name, **kw):
            meter.requests.extend(requests)
            meter.in_loglikelihood = _name == "loglikelihood"
            try:
                out = _original(requests, *a, **kw)
            finally:
                meter.in_loglikelihood = False
            if _name == "generate_until":
                meter.outputs.extend(out)
            return out

        setattr(lm, name, wrapped)


def _hf_hooks(model: Any, meter: Meter, cuda: bool) -> None:
    """Forward hooks, as bench_opinionqa_wd.py: rows of loglikelihood batches, time of every forward."""
    import torch

    started = [0.0]

    def pre(_m, a, kw):
        if cuda:
            torch.cuda.synchronize()
        ids = a[0] if a else kw["input_ids"]
        if meter.in_loglikelihood:
            meter.rows += ids.shape[0]
            meter.tokens += ids.numel()
        started[0] = time.perf_counter()

    def post(_m, _a, _kw, _out):
        if cuda:
            torch.cuda.synchronize()
        meter.model_s += time.perf_counter() - started[0]

    model.register_forward_pre_hook(pre, with_kwargs=True)
    model.register_forward_hook(post, with_kwargs=True)


def prefix_cache_tokens(llm: Any) -> tuple[int, int] | None:
    """vLLM's running totals of prompt tokens looked up in / served from its prefix cache
    (``vllm:prefix_cache_queries`` / ``_hits``; None when the engine keeps no stats)."""
    try:
        metrics = llm.get_metrics()
    except Exception:  # stats off (disable_log_stats) or an engine without them
        return None
    total = {"vllm:prefix_cache_queries": 0, "vllm:prefix_cache_hits": 0}
    for m in metrics:
        if m.name in total:
            total[m.name] += int(getattr(m, "value", 0))
    return total["vllm:prefix_cache_queries"], total["vllm:prefix_cache_hits"]


def _vllm_meter(llm: Any, meter: Meter) -> None:
    original = llm.generate

    def generate(prompts, *a, **kw):
        t0 = time.perf_counter()
        outs = original(prompts, *a, **kw)
        meter.model_s += time.perf_counter() - t0
        meter.rows += len(outs)
        for o in outs:
            meter.tokens += len(o.prompt_token_ids or [])
            meter.engine_gen_tokens += sum(len(c.token_ids) for c in o.outputs)
        return outs

    llm.generate = generate


def _random_ids(n: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(length)] for _ in range(n)]


def raw_hf(lm: Any, spec: dict[str, Any], cuda: bool) -> dict[str, Any]:
    """The HF model alone: prefill over batches of prompt-length rows, decode with generate."""
    import torch

    model, vocab = lm.model, lm.model.config.vocab_size
    dev = next(model.parameters()).device
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    b, length = spec["batch_size"], spec["prefill_len"]
    seqs, elapsed, i = 0, 0.0, 1
    with torch.no_grad():  # as lm-eval's _model_call
        model(torch.tensor(_random_ids(b, length, vocab, 0), device=dev))  # warm-up
        while elapsed < spec["raw_seconds"] or seqs < 2 * b:
            ids = torch.tensor(_random_ids(b, length, vocab, i), device=dev)
            sync()
            t0 = time.perf_counter()
            model(ids).logits
            sync()
            elapsed += time.perf_counter() - t0
            seqs, i = seqs + b, i + 1
    prefill = seqs * length / elapsed
    bd = min(b, spec["gen_requests"])
    ctx, steps = spec["decode_context"], spec["decode_tokens"]
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id

    def gen(tokens: int, seed: int) -> float:
        ids = torch.tensor(_random_ids(bd, ctx, vocab, seed), device=dev)
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=pad)
        sync()
        return time.perf_counter() - t0

    gen(4, 10_000)  # warm-up
    t1 = min(gen(1, 10_001), gen(1, 10_002))
    t_t = gen(steps, 10_003)
    return {"prefill_tps": prefill, "prefill_len": length, "prefill_seqs": seqs, "prefill_batch": b,
            "prefill_s": elapsed, "decode_tps": bd * (steps - 1) / max(1e-9, t_t - t1), "decode_batch": bd,
            "decode_context": ctx, "decode_tokens": steps, "decode_s": t_t, "first_token_s": t1}


def raw_vllm(lm: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """The vLLM engine alone: 1-token generation over prompts (prefill), then ``ignore_eos`` decode."""
    from vllm import SamplingParams, TokensPrompt

    llm, vocab = lm.model, lm._config.vocab_size
    length = spec["prefill_len"]
    n = 64  # prompts per generate call: lm-eval sends a task's prompts all at once ("auto")

    def run(ids: list[list[int]], tokens: int) -> float:
        if hasattr(llm, "reset_prefix_cache"):
            llm.reset_prefix_cache()
        params = SamplingParams(max_tokens=tokens, min_tokens=tokens, ignore_eos=True, temperature=0,
                                detokenize=False)
        t0 = time.perf_counter()
        llm.generate([TokensPrompt(prompt_token_ids=x) for x in ids], params, use_tqdm=False)
        return time.perf_counter() - t0

    run(_random_ids(4, length, vocab, 0), 1)  # warm-up
    seqs, elapsed, i = 0, 0.0, 1
    while elapsed < spec["raw_seconds"] or seqs < n:
        elapsed += run(_random_ids(n, length, vocab, i), 1)
        seqs, i = seqs + n, i + 1
    bd = min(VLLM_MAX_SEQS, spec["gen_requests"])
    ctx, steps = spec["decode_context"], spec["decode_tokens"]
    t1 = min(run(_random_ids(bd, ctx, vocab, 10_001), 1), run(_random_ids(bd, ctx, vocab, 10_002), 1))
    t_t = run(_random_ids(bd, ctx, vocab, 10_003), steps)
    return {"prefill_tps": seqs * length / elapsed, "prefill_len": length, "prefill_seqs": seqs,
            "prefill_batch": n, "prefill_s": elapsed, "decode_tps": bd * (steps - 1) / max(1e-9, t_t - t1),
            "decode_batch": bd, "decode_context": ctx, "decode_tokens": steps, "decode_s": t_t,
            "first_token_s": t1}


def _hardware(backend: str, cuda: bool) -> dict[str, Any]:
    import torch
    from importlib.metadata import PackageNotFoundError, version

    versions = {"torch": torch.__version__}
    for pkg in ("transformers", "lm_eval") + (("vllm",) if backend == "vllm" else ()):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if cuda else None, "versions": versions}


def _load_lm(backend: str, spec: dict[str, Any], cuda: bool, dtype: str) -> Any:
    from lm_eval.api.registry import get_model

    from opinbench.harness import lm_models

    lm_models.register()  # opinbench-hf, opinbench-vllm
    if backend == "hf":
        return get_model(spec["hf_model"])(pretrained=spec["model"], batch_size=spec["batch_size"],
                               device="cuda" if cuda else "cpu", dtype=dtype)
    # disable_log_stats=False: the engine then counts its prefix-cache hits (prefix_cache_tokens)
    kwargs: dict[str, Any] = {"pretrained": spec["model"], "dtype": dtype, "batch_size": "auto", "seed": 1234,
                              "disable_log_stats": False}
    if not cuda:
        kwargs |= {"enforce_eager": True, "max_model_len": 2048}
    from lm_eval.utils import simple_parse_args_string  # lm-eval's own --model_args parser (types too)

    kwargs |= simple_parse_args_string(spec["vllm_args"]) if spec["vllm_args"] else {}
    return get_model(spec.get("vllm_model", "vllm"))(**kwargs)


def worker(backend: str, spec: dict[str, Any], out_path: Path) -> int:
    """Load the model once, measure it raw, run every task through lm-eval, write JSON."""
    import torch

    cuda = spec["device"] == "cuda" or (spec["device"] == "auto" and torch.cuda.is_available())
    if backend == "vllm" and not cuda:  # read when vllm is imported (by lm-eval's registry)
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    dtype = spec["dtype"] or ("bfloat16" if cuda else "float32")
    from lm_eval import simple_evaluate

    from opinbench.estimate.counts import n_tokens
    from opinbench.harness.tasks import task_manager  # (importing opinbench.harness installs its log filters)

    t0 = time.perf_counter()
    lm = _load_lm(backend, spec, cuda, dtype)
    load_s = time.perf_counter() - t0
    def measure_raw() -> dict[str, Any]:
        raw = raw_hf(lm, spec, cuda) if backend == "hf" else raw_vllm(lm, spec)
        print(f"[{backend}] raw: {raw}", flush=True)
        return raw

    raw_before = measure_raw()
    meter = Meter()
    if backend == "hf":
        _hf_hooks(lm.model, meter, cuda)
    else:
        _vllm_meter(lm.model, meter)
    _wrap_requests(lm, meter)
    tm = task_manager(spec["metadata"])
    cap = spec["max_gen_toks"]
    tasks: dict[str, Any] = {}
    for c in spec["counts"]:
        name = c["task"]
        meter.reset()
        try:
            # the task built first, timed apart: its data set is read whole whatever --limit is,
            # a fixed cost that a full run spreads over all its documents
            t0 = time.perf_counter()
            task = tm.load([name])["tasks"][name]
            build_s = time.perf_counter() - t0
            cache0 = prefix_cache_tokens(lm.model) if backend == "vllm" else None
            t0 = time.perf_counter()
            out = simple_evaluate(
                model=lm, tasks=[task], task_manager=tm, limit=spec["limit"], apply_chat_template=spec["chat"],
                gen_kwargs={"max_gen_toks": int(cap)} if cap else None, log_samples=False, bootstrap_iters=0,
                metadata=spec["metadata"] or None,
            )
        except Exception as err:  # one task failing must not lose the others' numbers
            import traceback

            traceback.print_exc()
            tasks[name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        seconds = time.perf_counter() - t0
        cache1 = prefix_cache_tokens(lm.model) if backend == "vllm" else None
        # counted after the clock stopped: one forward per document = its longest request
        per_doc: dict[Any, int] = {}
        for inst in meter.requests:
            if inst.request_type != GENERATION:
                text = inst.args[0] + inst.args[1]
                per_doc[inst.doc_id] = max(per_doc.get(inst.doc_id, 0), n_tokens(lm.tokenizer, text))
        docs = {inst.doc_id for inst in meter.requests}
        results = {k: v for k, v in (out or {}).get("results", {}).get(name, {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        tasks[name] = {
            "output_type": c["output_type"], "build_s": build_s, "seconds": seconds, "model_s": meter.model_s,
            "documents": len(docs), "requests": len(meter.requests), "model_rows": meter.rows,
            "model_tokens": meter.tokens, "doc_tokens": sum(per_doc.values()),
            "gen_tokens": sum(n_tokens(lm.tokenizer, o) for o in meter.outputs),
            "engine_gen_tokens": meter.engine_gen_tokens if backend == "vllm" else None,
            # vllm: prompt tokens looked up in its prefix cache during the task, and those found there
            "prefix_cache_queries": cache1[0] - cache0[0] if cache0 and cache1 else None,
            "prefix_cache_hits": cache1[1] - cache0[1] if cache0 and cache1 else None,
            "results": results,
        }
        print(f"[{backend}] {name}: {json.dumps(tasks[name])}", flush=True)
    # measured again after the tasks (the meters still count, but nothing reads them any more)
    raw = best_raw(raw_before, measure_raw())
    model_class = f"{type(lm).__module__}.{type(lm).__name__}"
    try:
        prefix_caching = lm.model.llm_engine.vllm_config.cache_config.enable_prefix_caching if backend == "vllm" else None
    except AttributeError:
        prefix_caching = None
    report = {"backend": backend, "model_class": model_class, "device": "cuda" if cuda else "cpu",
              "dtype": dtype, "load_s": load_s, "prefix_caching": prefix_caching, "raw": raw, "tasks": tasks,
              "hardware": _hardware(backend, cuda)}
    out_path.write_text(json.dumps(report, indent=2))
    return 0


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leaderboard", default="opinbench", help="take the tasks and --metadata of leaderboards/NAME.yaml")
    ap.add_argument("--tasks", help="comma-separated tasks or groups instead of a leaderboard")
    ap.add_argument("--metadata", help="lm-eval --metadata JSON (merged over the leaderboard's)")
    ap.add_argument("--limit", type=limit_arg, default=8,
                    help="documents per task, as lm-eval --limit (default 8; none: whole tasks)")
    ap.add_argument("--model", default="smollm2", help="packaged model name or HF folder")
    ap.add_argument("--no-chat", action="store_true", help="without the chat template")
    ap.add_argument("--max-gen-toks", type=int,
                    help="cap every generation task's max_gen_toks (lm-eval gen_kwargs); default: the tasks' own "
                         "(or the leaderboard's setting)")
    ap.add_argument("--batch-size", type=int, default=16, help="hf batch size (vllm: lm-eval's 'auto')")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--dtype", help="model dtype (default: bfloat16 on CUDA, float32 on the CPU)")
    ap.add_argument("--hf-model", default="hf",
                    help="lm-eval model for the hf side (opinbench-hf: opinbench.harness.fast_hf)")
    ap.add_argument("--vllm-model", default="vllm", choices=("vllm", "opinbench-vllm"),
                    help="lm-eval model for the vllm side (opinbench-vllm: opinbench.harness.vllm_model)")
    ap.add_argument("--hf-python", default=sys.executable, help="python for the hf worker (default: this one)")
    ap.add_argument("--vllm-python", help="python of a venv with vLLM and lm-eval (vllm is skipped without it)")
    ap.add_argument("--vllm-args", help="extra vllm model_args, k=v,k=v (e.g. enable_prefix_caching=False)")
    ap.add_argument("--skip", action="append", default=[], choices=BACKENDS, help="leave a backend out")
    ap.add_argument("--raw-seconds", type=float, default=5.0, help="least seconds of raw prefill timing per backend")
    ap.add_argument("--log-dir", help="folder for the workers' specs, logs and JSON (default: a temp folder)")
    ap.add_argument("--json", help="also write everything measured to this file")
    ap.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # this checkout's opinbench, in the orchestrator as in the workers (PYTHONPATH, run_worker)
    sys.path.insert(0, str(REPO))
    if args.worker:
        return worker(args.worker, json.loads(Path(args.spec).read_text()), Path(args.out))
    return orchestrate(args)


if __name__ == "__main__":  # vLLM's engine core is a spawned process: nothing runs on import
    sys.exit(main())
