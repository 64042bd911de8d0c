"""`opinbench eval` and the dataset hooks catch a user's mistakes before a model loads (issue 12, items 1-4, 6, 7, 10)."""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.commands import evaluate
from opinbench.errors import ConfigError
from opinbench.harness import distribution, settings
from tests.helpers.opinionqa_files import write_tiny_release


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("release"), 4)


@pytest.fixture
def no_model(monkeypatch):
    """Packaged models resolve to a fake cache path; lm-eval must never start."""
    from opinbench import models

    monkeypatch.setattr(models, "resolve", lambda v: str(models.cache_root() / "models" / v) if v in models.PACKAGED else v)

    def boom():
        raise AssertionError("lm-eval started")

    import lm_eval.__main__

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", boom)


def eval_cli(capsys, *args):
    rc = main(["eval", *args])
    return rc, capsys.readouterr().err


def test_unknown_metadata_key_is_an_error_with_did_you_mean(no_model, release, capsys):
    rc, err = eval_cli(capsys, "--metadata", json.dumps({"groupz": "all", "source": str(release)}))
    assert rc == 2
    line = err.strip().splitlines()[-1]
    assert "unknown metadata key 'groupz'" in line and "did you mean 'groups'" in line
    assert "steering" in line and "split_seed" in line  # the accepted keys are listed


def test_bad_steering_and_missing_data_folder_fail_before_the_model(no_model, release, capsys, tmp_path):
    rc, err = eval_cli(capsys, "--metadata", json.dumps({"steering": "qaa", "source": str(release)}))
    assert rc == 2 and "steering must be one of" in err and "Traceback" not in err
    rc, err = eval_cli(capsys, "--metadata", json.dumps({"data_dir": str(tmp_path / "nowhere")}))
    assert rc == 2 and "does not exist" in err and "OPINBENCH_DATA_DIR" in err


def test_a_key_one_task_of_the_run_takes_is_accepted(no_model, release):
    # "subject" is vk_cot's, "groups" opinionqa_wd's: each task ignores the other's key.
    md = json.dumps({"source": str(release), "subject": "x", "groups": "all"})
    evaluate.preflight(evaluate.build_argv(["--tasks", "opinionqa_wd,vk_cot", "--metadata", md]))
    with pytest.raises(ConfigError, match="unknown metadata key 'subjekt'"):
        evaluate.preflight(evaluate.build_argv(["--tasks", "opinionqa_wd,vk_cot", "--metadata", md.replace("subject", "subjekt")]))


def test_misspelled_task_gets_suggestions(no_model, capsys):
    rc, err = eval_cli(capsys, "--tasks", "opinonqa_wd")
    assert rc == 2 and "did you mean opinionqa_wd" in err and "opinbench tasks" in err
    # A name far from every opinbench task is left to lm-eval (its own tasks).
    evaluate.preflight(["--tasks", "hellaswag"])


def test_tasks_command_lists_tasks_with_data_kind_and_description(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("opinionqa_wd "))
    assert "opinionqa" in line and "distribution" in line and "QA steering" in line
    assert any(x.startswith("vk_cot ") and "reasoning" in x for x in out.splitlines())
    assert "opinionqa_steered: opinionqa_wd, opinionqa_wd_bio, opinionqa_wd_portray" in out


def test_hook_refuses_a_close_misspelling_in_one_line(release):
    with pytest.raises(ConfigError, match="did you mean 'groups'") as info:
        distribution.load_dataset(data="opinionqa", source=str(release), groupz="all", config_source="x/opinionqa_wd.yaml")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "\n" not in str(info.value) and str(info.value).startswith("opinionqa_wd:")
    # lm-eval passes --model_args keys too: those are not errors inside the hook.
    out = distribution.load_dataset(data="opinionqa", source=str(release), pretrained="/m", dtype="float32",
                                    trust_remote_code=True, peft="/p", device="cpu", max_length=64)
    assert len(out["test"]) > 0


def test_hook_refuses_a_missing_data_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        distribution.load_dataset(data="opinionqa", data_dir=str(tmp_path / "none"))


def test_accepted_keys_come_from_the_hook_and_the_registry():
    from opinbench.harness import cot

    keys = settings.accepted_keys(cot.load_dataset, "anes")
    assert {"subject", "subject_group", "history", "scheme", "releases"} <= keys
    assert "groups" not in keys


