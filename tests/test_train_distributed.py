"""``opinbench train`` on several processes: the accelerate configs, the main-process-only logic, and a
2-process CPU run (gloo, ``accelerate launch``) that must train what one process trains.

The launch tests are slow (two processes start, load torch, a tiny model and the data: about 30 s each
on two shared cores); the rest needs no second process: the collectives are replaced by fakes that
play the other rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")
pytest.importorskip("accelerate")

from opinbench.errors import ConfigError, DataError  # noqa: E402
from opinbench.train import checkpoint as C  # noqa: E402
from opinbench.train import distributed as D  # noqa: E402
from opinbench.train.config import GRPOConfig, parse_config  # noqa: E402
from tests.test_train_common import merged_model, tiny_wom  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = ROOT / "configs" / "accelerate"
CPU_CONFIG = ACCELERATE_CONFIGS / "cpu_2proc.yaml"

# Loss of each logged step, 1 process vs 2: float32 sums in another order (DDP's all-reduce instead of
# accumulation) may differ in the last bits; 1e-4 is far below the step-to-step changes of the curve.
LOSS_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- accelerate configs


def _launch_dests() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {a.dest for a in launch_command_parser()._actions}


@pytest.mark.parametrize("name, kind", [
    ("cpu_2proc.yaml", "MULTI_GPU"),  # accelerate's torchrun launcher; the processes pick MULTI_CPU/gloo
    ("multi_gpu_ddp.yaml", "MULTI_GPU"),
    ("deepspeed_zero2.yaml", "DEEPSPEED"),
    ("deepspeed_zero3.yaml", "DEEPSPEED"),
    ("fsdp2.yaml", "FSDP"),
])
def test_accelerate_configs_are_valid_for_the_installed_accelerate(name, kind):
    """Top-level keys through accelerate's own loader (it refuses unknown keys); nested DeepSpeed/FSDP
    keys against the launch flags they become (the launcher copies ``fsdp_config.x`` to ``--fsdp_x``)."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import constants

    path = ACCELERATE_CONFIGS / name
    config = load_config_from_file(str(path))
    assert str(config.distributed_type).rsplit(".", 1)[-1] == kind
    assert config.mixed_precision == "no", "precision is the opinbench config's (dtype, bf16, fp16)"
    dests = _launch_dests()
    for key in (config.deepspeed_config or {}):
        assert key in dests, f"{name}: deepspeed_config.{key} is not an accelerate launch setting"
    fsdp = config.fsdp_config or {}
    for key in fsdp:
        assert (key if key.startswith("fsdp_") else f"fsdp_{key}") in dests, f"{name}: fsdp_config.{key}"
    if fsdp:
        assert fsdp["fsdp_auto_wrap_policy"] in constants.FSDP_AUTO_WRAP_POLICY
        assert fsdp["fsdp_state_dict_type"] in constants.FSDP_STATE_DICT_TYPE
    if "zero_stage" in (config.deepspeed_config or {}):
        assert config.deepspeed_config["zero_stage"] == int(name[-6])
    text = path.read_text()
    assert ("NOT RUN" in text) == (name != "cpu_2proc.yaml"), "untested configs say so in their header"


def test_cpu_config_starts_two_cpu_processes():
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CPU_CONFIG))
    assert config.num_processes == 2 and config.use_cpu and config.num_machines == 1


# --------------------------------------------------------------------------- main process only (fakes)


def fake_config(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(process_index=rank, world_size=world, distributed_state=None,
                           per_device_train_batch_size=4, gradient_accumulation_steps=1)


def fake_broadcast(main_value):
    """accelerate's broadcast_object_list as a replica sees it: the main process's object arrives."""
    calls = []

    def broadcast(box, from_process=0):
        calls.append(from_process)
        if main_value is not None:
            box[0] = main_value
        return box

    return broadcast, calls


def test_run_on_main_replica_does_not_run_and_gets_the_main_result(monkeypatch):
    import accelerate.utils

    broadcast, calls = fake_broadcast(("ok", ("fresh", None)))
    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)
    ran = []
    out = D.run_on_main(fake_config(1, 2), lambda: ran.append(1) or ("resume", "x"), "preparing")
    assert out == ("fresh", None) and ran == [] and calls == [0]


