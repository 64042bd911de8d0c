"""Real SmolLM2-135M-Instruct and real OpinionQA: the adapter evaluates with the plain ``lm_eval`` CLI.

Slow (minutes on 2 CPU cores): ``python -m pytest -m slow tests/test_train_slow.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

pytestmark = pytest.mark.slow


def test_real_adapter_evaluates_with_lm_eval_peft(shared_data, tmp_path, monkeypatch):
    from opinbench.models import model_path
    from opinbench.train import checkpoint as C
    from opinbench.train.config import SFTConfig
    from opinbench.train.evaluate import heldout
    from opinbench.train.sft import train_sft

    try:
        base = model_path("smollm2")
    except Exception as exc:  # noqa: BLE001 - the packaged model is an optional install
        pytest.skip(f"smollm2 not available: {exc}")
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    cfg = SFTConfig(model="smollm2", data="opinionqa", output_dir=str(tmp_path / "ckpt"), max_examples=8,
                    per_device_train_batch_size=4, gradient_accumulation_steps=1, max_steps=2,
                    learning_rate=1e-3)
    (run,) = train_sft(cfg)
    meta = C.read_metadata(run)
    assert meta["apply_chat_template"] is True and meta["base_model"]["path"] == str(base)

    limit = 20
    env = dict(os.environ, OPINBENCH_DATA_DIR=str(shared_data))
    out_dir = tmp_path / "lm_eval"
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={base},peft={run},dtype=float32",
        "--include_path", str(meta["eval_command"].split("--include_path ")[1].split(" ")[0]),
        "--tasks", "opinionqa_wd", "--metadata", json.dumps(meta["data"]["eval_metadata"]),
        "--apply_chat_template", "--limit", str(limit), "--batch_size", "4", "--device", "cpu",
        "--output_path", str(out_dir),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = list(out_dir.rglob("results_*.json"))
    wd_cli = json.loads(results.read_text())["results"]["opinionqa_wd"]["wd,none"]

    inproc = heldout(run, limit=limit, progress=False)
    assert inproc["n_docs"] == limit
    assert inproc["wd"]["checkpoint"] == pytest.approx(wd_cli, abs=1e-4)
    assert inproc["wd"]["checkpoint"] != pytest.approx(inproc["wd"]["base"], abs=1e-6)  # the adapter is applied