def test_packaged_model_keeps_its_defaults_and_says_so(no_model):
    notes: list[str] = []
    argv = evaluate.build_argv(["--model", "hf", "--model_args", "pretrained=gemma3", "--tasks", "opinionqa_wd"], notes)
    assert argv[argv.index("--batch_size") + 1] == "16"
    assert "dtype=float32" in argv[argv.index("--model_args") + 1]
    assert "--apply_chat_template" not in argv  # gemma3 is a base model
    assert any("gemma3" in n and "without chat template" in n for n in notes)
    argv = evaluate.build_argv(["--model_args", "pretrained=smollm2,dtype=bfloat16", "--batch_size", "2",
                                "--no_apply_chat_template"])
    assert "dtype=bfloat16" in argv[argv.index("--model_args") + 1] and "dtype=float32" not in argv[argv.index("--model_args") + 1]
    assert argv[argv.index("--batch_size") + 1] == "2" and "--apply_chat_template" not in argv
    assert "--no_apply_chat_template" not in argv


def test_vllm_backends_keep_lm_evals_auto_batching(no_model):
    for model in ("vllm", "opinbench-vllm"):
        argv = evaluate.build_argv(["--model", model, "--model_args", "pretrained=smollm2",
                                    "--tasks", "opinionqa_wd"])
        assert argv[argv.index("--batch_size") + 1] == "auto"
        assert "dtype=float32" in argv[argv.index("--model_args") + 1]
    argv = evaluate.build_argv(["--model", "vllm", "--model_args", "pretrained=x", "--batch_size", "64"])
    assert argv[argv.index("--batch_size") + 1] == "64"


def test_output_folder_is_named_after_the_packaged_model(no_model):
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker

    from opinbench.models import cache_root

    argv = evaluate.build_argv([])
    assert evaluate.output_folder(argv) == Path("runs") / "smollm2"
    evaluate._name_packaged_folders()
    tracker = GeneralConfigTracker()
    tracker.log_experiment_args("hf", f"pretrained={cache_root() / 'models' / 'smollm2'},dtype=float32", None, None, False)
    assert tracker.model_name_sanitized == "smollm2"
    tracker.log_experiment_args("hf", "pretrained=HuggingFaceTB/SmolLM2-135M", None, None, False)
    assert tracker.model_name_sanitized == "HuggingFaceTB__SmolLM2-135M"


def test_echoed_command_can_be_pasted_back(monkeypatch, capsys, release, no_model):
    import lm_eval.__main__

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", lambda: None)
    md = json.dumps({"source": str(release), "groups": "standard"})
    assert main(["eval", "--metadata", md]) == 0
    echoed = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("lm_eval "))
    argv = shlex.split(echoed)
    assert argv[argv.index("--metadata") + 1] == md


def test_summary_line_after_the_table(tmp_path, capsys):
    folder = tmp_path / "smollm2"
    folder.mkdir()
    old = folder / "results_2026-01-01T00-00-00.000001.json"
    old.write_text(json.dumps({"results": {"opinionqa_wd": {"wd,none": 0.5, "wd_uniform,none": 0.1}}}))
    new = folder / "results_2026-01-02T00-00-00.000001.json"
    new.write_text(json.dumps({"results": {
        "opinionqa_wd": {"wd,none": 0.219, "wd_uniform,none": 0.171, "wd_human,none": 0.012},
        "vk_cot": {"acc,none": 0.5},
    }}))
    evaluate.print_summary(folder, {old})
    assert capsys.readouterr().out.strip() == "opinionqa_wd: WD 0.219: worse than answering uniformly (0.171); human bound 0.012"


def test_max_seq_lengths_hint_is_dropped_for_opinbench_tasks():
    from opinbench.harness import quiet_logs

    quiet_logs.install()
    f = next(f for f in logging.getLogger("lm_eval.api.task").filters if isinstance(f, quiet_logs.CustomKwargsHintFilter))
    ours = logging.LogRecord("lm_eval.api.task", logging.WARNING, "", 0,
                             "opinionqa_wd: Custom kwargs can be passed to `--metadata` in console (as json string) "
                             "or to the TaskManager.\nFor example --metadata='{\"max_seq_lengths\":[4096, 8192]}'.", None, None)
    theirs = logging.LogRecord("lm_eval.api.task", logging.WARNING, "", 0,
                               "ruler_niah: Custom kwargs can be passed to `--metadata` ...", None, None)
    assert not f.filter(ours) and f.filter(theirs)
