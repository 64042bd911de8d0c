"""Config dataclasses on TRL's: YAML keys = CLI flags (TrlParser), paper defaults, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")  # the configs are TRL's config classes

from opinbench.cli import main  # noqa: E402
from opinbench.errors import ConfigError  # noqa: E402
from opinbench.train.config import GRPOConfig, SFTConfig, describe, parse_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_paper_defaults():
    s = SFTConfig(output_dir="x")  # SubPOP (Suh et al. 2025)
    assert (s.lora_r, s.lora_alpha, s.lora_dropout, s.lora_target_modules) == (8, 32, 0.05, ["q_proj", "v_proj"])
    assert s.learning_rate == 2e-4 and s.per_device_train_batch_size * s.gradient_accumulation_steps == 256
    assert s.mode == "distributional" and s.resolved_train_task == "opinionqa_wd" == s.resolved_eval_task
    g = GRPOConfig(output_dir="x")  # Berdoz et al. 2026, config/politicians.yaml
    assert (g.lora_r, g.lora_alpha, len(g.lora_target_modules)) == (32, 32, 7)
    assert (g.learning_rate, g.num_generations, g.beta, g.max_steps, g.max_completion_length) == (5e-6, 8, 0.0, 800, 600)
    assert (g.format_weight, g.length_weight, g.correct_weight) == (0.25, 0.01, 1.0)
    assert g.resolved_train_task == "wom_cot"


@pytest.mark.parametrize(
    "cls, kw, match",
    [
        (SFTConfig, {}, "output_dir is required"),
        (SFTConfig, {"mode": "rl"}, "mode must be one of"),
        (SFTConfig, {"data": "wom"}, "distributional SFT needs distribution data"),
        (SFTConfig, {"data": "nope"}, "unknown data 'nope'"),
        (SFTConfig, {"mode": "cot", "data": "vk", "rationales": "synthetic"}, "needs rationale_provider"),
        (SFTConfig, {"mode": "cot", "data": "anes"}, "has none by default"),
        (SFTConfig, {"test_fraction": 1.5}, "test_fraction"),
        (SFTConfig, {"train_split": "dev"}, "train_split must be"),
        (SFTConfig, {"task_metadata": {"split": "train"}}, "task_metadata may not set split"),
        (SFTConfig, {"task_metadata": {"seed": 1}}, "split_seed/test_fraction"),
        (SFTConfig, {"per_individual": True}, "per_individual needs individual-level data"),
        (SFTConfig, {"lora_r": "8"}, "expects an integer"),
        (SFTConfig, {"learning_rate": "fast"}, "expects a number"),
        (SFTConfig, {"merge": "yes"}, "expects true or false"),
        (SFTConfig, {"warmup_ratio": 1.5}, "warmup_ratio"),
        (GRPOConfig, {"num_generations": 3}, "must be a multiple of num_generations = 3"),
        (GRPOConfig, {"num_generations": 1, "per_device_train_batch_size": 1}, ">= 2"),
        (GRPOConfig, {"reward": "dense"}, "reward must be one of"),
        (GRPOConfig, {"data": "opinionqa_steerable"}, "unknown data"),
        (GRPOConfig, {"data": "subpop_train"}, "GRPO needs answer data"),
        (GRPOConfig, {"temperature": 0.0}, "temperature must be > 0"),
        (GRPOConfig, {"length_unit": "lines"}, "length_unit"),
    ],
)
def test_validation_says_what_to_change(cls, kw, match):
    kw = {"output_dir": "out"} | kw if match != "output_dir is required" else kw
    with pytest.raises(ConfigError, match=match):
        cls(**kw)


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("output_dir: out\nlearning_rate: 1\nlora_target_modules: [q_proj]\ntask_metadata: {groups: all}\n")
    c = parse_config(SFTConfig, ["--config", str(p), "--learning_rate", "0.5"])
    assert c.learning_rate == 0.5 and isinstance(c.learning_rate, float)
    assert c.lora_target_modules == ["q_proj"] and c.task_metadata == {"groups": "all"}
    p.write_text("output_dir: out\nlearnig_rate: 1\n")
    with pytest.raises(ConfigError, match="unknown config key 'learnig_rate'.*did you mean 'learning_rate'"):
        parse_config(SFTConfig, ["--config", str(p)])
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(SFTConfig, ["--config", str(p)])
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(SFTConfig, ["--config", str(tmp_path / "missing.yaml")])


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("learning_rate", "1e-4", 1e-4),
        ("merge", "true", True),
        ("lora_target_modules", "q_proj,v_proj", ["q_proj", "v_proj"]),
        ("lora_target_modules", "[q_proj, o_proj]", ["q_proj", "o_proj"]),
        ("task_metadata", '{"elections": 2021}', {"elections": 2021}),
        ("model", "123", "123"),
        ("max_examples", "null", None),
        ("individuals", "2021/deutschland:SPD", ["2021/deutschland:SPD"]),
    ],
)
def test_flag_values_parse_to_the_field_type(name, text, expected):
    config = parse_config(SFTConfig, ["--output_dir", "out", f"--{name}", text])
    assert getattr(config, name) == expected


def test_every_field_has_help_and_describe_lists_it():
    for cls in (SFTConfig, GRPOConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f.name
        text = describe(cls)
        assert all(f"\n{f.name}: " in "\n" + text for f in dataclasses.fields(cls))


def test_shipped_configs_load():
    for path in sorted((REPO / "configs" / "train").glob("*.yaml")):
        cls = GRPOConfig if "grpo" in path.name else SFTConfig
        cfg = parse_config(cls, ["--config", str(path)])
        assert cfg.output_dir.startswith("runs/train/"), path


def test_cli_print_config_applies_flags(capsys, tmp_path):
    cfg = REPO / "configs" / "train" / "opinionqa_sft_distributional_cpu.yaml"
    assert main(["train", "sft", "--config", str(cfg), "--learning_rate", "3e-4", "--print-config"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["learning_rate"] == 3e-4 and out["mode"] == "distributional"
    assert main(["train", "grpo", "--print-defaults"]) == 0
    assert "num_generations: 8" in capsys.readouterr().out
    assert main(["train", "sft", "--output_dir", str(tmp_path), "--lora_r", "x"]) == 2
    assert "config key 'lora_r' expects an integer" in capsys.readouterr().err


def test_fingerprint_ignores_where_and_how_it_is_logged():
    a = SFTConfig(output_dir="a", logging_steps=1)
    b = SFTConfig(output_dir="b", logging_steps=5, overwrite=True)
    assert a.training_fingerprint() == b.training_fingerprint()
    assert SFTConfig(output_dir="a", seed=1).training_fingerprint() != a.training_fingerprint()
    assert set(a.to_dict()) == {f.name for f in dataclasses.fields(SFTConfig)}


# --------------------------------------------------------------------------- on TRL's machinery


def test_config_is_the_trainers_arguments(tmp_path):
    import trl

    s = SFTConfig(output_dir="out")
    assert isinstance(s, trl.SFTConfig)
    args = s.trainer_args(tmp_path / "trainer")
    assert args.output_dir == str(tmp_path / "trainer") and s.output_dir == "out"
    g = GRPOConfig(output_dir="out", num_generations=4, per_device_train_batch_size=4)
    gargs = g.trainer_args(tmp_path / "trainer", reward_weights=[0.25, 1.0])
    # a copy, not a second __post_init__ (TRL's GRPOConfig refuses its own derived batch settings)
    assert isinstance(gargs, trl.GRPOConfig) and gargs.generation_batch_size == 4
    assert gargs.reward_weights == [0.25, 1.0] and g.reward_weights is None


def test_trainer_settings_opinbench_derives():
    """What the former hand mapping passed: no bf16 on a CPU, a log line per step, data_seed = seed,
    warm-up as transformers 5's ratio, gradient checkpointing as TRL's trainers (not the letter Trainer)."""
    import torch

    s = SFTConfig(output_dir="out", seed=3, dtype="bfloat16")
    assert s.use_cpu is (not torch.cuda.is_available())
    assert s.bf16 is (not s.use_cpu) and s.fp16 is False
    assert (s.logging_steps, s.data_seed, s.disable_tqdm, s.remove_unused_columns, s.report_to) == (1, 3, False, False, [])
    assert s.activation_checkpointing is False and s.save_total_limit == 2
    assert SFTConfig(output_dir="out", mode="cot", data="vk").activation_checkpointing is True
    g = GRPOConfig(output_dir="out")
    assert g.activation_checkpointing is True and g.warmup_steps == 0.1 and g.lr_scheduler_type == "cosine"
    with pytest.raises(ConfigError, match="warmup_ratio .* or warmup_steps .* not both"):
        GRPOConfig(output_dir="out", warmup_steps=10)


def test_parser_errors_say_what_to_change_and_help_documents_opinbench_fields():
    from opinbench.train.config import config_parser

    with pytest.raises(ConfigError, match="unknown flag or value '--learnig_rate'; did you mean 'learning_rate'"):
        parse_config(SFTConfig, ["--output_dir", "out", "--learnig_rate", "1"])
    with pytest.raises(ConfigError, match="config key 'max_steps' expects an integer, got 'many'"):
        parse_config(GRPOConfig, ["--output_dir", "out", "--max_steps", "many"])
    # TRL's fields are flags too
    assert parse_config(SFTConfig, ["--output_dir", "out", "--optim", "adafactor"]).optim == "adafactor"
    text = config_parser(SFTConfig).format_help()
    assert "--train_split" in text and "leakage guard" in text and "--per_individual" in text
