"""The offline path: a local transformers model as judge, end to end over lm-eval samples.

The default run uses a tiny random-weight model with SmolLM2's tokenizer (fast:
it checks the plumbing, chat template, prefill and parsing, not judgement); the
``slow`` test runs the packaged SmolLM2-135M-Instruct itself.
"""

from __future__ import annotations

import json
import time

import pytest

from opinbench.cli import main
from opinbench.llm.cache import ReplyCache
from opinbench.judging.faithfulness import run_faithfulness
from opinbench.llm.providers import ProviderSpec, make_provider
from opinbench.llm.runner import Budget, RunOptions
from opinbench.judging.samples import load_samples
from opinbench.judging.settings import faithfulness_settings
from tests.test_judging_fixtures import make_vk_run


def _smollm2_dir():
    from opinbench.errors import ConfigError
    from opinbench.models import model_path

    try:
        return model_path("smollm2")
    except ConfigError as err:
        pytest.skip(f"packaged model unavailable: {err}")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer random Llama with SmolLM2's tokenizer and chat template, saved as an HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(_smollm2_dir())
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-judge")
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_local_judge_plumbing_with_a_tiny_model(tiny_model, tmp_path, shared_data):
    out = make_vk_run(tmp_path, shared_data, n_docs=6)
    argv = [
        "judge",
        "faithfulness",
        "--samples",
        str(out),
        "--judge",
        f"local:{tiny_model}",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--control-data",
        str(shared_data / "value_kaleidoscope"),
        "--control-limit",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    res = json.loads(next(out.rglob("results_judge-faithfulness_*.json")).read_text())
    judge = res["config"]["judge"]
    assert judge["provider"] == "local" and judge["stats"]["failed"] == 0
    verdicts = [
        json.loads(x)
        for x in next(out.rglob("judge-faithfulness_verdicts_*.jsonl")).read_text().splitlines()
    ]
    replied = [v for v in verdicts if v["status"] in ("judged", "judge_invalid")]
    assert len(replied) == 5 + 2 * 3
    # The prefill is part of the recorded reply; random weights rarely name an option,
    # and whatever they say is parsed, never guessed.
    assert all(v["judge_reply"].startswith("Answer:") for v in replied)
    assert all((v["judge_answer"] is None) == (v["status"] == "judge_invalid") for v in replied)


def test_a_cached_rerun_never_loads_the_model(tiny_model, tmp_path, shared_data):
    samples = load_samples([make_vk_run(tmp_path, shared_data, n_docs=3)])
    settings = {"vk": faithfulness_settings("vk")}
    opts = RunOptions(progress=False)
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        first = make_provider(ProviderSpec.parse(f"local:{tiny_model}"))
        run_faithfulness(
            samples,
            provider=first,
            settings=settings,
            cache=cache,
            options=opts,
            budget=Budget(None),
        )
        assert first._client is not None
        again = make_provider(ProviderSpec.parse(f"local:{tiny_model}"))
        run = run_faithfulness(
            samples,
            provider=again,
            settings=settings,
            cache=cache,
            options=opts,
            budget=Budget(None),
        )
        assert again._client is None and run.stats.cached == run.stats.unique > 0


@pytest.mark.slow
def test_smollm2_judge_end_to_end(tmp_path, shared_data):
    """SmolLM2-135M as the judge, over 6 VK documents and 3 control records per condition.

    It runs and writes every file; its control accuracy is what it is (on this
    data it answers "Either" to nearly everything, which the control set exposes).
    """
    _smollm2_dir()
    out = make_vk_run(tmp_path, shared_data, n_docs=6)
    t = time.monotonic()
    argv = [
        "judge",
        "faithfulness",
        "--samples",
        str(out),
        "--judge",
        "local:smollm2",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--control-data",
        str(shared_data / "value_kaleidoscope"),
        "--control-limit",
        "3",
        "--no-progress",
    ]
    assert main(argv) == 0
    res = json.loads(next(out.rglob("results_judge-faithfulness_*.json")).read_text())
    assert res["config"]["judge"]["model"] == "smollm2" and res["config"]["judge"]["complete"]
    r = res["results"]["vk_cot"]
    assert (
        r["judge_control_explanation_acc,none"] == "N/A"
        or 0 <= r["judge_control_explanation_acc,none"] <= 1
    )
    print(
        f"smollm2 judge: {time.monotonic() - t:.1f} s; faithfulness {r['cot_faithfulness,none']}, "
        f"control {res['results']['judge_control']}"
    )