def test_run_on_main_main_runs_once_and_a_main_error_reaches_the_replicas(monkeypatch):
    import accelerate.utils

    sent = []

    def broadcast(box, from_process=0):
        sent.append(list(box))
        return box

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast)
    assert D.run_on_main(fake_config(0, 2), lambda: 7, "x") == 7 and sent == [[("ok", 7)]]

    def boom():
        raise DataError("release.csv: Q1: counts: not a number")

    # the main process hands the error on (so no replica waits for ever), then raises its own error
    with pytest.raises(DataError, match="not a number"):
        D.run_on_main(fake_config(0, 2), boom, "STaR rationales")
    assert sent[-1] == [("error", "DataError: release.csv: Q1: counts: not a number")]
    # a replica raises a ConfigError saying where it happened
    broadcast_err, _ = fake_broadcast(sent[-1][0])
    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", broadcast_err)
    with pytest.raises(ConfigError, match=r"STaR rationales failed on the main process \(DataError: release"):
        D.run_on_main(fake_config(1, 2), boom, "STaR rationales")


def test_run_on_main_in_one_process_is_a_plain_call(monkeypatch):
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", lambda *a, **k: pytest.fail("no collective"))
    assert D.run_on_main(fake_config(0, 1), lambda: "x", "y") == "x"


def test_ranks_with_different_examples_are_refused(monkeypatch):
    import accelerate.utils

    a = D.examples_digest([{"id": "1"}, {"id": "2"}])
    b = D.examples_digest([{"id": "2"}, {"id": "1"}])  # same examples, another order: another shard split
    assert a != b
    monkeypatch.setattr(accelerate.utils, "gather_object", lambda objs: [a, b])
    with pytest.raises(ConfigError, match=rf"different training examples of all documents \(rank 0: {a[:12]}, "
                                          rf"rank 1: {b[:12]}\)"):
        D.same_on_every_rank(fake_config(0, 2), a, "training examples of all documents")
    monkeypatch.setattr(accelerate.utils, "gather_object", lambda objs: [a, a])
    D.same_on_every_rank(fake_config(1, 2), a, "training examples of all documents")


def test_log_file_is_written_by_the_main_process_only(tmp_path):
    from opinbench.train.common import JsonlLogCallback

    path = tmp_path / "train_log.jsonl"
    cb = JsonlLogCallback(path)
    cb.on_log(None, SimpleNamespace(global_step=1, is_world_process_zero=False), None, logs={"loss": 1.0})
    assert not path.exists()
    cb.on_log(None, SimpleNamespace(global_step=1, is_world_process_zero=True), None, logs={"loss": 1.0})
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"step": 1, "loss": 1.0}]


def test_describe_reports_the_global_batch():
    assert D.describe(fake_config(0, 2)) == {"world_size": 2, "distributed_type": "NO", "backend": None,
                                              "global_batch_size": 8}


# --------------------------------------------------------------------------- GRPO: batch arithmetic, vLLM


def test_grpo_batch_error_names_the_processes():
    with pytest.raises(ConfigError, match=r"per_device_train_batch_size \(2\) x processes \(1\) x "
                                          r"steps_per_generation \(3; default gradient_accumulation_steps\) = 6 "
                                          r"completions per generation batch must be a multiple of "
                                          r"num_generations = 4"):
        GRPOConfig(output_dir="out", per_device_train_batch_size=2, gradient_accumulation_steps=3, num_generations=4)
    # 2 x 1 x 2 = 4: TRL accepts it, so does opinbench (the old check ignored the processes)
    GRPOConfig(output_dir="out", per_device_train_batch_size=2, gradient_accumulation_steps=2, num_generations=4)


