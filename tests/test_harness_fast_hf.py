"""``--model opinbench-hf`` gives lm-eval's ``hf`` numbers while scoring only the continuation positions."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from opinbench.paths import tasks_dir
from tests.helpers.opinionqa_files import write_tiny_release
from tests.helpers.tiny_models import build_model

pytest.importorskip("lm_eval")

from lm_eval.models.huggingface import HFLM  # noqa: E402

from opinbench.harness.fast_hf import MODEL_NAME, ContinuationHFLM  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_model("merged", tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("release"), 6)


def random_requests(n: int, vocab: int, seed: int = 0) -> list:
    """Mixed lengths, multi-token continuations, contexts shared by several continuations."""
    rng = random.Random(seed)
    out = []
    contexts = [[rng.randrange(4, vocab) for _ in range(rng.randrange(1, 90))] for _ in range(n // 3)]
    for i in range(n):
        ctx = contexts[i % len(contexts)]
        cont = [rng.randrange(4, vocab) for _ in range(rng.choice([1, 1, 2, 5]))]
        out.append((("c", "x"), ctx, cont))
    return out


@pytest.mark.parametrize("max_length", [None, 40], ids=["fits", "left-truncated"])
def test_same_loglikelihoods_and_greedy_flags_as_lm_eval(model_dir, max_length, caplog):
    kwargs = {"max_length": max_length} if max_length else {}
    lm = ContinuationHFLM(pretrained=str(model_dir), batch_size=5, device="cpu", dtype="float32", **kwargs)
    reqs = random_requests(60, lm.tokenizer.vocab_size)
    ours = lm._loglikelihood_tokens(reqs, disable_tqdm=True)
    theirs = HFLM._loglikelihood_tokens(lm, reqs, disable_tqdm=True)
    assert len(ours) == len(theirs) == len(reqs)
    for (a, ga), (b, gb) in zip(ours, theirs):
        assert a == pytest.approx(b, abs=1e-5)
        assert ga == gb
    truncated = [r.getMessage() for r in caplog.records if "truncated from the left" in r.getMessage()]
    assert bool(truncated) == bool(max_length)
    # the random model is not flat (tiny_models scales lm_head): some continuations are greedy
    assert len({round(x, 3) for x, _ in ours}) > 30


def test_logits_at_kept_positions_equal_full_logits(model_dir):
    lm = ContinuationHFLM(pretrained=str(model_dir), batch_size=2, device="cpu", dtype="float32")
    inps = torch.randint(4, lm.tokenizer.vocab_size, (3, 17))
    positions = torch.tensor([2, 9, 16])
    kept = lm._continuation_logits(inps, positions, keep_supported=True)
    full = lm._continuation_logits(inps, positions, keep_supported=False)
    assert kept.shape == (3, 3, lm.model.config.vocab_size)
    torch.testing.assert_close(kept, full, atol=1e-5, rtol=1e-5)


def run_task(lm, release: Path, chat: bool):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    rows = []
    handle = lm.model.register_forward_pre_hook(
        lambda _m, args, kwargs: rows.append((args[0] if args else kwargs["input_ids"]).shape[0]), with_kwargs=True
    )
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"source": str(release)})
    try:
        out = simple_evaluate(model=lm, tasks=["opinionqa_wd"], task_manager=tm, apply_chat_template=chat, log_samples=True)
    finally:
        handle.remove()
    return out, sum(rows)


@pytest.mark.parametrize("chat", [False, True], ids=["base", "chat"])
def test_opinionqa_wd_scores_equal_hf(model_dir, release, chat):
    hf_out, hf_rows = run_task(HFLM(pretrained=str(model_dir), batch_size=4, device="cpu", dtype="float32"), release, chat)
    fast_out, fast_rows = run_task(ContinuationHFLM(pretrained=str(model_dir), batch_size=4, device="cpu", dtype="float32"), release, chat)
    assert fast_rows == hf_rows == len(hf_out["samples"]["opinionqa_wd"])  # still one forward per document
    for a, b in zip(hf_out["samples"]["opinionqa_wd"], fast_out["samples"]["opinionqa_wd"], strict=True):
        assert a["doc_id"] == b["doc_id"] and a["arguments"] == b["arguments"]
        for ra, rb in zip(a["resps"], b["resps"], strict=True):
            assert float(rb[0][0]) == pytest.approx(float(ra[0][0]), abs=1e-5)
        assert b["wd"] == pytest.approx(a["wd"], abs=1e-6)
    assert fast_out["results"]["opinionqa_wd"]["wd,none"] == pytest.approx(hf_out["results"]["opinionqa_wd"]["wd,none"], abs=1e-6)


def test_registered_under_the_name_opinbench_eval_uses():
    from lm_eval.api.registry import get_model

    from opinbench.harness.lm_models import FAST_HF, register

    register()
    assert FAST_HF == MODEL_NAME
    assert get_model(MODEL_NAME) is ContinuationHFLM


def test_module_runs_lm_eval_cli_with_the_model_registered(model_dir, release, tmp_path):
    cmd = [
        sys.executable, "-m", "opinbench.harness.fast_hf", "run", "--model", MODEL_NAME,
        "--model_args", f"pretrained={model_dir},dtype=float32", "--include_path", str(tasks_dir()),
        "--tasks", "opinionqa_wd", "--limit", "3", "--metadata", json.dumps({"source": str(release)}),
        "--output_path", str(tmp_path / "out"),
    ]
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())
    assert results["config"]["model"] == MODEL_NAME
    assert 0 <= results["results"]["opinionqa_wd"]["wd,none"] <= 1


def test_encoding_memo_gives_lm_eval_encodings_as_fresh_lists(model_dir):
    lm = ContinuationHFLM(pretrained=str(model_dir), batch_size=2, device="cpu", dtype="float32")
    lm.ENCODE_MEMO_SIZE = 3
    texts = ["Answer: A", "Question: How safe is it?", "Answer: A", "x y z", "Answer: B", "Question: How safe is it?"]
    for text in texts:
        for kw in ({}, {"add_special_tokens": False}, {"left_truncate_len": 2}):
            first = lm.tok_encode(text, **kw)
            assert first == HFLM.tok_encode(lm, text, **kw)
            first.append(-1)  # a caller changing its list changes no one else's
            assert lm.tok_encode(text, **kw) == HFLM.tok_encode(lm, text, **kw)
    assert len(lm._encode_memo) == lm.ENCODE_MEMO_SIZE


def test_opinbench_eval_prints_a_command_line_that_registers_the_model(model_dir, release, tmp_path, monkeypatch, capsys):
    """The echoed line must run as printed: opinbench's models through their registering module."""
    from opinbench.commands import evaluate
    from opinbench.harness import lm_models, vllm_model

    assert lm_models.MODULES == {MODEL_NAME: "opinbench.harness.fast_hf", vllm_model.MODEL_NAME: "opinbench.harness.vllm_model"}
    monkeypatch.setattr("lm_eval.__main__.cli_evaluate", lambda: None)
    argv = ["--model", MODEL_NAME, "--model_args", f"pretrained={model_dir}", "--tasks", "opinionqa_wd",
            "--metadata", json.dumps({"source": str(release)}), "--output_path", str(tmp_path)]
    assert evaluate.run_lm_eval(argv) == 0
    echoed = [line for line in capsys.readouterr().err.splitlines() if "--include_path" in line]
    assert echoed and echoed[-1].startswith("python -m opinbench.harness.fast_hf ")
