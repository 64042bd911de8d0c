"""The packaged small models through the real lm_eval CLI (slow: minutes on a laptop CPU).

Runs `lm_eval --model hf ... --include_path <tasks dir> --tasks opinionqa_wd` as a user
would, on SmolLM2-135M-Instruct with its chat template and on Gemma 3 270M (base) with a
completion prompt, and checks the results JSON and that the letter probabilities agree
with a direct computation from the model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from opinbench.metrics.letters import letter_probabilities

pytestmark = pytest.mark.slow

CASES = {"smollm2": True, "gemma3": False}  # model -> chat template


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request, shared_data, tmp_path_factory):
    from opinbench.models import model_path

    name = request.param
    path = model_path(name)
    out = tmp_path_factory.mktemp(f"run-{name}")
    tasks = subprocess.run([sys.executable, "-m", "opinbench.cli", "tasks-dir"], capture_output=True, text=True, check=True).stdout.strip()
    cmd = [
        "lm_eval", "--model", "hf", "--model_args", f"pretrained={path},dtype=float32",
        "--include_path", tasks, "--tasks", "opinionqa_wd", "--limit", "17", "--batch_size", "8",
        "--output_path", str(out), "--log_samples",
    ] + (["--apply_chat_template"] if CASES[name] else [])
    env = os.environ | {"OPINBENCH_DATA_DIR": str(shared_data), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = [json.loads(line) for line in next(out.rglob("samples_opinionqa_wd_*.jsonl")).read_text().splitlines()]
    return name, path, results, samples


def test_results_json_has_the_metrics(run):
    name, _, results, samples = run
    r = results["results"]["opinionqa_wd"]
    assert len(samples) == 17
    for key in ("wd", "kl", "onehot", "wd_uniform", "wd_human", "letter_mass"):
        assert math.isfinite(r[f"{key},none"]), key
        assert f"{key}_stderr,none" in r
    assert 0 <= r["wd,none"] <= 1
    assert r["wd_human,none"] < r["wd_uniform,none"]
    assert any(k.startswith("wd|") for k in r)
    # a template or tokenizer mismatch would put almost no mass on the letters
    assert r["letter_mass,none"] > 0.2, (name, r["letter_mass,none"])


def test_letter_probabilities_match_the_model(run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, path, _, samples = run
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    for s in samples[:3]:
        ctx = s["arguments"]["gen_args_0"]["arg_0"]
        letters = s["doc"]["letters"]
        ids = tok(ctx, add_special_tokens=False, return_tensors="pt")["input_ids"]
        if name == "gemma3":  # lm-eval adds the BOS token for Gemma (add_bos_token)
            ids = tok(ctx, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logp = model(ids).logits[0, -1].log_softmax(-1)
        ref = []
        for L in letters:
            p = 0.0
            for variant in (" " + L, L):
                t = tok(variant, add_special_tokens=False)["input_ids"]
                if len(t) == 1:
                    p += math.exp(float(logp[t[0]]))
            ref.append(p)
        got = letter_probabilities([float(r[0][0]) for r in s["resps"]], len(letters))
        ref = np.array(ref)
        np.testing.assert_allclose(got / got.sum(), ref / ref.sum(), rtol=2e-3, atol=1e-6)