def test_trl_vllm_keys_pass_through_to_the_trainer(tmp_path):
    config = parse_config(GRPOConfig, [
        "--output_dir", str(tmp_path), "--use_vllm", "true", "--vllm_mode", "server",
        "--vllm_server_base_url", "http://10.0.0.2:8000", "--vllm_server_timeout", "600",
    ])
    args = config.trainer_args(tmp_path / "trainer")
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url, args.vllm_server_timeout) == (
        True, "server", "http://10.0.0.2:8000", 600.0)
    colocate = parse_config(GRPOConfig, ["--output_dir", str(tmp_path), "--use_vllm", "true",
                                         "--vllm_gpu_memory_utilization", "0.4", "--vllm_tensor_parallel_size", "2"])
    assert (colocate.vllm_mode, colocate.vllm_gpu_memory_utilization, colocate.vllm_tensor_parallel_size) == (
        "colocate", 0.4, 2)
    # where the server listens is not what is trained: a resume may move it
    assert "vllm_server_base_url" not in config.training_fingerprint()
    assert config.training_fingerprint()["use_vllm"] is True
    with pytest.raises(ConfigError, match=r"vllm_mode must be one of \('colocate', 'server'\), got 'colo'"):
        parse_config(GRPOConfig, ["--output_dir", str(tmp_path), "--use_vllm", "true", "--vllm_mode", "colo"])


@pytest.mark.parametrize("mode, needs", [("colocate", "needs vllm installed in the trainer processes:"),
                                         ("server", "needs vllm and requests installed in the trainer processes too")])
def test_use_vllm_without_vllm_fails_before_the_model_loads(monkeypatch, tmp_path, capsys, mode, needs):
    import importlib

    from opinbench.cli import main

    trl_imports = importlib.import_module("trl.import_utils")
    monkeypatch.setattr(trl_imports, "is_vllm_available", lambda *a, **k: False)
    monkeypatch.setattr(trl_imports, "is_requests_available", lambda: False)
    # a model that does not exist: reaching the model load would fail with another message
    rc = main(["train", "grpo", "--output_dir", str(tmp_path / "out"), "--model", str(tmp_path / "no-model"),
               "--use_vllm", "true", "--vllm_mode", mode])
    err = capsys.readouterr().err
    assert rc == 2 and f"use_vllm: true (vllm_mode: {mode}) {needs}" in err
    assert "pip install 'trl[vllm]'" in err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 2 processes (slow)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"  # what accelerate gives each of the 2 processes; the same for the 1-process run
    return env


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def one_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "opinbench", *argv], cwd)


