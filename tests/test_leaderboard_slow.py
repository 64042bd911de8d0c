"""The issue's end-to-end check with real models (slow: minutes on 2 CPU cores; run with
``python -m pytest -m slow tests/test_leaderboard_slow.py``): SmolLM2-135M-Instruct, Gemma 3 270M
and an ``opinbench train sft`` adapter are submitted to ``smoke``, a worker empties the queue, the
site is built; a duplicate submission is refused."""

from __future__ import annotations

import json

import pytest

from opinbench.cli import main

pytestmark = pytest.mark.slow


def test_smoke_leaderboard_from_submissions_to_site(shared_data, tmp_path, monkeypatch, capsys):
    pytest.importorskip("peft")
    pytest.importorskip("trl")
    from opinbench.models import model_path
    from opinbench.train.config import SFTConfig
    from opinbench.train.sft import train_sft

    try:
        smol, gemma = model_path("smollm2"), model_path("gemma3")
    except Exception as exc:  # noqa: BLE001 - the packaged models are optional installs
        pytest.skip(f"packaged models not available: {exc}")
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    (adapter,) = train_sft(SFTConfig(model="smollm2", data="opinionqa", output_dir=str(tmp_path / "sft"),
                                     max_examples=8, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                                     max_steps=1, learning_rate=1e-3))
    store = ["--store", str(tmp_path / "lb.sqlite")]
    assert main(["leaderboard", "submit", "smoke", "--model", str(smol), "--submitter", "ci", *store]) == 0
    assert main(["leaderboard", "submit", "smoke", "--model", str(gemma), "--no-chat-template", *store]) == 0
    assert main(["leaderboard", "submit", "smoke", "--model", str(smol), "--peft", str(adapter), *store]) == 0
    assert main(["leaderboard", "submit", "smoke", "--model", str(smol), *store]) == 2
    assert "identical entry exists already: request 1" in capsys.readouterr().err
    assert main(["leaderboard", "worker", "--until-empty", *store]) == 0
    capsys.readouterr()  # the worker's own printout (lm-eval's tables) is not the status JSON
    assert main(["leaderboard", "status", "--json", *store]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in rows] == ["FINISHED"] * 3, [r.get("reason") for r in rows]
    assert main(["leaderboard", "build", "smoke", "--out", str(tmp_path / "site"), *store]) == 0
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert len(data["entries"]) == 3 and data["subset"] is True
