"""Done-when check of issue 19 on a real model: SmolLM2-135M, ``opinionqa_wd --limit 170`` (10 questions x 17
groups). lm-eval's published ``wd_stderr`` must be the question-clustered CR1 of the logged per-document WD,
computed here independently with numpy (within 10 %), and about 3x the naive figure. Slow (minutes on CPU)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def clustered_check(run: Path) -> dict[str, float]:
    """(published wd_stderr, CR1 by hand, naive) from a run folder's newest results and samples files."""
    results = json.loads(sorted(run.rglob("results_*.json"))[-1].read_text())["results"]["opinionqa_wd"]
    rows = [json.loads(line) for line in sorted(run.rglob("samples_opinionqa_wd_*.jsonl"))[-1].read_text().splitlines()]
    wd = np.array([r["wd"] for r in rows], dtype=float)
    q = np.array([r["doc"]["question_key"] for r in rows])
    resid = wd - wd.mean()
    keys = np.unique(q)
    sums = np.array([resid[q == k].sum() for k in keys])
    cr1 = math.sqrt(len(keys) / (len(keys) - 1) * float((sums**2).sum())) / wd.size
    return {"published": results["wd_stderr,none"], "cr1": cr1, "naive": wd.std(ddof=1) / math.sqrt(wd.size),
            "wd": results["wd,none"], "questions": len(keys), "documents": wd.size}


@pytest.mark.slow
def test_real_smollm2_run_publishes_the_clustered_stderr(shared_data, tmp_path):
    env = {**os.environ, "OPINBENCH_DATA_DIR": str(shared_data), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-m", "opinbench", "eval", "--limit", "170", "--output_path", str(tmp_path)],
                   check=True, env=env, timeout=3600)
    c = clustered_check(tmp_path)
    assert c["questions"] == 10 and c["documents"] == 170
    assert c["published"] == pytest.approx(c["cr1"], rel=0.10)
    assert c["published"] > 2 * c["naive"]
