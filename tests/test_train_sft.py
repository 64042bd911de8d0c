"""``opinbench train sft`` end to end on tiny random models: checkpoints, metadata, resume, modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from opinbench.errors import ConfigError  # noqa: E402
from opinbench.train import checkpoint as C  # noqa: E402
from opinbench.train.sft import train_sft  # noqa: E402
from tests.test_train_common import merged_model, sft_config, tiny_release, tiny_wom  # noqa: E402,F401


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def distributional_run(merged_model, tiny_release, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sft") / "run"
    (run,) = train_sft(sft_config(merged_model, tiny_release, out, max_steps=3))
    return run


def test_checkpoint_carries_adapter_config_data_split_versions(distributional_run, merged_model, tiny_release):
    run = distributional_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", C.META_FILE, C.RUN_FILE):
        assert (run / name).is_file(), name
    meta = C.read_metadata(run)
    assert meta["complete"] and meta["command"] == "sft" and meta["config"]["mode"] == "distributional"
    assert meta["base_model"]["path"] == str(merged_model) and meta["apply_chat_template"] is True
    data = meta["data"]
    assert data["train_task"] == data["eval_task"] == "opinionqa_wd"
    assert data["train_metadata"]["split"] == "train" and data["eval_metadata"]["split"] == "test"
    assert data["split"] == {"train_split": "train", "split_seed": 0, "test_fraction": 0.5}
    assert data["hash"].startswith("sha256:") and data["n_examples"] == data["n_documents"] == 16
    assert {"torch", "transformers", "trl", "peft", "lm_eval", "opinbench"} <= set(meta["versions"])
    assert meta["train"]["global_step"] == 3
    assert f"peft={run.resolve()}" in meta["eval_command"] and "--apply_chat_template" in meta["eval_command"]
    adapter = json.loads((run / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 32 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    logs = [r for r in read_log(run) if "loss" in r]
    assert [r["step"] for r in logs] == [1, 2, 3] and all(0 <= r["letter_mass"] <= 1 for r in logs)


def test_adapter_evaluates_in_lm_eval_with_peft_and_in_process(distributional_run, merged_model, tiny_release):
    """``pretrained=BASE,peft=CKPT`` in lm-eval scores the adapter; the in-process scores are the same."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from opinbench.paths import tasks_dir
    from opinbench.train.evaluate import heldout

    meta = C.read_metadata(distributional_run)
    lm = HFLM(pretrained=str(merged_model), peft=str(distributional_run), batch_size=4, device="cpu", dtype="float32")
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=meta["data"]["eval_metadata"])
    out = simple_evaluate(model=lm, tasks=["opinionqa_wd"], task_manager=tm, apply_chat_template=True,
                          log_samples=True)
    samples = out["samples"]["opinionqa_wd"]
    result = heldout(distributional_run, out=distributional_run / "scores.jsonl", progress=False)
    rows = {json.loads(line)["id"]: json.loads(line) for line in (distributional_run / "scores.jsonl").open()}
    assert result["n_docs"] == len(samples) == 16
    for s in samples:
        theirs = [float(r[0][0]) for r in s["resps"]]
        np.testing.assert_allclose(rows[s["doc"]["id"]]["checkpoint_loglikelihoods"], theirs, atol=5e-5)
        assert rows[s["doc"]["id"]]["checkpoint"]["wd"] == pytest.approx(s["wd"], abs=1e-5)
    assert result["wd"]["checkpoint"] == pytest.approx(out["results"]["opinionqa_wd"]["wd,none"], abs=1e-5)
    assert result["wd"]["diff"] == pytest.approx(result["wd"]["checkpoint"] - result["wd"]["base"])


def test_rerun_of_a_finished_checkpoint_is_skipped(distributional_run, merged_model, tiny_release):
    before = (distributional_run / "adapter_model.safetensors").stat().st_mtime_ns
    assert train_sft(sft_config(merged_model, tiny_release, distributional_run, max_steps=3)) == [distributional_run]
    assert (distributional_run / "adapter_model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="holds a run with other settings.*max_steps: 3 -> 4"):
        train_sft(sft_config(merged_model, tiny_release, distributional_run, max_steps=4))


def test_resume_after_a_crash_continues_from_the_last_checkpoint(merged_model, tiny_release, tmp_path, monkeypatch):
    from transformers import TrainerCallback

    import opinbench.train.sft as sft_module

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("simulated crash")

    real = sft_module.JsonlLogCallback
    monkeypatch.setattr(sft_module, "JsonlLogCallback", lambda path: Crash())
    cfg = dict(max_steps=4, save_steps=1, lora_dropout=0.0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_sft(sft_config(merged_model, tiny_release, tmp_path / "crashed", **cfg))
    assert C.last_trainer_checkpoint(tmp_path / "crashed").name == "checkpoint-2"
    assert not (tmp_path / "crashed" / C.META_FILE).exists()
    monkeypatch.setattr(sft_module, "JsonlLogCallback", real)
    (run,) = train_sft(sft_config(merged_model, tiny_release, tmp_path / "crashed", **cfg))
    assert C.read_metadata(run)["train"]["global_step"] == 4
    assert [r["step"] for r in read_log(run) if "loss" in r] == [3, 4]  # resumed, not restarted
    (ref,) = train_sft(sft_config(merged_model, tiny_release, tmp_path / "straight", **cfg))
    from safetensors.torch import load_file

    a, b = load_file(run / "adapter_model.safetensors"), load_file(ref / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)


def test_answer_mode_trains_on_the_modal_letter(merged_model, tiny_release, tmp_path):
    (run,) = train_sft(sft_config(merged_model, tiny_release, tmp_path / "ans", mode="answer", merge=True))
    meta = C.read_metadata(run)
    assert meta["data"]["notes"]["objective"] == "nll" and meta["data"]["train_task"] == "opinionqa_wd"
    # the merged model is base + adapter
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8]])
    merged = AutoModelForCausalLM.from_pretrained(run / "merged")
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(merged_model), str(run))
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft(ids).logits, atol=1e-4, rtol=1e-4)


