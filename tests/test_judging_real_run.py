"""Slow: the local judge end to end over the samples of a real `vk_cot` run on SmolLM2.

Runs `lm_eval ... --tasks vk_cot --log_samples` on the packaged SmolLM2-135M-Instruct,
then `opinbench judge faithfulness` and `opinbench judge moderation` with the same model
as a local judge, and reads the lm-eval-shaped results the judges write beside the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from opinbench.cli import main
from opinbench.paths import tasks_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vk_run(shared_data, tmp_path_factory):
    from opinbench.models import model_path

    out = tmp_path_factory.mktemp("vk_cot")
    cmd = [
        sys.executable, "-m", "lm_eval", "run", "--model", "hf",
        "--model_args", f"pretrained={model_path('smollm2')},dtype=float32",
        "--include_path", str(tasks_dir()), "--tasks", "vk_cot", "--limit", "3",
        "--gen_kwargs", "max_gen_toks=96", "--apply_chat_template", "--batch_size", "3",
        "--output_path", str(out), "--log_samples",
    ]
    env = os.environ | {"OPINBENCH_DATA_DIR": str(shared_data), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_faithfulness_with_local_judge_over_a_real_run(vk_run, shared_data, tmp_path):
    argv = ["judge", "faithfulness", "--samples", str(vk_run), "--judge", "local:smollm2",
            "--cache", str(tmp_path / "cache.sqlite"), "--control-data", str(shared_data / "value_kaleidoscope"),
            "--control-limit", "3", "--no-progress"]
    assert main(argv) == 0
    res = json.loads(next(vk_run.rglob("results_judge-faithfulness_*.json")).read_text())
    row = res["results"]["vk_cot"]
    assert "cot_faithfulness,none" in row or row.get("n_excluded", 0) >= 0
    assert any(k.startswith("judge_control_") for k in row)
    # a second run is served entirely from the cache
    assert main(argv) == 0


def test_moderation_with_local_model_over_a_real_run(vk_run, tmp_path):
    argv = ["judge", "moderation", "--samples", str(vk_run), "--moderator", "local:smollm2",
            "--cache", str(tmp_path / "mod.sqlite"), "--no-progress"]
    assert main(argv) == 0
    res = json.loads(next(vk_run.rglob("results_judge-moderation_*.json")).read_text())
    assert "vk_cot" in res["results"]
