"""``opinbench train grpo`` end to end on a tiny random model and a tiny Wahl-o-Mat release."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

from opinbench.errors import ConfigError  # noqa: E402
from opinbench.train import checkpoint as C  # noqa: E402
from opinbench.train.config import GRPOConfig, SFTConfig  # noqa: E402
from opinbench.train.grpo import train_grpo  # noqa: E402
from tests.test_train_common import merged_model, tiny_wom  # noqa: E402,F401


def grpo_config(model, wom, out, **over):
    kw = dict(model=str(model), data="wom", task_metadata={"source": str(wom)}, output_dir=str(out),
              per_device_train_batch_size=4, num_generations=4, max_steps=2, max_completion_length=8,
              learning_rate=1e-3, num_threads=1, save_steps=1, target_length=4)
    return GRPOConfig(**(kw | over))


def test_per_individual_grpo_logs_every_reward_and_zero_variance_share(merged_model, tiny_wom, tmp_path):
    runs = train_grpo(grpo_config(merged_model, tiny_wom, tmp_path / "g", per_individual=True))
    assert [r.name for r in runs] == ["2099-testland-SPD", "2099-testland-Testpartei"]
    for run in runs:
        meta = C.read_metadata(run)
        assert meta["command"] == "grpo" and meta["data"]["train_task"] == "wom_cot"
        assert meta["data"]["eval_metadata"] == {"source": str(tiny_wom), "split": "test", "split_seed": 0,
                                                 "test_fraction": 0.3, "subject": meta["data"]["individual"]}
        assert meta["train"]["reward_weights"] == {"format_reward": 0.25, "length_reward": 0.01,
                                                   "correctness_reward": 1.0}
        assert len(meta["train"]["mean_reward_per_step"]) == 2
        assert meta["data"]["notes"]["stop_sequences"] == ["</answer>"]
        steps = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
        step = next(s for s in steps if "reward" in s)
        for key in ("rewards/format_reward/mean", "rewards/length_reward/mean", "rewards/correctness_reward/mean",
                    "frac_reward_zero_std", "invalid_share", "reward"):
            assert key in step, key
        # 8-token completions of a random model: always unparsable, so no format or correctness reward
        assert step["invalid_share"] == 1.0 and step["rewards/correctness_reward/mean"] == 0.0
        assert step["rewards/format_reward/mean"] == 0.0
        assert step["reward"] == pytest.approx(0.01 * step["rewards/length_reward/mean"], abs=1e-5)


def test_binary_reward_and_continuing_from_an_sft_adapter(merged_model, tiny_wom, tmp_path):
    from opinbench.train.sft import train_sft

    (sft,) = train_sft(SFTConfig(
        model=str(merged_model), data="wom", mode="cot", task_metadata={"source": str(tiny_wom)},
        output_dir=str(tmp_path / "sft"), individuals=["SPD"], per_device_train_batch_size=2,
        gradient_accumulation_steps=1, max_steps=1, num_threads=1, lora_r=4, max_length=512,
    ))
    (run,) = train_grpo(grpo_config(merged_model, tiny_wom, tmp_path / "grpo", reward="binary",
                                    individuals=["SPD"], init_adapter=str(sft)))
    meta = C.read_metadata(run)
    assert meta["train"]["reward_weights"] == {"correctness_reward": 1.0}
    assert meta["data"]["init_adapter"]["command"] == "sft"
    assert meta["data"]["init_adapter"]["data_hash"] == C.read_metadata(sft)["data"]["hash"]
    # still one adapter over the base model (the SFT one, trained further): r stays 4
    assert json.loads((run / "adapter_config.json").read_text())["r"] == 4
    with pytest.raises(ConfigError, match="no PEFT adapter"):
        train_grpo(grpo_config(merged_model, tiny_wom, tmp_path / "bad", init_adapter=str(tmp_path)))


def test_grpo_refuses_a_first_token_task(merged_model, tiny_wom, tmp_path):
    with pytest.raises(ConfigError, match="needs a generation task"):
        train_grpo(grpo_config(merged_model, tiny_wom, tmp_path / "x", train_task="wom_direct"))