def test_answer_mode_on_wom_direct(merged_model, tiny_wom, tmp_path):
    from opinbench.train.config import SFTConfig

    cfg = SFTConfig(model=str(merged_model), data="wom", mode="answer", task_metadata={"source": str(tiny_wom)},
                    output_dir=str(tmp_path / "wd"), per_device_train_batch_size=4, gradient_accumulation_steps=1,
                    max_steps=1, num_threads=1)
    (run,) = train_sft(cfg)
    meta = C.read_metadata(run)
    assert meta["data"]["train_task"] == "wom_direct" and meta["data"]["n_examples"] == 14


def test_cot_mode_on_human_rationales_per_individual(merged_model, tiny_wom, tmp_path):
    from opinbench.train.config import SFTConfig

    cfg = SFTConfig(model=str(merged_model), data="wom", mode="cot", rationales="human",
                    task_metadata={"source": str(tiny_wom)}, output_dir=str(tmp_path / "cot"), per_individual=True,
                    per_device_train_batch_size=2, gradient_accumulation_steps=1, max_steps=1, num_threads=1,
                    max_length=512)
    runs = train_sft(cfg)
    assert [r.name for r in runs] == ["2099-testland-SPD", "2099-testland-Testpartei"]
    for run in runs:
        meta = C.read_metadata(run)
        assert meta["data"]["individual"].startswith("2099/testland:")
        assert meta["data"]["eval_metadata"]["subject"] == meta["data"]["individual"]
        assert meta["data"]["n_examples"] == 7 and meta["data"]["notes"]["rationales"] == "human"
        assert "--tasks wom_cot" in meta["eval_command"]


def test_cot_targets_mask_the_prompt(merged_model, tiny_wom, tmp_path):
    """The loss covers rationale + answer + EOS only; the prompt is tokenised as lm-eval does."""
    from opinbench.train.common import Context, Unit, load_model, load_tokenizer
    from opinbench.train.config import SFTConfig
    from opinbench.train.data import PromptRenderer, load_docs
    from opinbench.train.sft import build_cot_examples

    cfg = SFTConfig(model=str(merged_model), data="wom", mode="cot", task_metadata={"source": str(tiny_wom)},
                    output_dir=str(tmp_path), individuals=["SPD"], rationale_max_chars=8)
    tok = load_tokenizer(str(merged_model))
    renderer = PromptRenderer(load_model(str(merged_model), "float32"), tok, apply_chat_template=True)
    ctx = Context(cfg, "sft", str(merged_model), tok, renderer, True, load_docs(cfg))
    unit = Unit(None, tmp_path, ctx.tdocs.docs)
    build_cot_examples(ctx, unit)
    ex = unit.examples[0]
    n_prompt = sum(1 for x in ex["labels"] if x == -100)
    assert ex["input_ids"][:n_prompt] == renderer.lm.tok_encode(ex["prompt"])
    assert tok.decode(ex["input_ids"][n_prompt:]) == ex["completion"] + tok.eos_token
    assert ex["completion"].startswith("<reasoning>Kommenta") or ex["completion"].startswith("<reasoning>")
    assert ex["completion"].endswith("</answer>")


def test_wd_command_prints_base_checkpoint_and_paired_difference(distributional_run, capsys):
    from opinbench.cli import main

    assert main(["train", "wd", "--checkpoint", str(distributional_run), "--limit", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "opinionqa_wd on 8 held-out documents (2 questions)" in out
    assert out.count("\nwd ") == 1 and "±question" in out
    assert main(["train", "wd", "--checkpoint", str(distributional_run), "--limit", "8", "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_docs"] == 8 and set(result["wd"]) >= {"base", "checkpoint", "diff", "diff_stderr_clustered"}