def two_processes(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # `accelerate launch` (the console script runs accelerate.commands.accelerate_cli:main)
    return _run([sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch",
                 "--config_file", str(CPU_CONFIG), "-m", "opinbench", *argv], cwd)


def logged(run: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of every log line with ``key``, from the trainer's own trainer_state.json."""
    state = json.loads((C.last_trainer_checkpoint(run) / "trainer_state.json").read_text())
    return [(h["step"], h[key]) for h in state["log_history"] if key in h]


@pytest.fixture(scope="module")
def sft_runs(tmp_path_factory):
    """The same distributional SFT, global batch 8 in the same order: 1 process x 4 x 2 accumulation
    steps, and 2 processes x 4 (accelerate gives rank r the batches r, r + 2, ... of one sampler)."""
    from tests.helpers.opinionqa_files import write_tiny_release
    from tests.helpers.tiny_models import build_model

    root = tmp_path_factory.mktemp("distributed")
    model = build_model("merged", root / "model")
    release = write_tiny_release(root / "release", 24)  # 48 training documents
    cfg = root / "sft.yaml"
    cfg.write_text(
        f"model: {model}\ndata: opinionqa\ntask_metadata: {{source: {release}}}\ntest_fraction: 0.5\n"
        "per_device_train_batch_size: 4\nmax_steps: 8\nlearning_rate: 0.003\nlora_dropout: 0.0\n"
        "save_steps: 8\nlogging_steps: 1\n"
    )
    one = one_process(["train", "sft", "--config", str(cfg), "--output_dir", str(root / "one"),
                       "--gradient_accumulation_steps", "2", "--num_threads", "1"], root)
    two = two_processes(["train", "sft", "--config", str(cfg), "--output_dir", str(root / "two"),
                         "--gradient_accumulation_steps", "1", "--merge", "true"], root)
    return root, one, two


@pytest.mark.slow
def test_two_processes_give_the_loss_curve_of_one(sft_runs):
    root, _, _ = sft_runs
    one, two = logged(root / "one", "loss"), logged(root / "two", "loss")
    assert [s for s, _ in one] == [s for s, _ in two] == list(range(1, 9))
    diffs = [abs(a - b) for (_, a), (_, b) in zip(one, two)]
    assert max(diffs) <= LOSS_TOLERANCE, list(zip(one, two))
    # the curve moves far more than the tolerance, so equal curves are not two flat lines
    assert max(v for _, v in one) - min(v for _, v in one) > 100 * LOSS_TOLERANCE
    for key in ("learning_rate", "epoch"):
        assert logged(root / "one", key) == logged(root / "two", key)
    # letter_mass is averaged over both processes' batches, as the loss is
    assert max(abs(a - b) for (_, a), (_, b) in zip(logged(root / "one", "letter_mass"),
                                                    logged(root / "two", "letter_mass"))) <= 1e-5
    from safetensors.torch import load_file

    w1 = load_file(root / "one" / "adapter_model.safetensors")
    w2 = load_file(root / "two" / "adapter_model.safetensors")
    assert w1.keys() == w2.keys()
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) <= 1e-4


@pytest.mark.slow
def test_two_processes_write_each_file_once(sft_runs):
    root, _, two = sft_runs
    run = root / "two"
    meta = C.read_metadata(run)
    assert meta["complete"] and meta["train"]["processes"] == {
        "world_size": 2, "distributed_type": "MULTI_CPU", "backend": "gloo", "global_batch_size": 8}
    assert C.read_metadata(root / "one")["train"]["processes"]["world_size"] == 1
    lines = [json.loads(x) for x in (run / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == list(range(1, 9))  # one line per log, not one per rank
    assert two.stdout.splitlines().count(str(run)) == 1  # the folder printed once
    assert json.loads((run / C.RUN_FILE).read_text())["fingerprint"]["world_size"] == 2
    assert "world_size" not in json.loads((root / "one" / C.RUN_FILE).read_text())["fingerprint"]
    assert (run / "merged" / "model.safetensors").is_file()


@pytest.mark.slow
def test_two_process_grpo_samples_one_group_across_the_processes(tmp_path, merged_model, tiny_wom):
    """2 completions per process x 2 processes = one group of num_generations 4: refused in one process."""
    cfg = tmp_path / "grpo.yaml"
    cfg.write_text(
        f"model: {merged_model}\ndata: wom\ntask_metadata: {{source: {tiny_wom}}}\nindividuals: [SPD]\n"
        "per_device_train_batch_size: 2\nnum_generations: 4\nmax_steps: 2\nmax_completion_length: 8\n"
        "learning_rate: 0.001\nsave_steps: 100\ntarget_length: 4\n"
    )
    with pytest.raises(AssertionError, match=r"x processes \(1\) x"):
        one_process(["train", "grpo", "--config", str(cfg), "--output_dir", str(tmp_path / "one")], tmp_path)
    two_processes(["train", "grpo", "--config", str(cfg), "--output_dir", str(tmp_path / "two")], tmp_path)
    meta = C.read_metadata(tmp_path / "two")
    assert meta["train"]["processes"]["world_size"] == 2 and len(meta["train"]["mean_reward_per_step"]) == 2
    lines = [json.loads(x) for x in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "reward" in x] == [1, 2]

