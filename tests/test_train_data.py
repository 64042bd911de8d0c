"""Training documents: read through the task, split as the task splits, and never a test question."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")

from opinbench.cli import main  # noqa: E402
from opinbench.errors import ConfigError  # noqa: E402
from opinbench.harness.distribution import load_dataset as wd_dataset  # noqa: E402
from opinbench.train.config import GRPOConfig, SFTConfig  # noqa: E402
from opinbench.train.data import (  # noqa: E402
    LeakageError,
    check_leakage,
    load_docs,
    select_individuals,
    split_metadata,
    subsample,
)
from tests.test_train_common import tiny_release, tiny_wom  # noqa: E402,F401


def dist(qk):
    return {"id": f"d:{qk}", "question_key": qk, "distribution": [1.0]}


def ans(qk, ind, dataset="wom"):
    return {"id": f"a:{ind}:{qk}", "question_key": qk, "individual": ind, "subject": ind.split(":")[-1],
            "dataset": dataset}


@pytest.mark.parametrize(
    "train, test, leaking",
    [
        # distribution data: a question is test for every group
        ([dist("q1"), dist("q2")], [dist("q2")], {"d:q2"}),
        # answer data: a question is test for one individual only (per-individual splits)
        ([ans("q1", "e:SPD"), ans("q1", "e:CDU")], [ans("q1", "e:SPD")], {"a:e:SPD:q1"}),
        # VK splits by situation for all values alike: no unit
        ([ans("s1", "v:Honesty", "vk")], [ans("s1", "v:Justice", "vk")], {"a:v:Honesty:s1"}),
        # an answer document against a distribution task's test question: leaks whoever answers it
        ([ans("q3", "POLPARTY: Democrat", "opinionqa_steerable")], [dist("q3")], {"a:POLPARTY: Democrat:q3"}),
        ([dist("q4")], [ans("q4", "e:SPD")], {"d:q4"}),
        ([ans("q5", "e:SPD")], [ans("q6", "e:SPD")], set()),
    ],
)
def test_check_leakage_table(train, test, leaking):
    if leaking:
        with pytest.raises(LeakageError, match="test split of T"):
            check_leakage(train, test, eval_task="T")
        kept, dropped = check_leakage(train, test, eval_task="T", drop=True)
        assert dropped == len(leaking) and {d["id"] for d in kept} == {d["id"] for d in train} - leaking
    else:
        assert check_leakage(train, test, eval_task="T") == (train, 0)


def test_split_metadata_uses_the_split_keys_every_task_has():
    assert split_metadata("test", split_seed=3, test_fraction=0.2) == {
        "split": "test", "split_seed": 3, "test_fraction": 0.2}
    assert split_metadata("train", split_seed=3, test_fraction=0.2) == {
        "split": "train", "split_seed": 3, "test_fraction": 0.2}


def test_training_documents_are_the_tasks_train_side(tiny_release, tmp_path):
    cfg = SFTConfig(data="opinionqa", task_metadata={"source": str(tiny_release)}, output_dir=str(tmp_path),
                    test_fraction=0.5)
    td = load_docs(cfg)
    train = wd_dataset(source=str(tiny_release), split="train", test_fraction=0.5)["test"]
    test = wd_dataset(source=str(tiny_release), split="test", test_fraction=0.5)["test"]
    assert sorted(d["id"] for d in td.docs) == sorted(train["id"])
    assert {d["question_key"] for d in td.docs}.isdisjoint(test["question_key"])
    assert td.eval_metadata == {"source": str(tiny_release), "split": "test", "split_seed": 0, "test_fraction": 0.5}
    assert td.n_test_docs == len(test)


@pytest.mark.parametrize("split", ["test", "all"])
def test_training_on_test_questions_is_refused(tiny_release, tmp_path, split):
    cfg = SFTConfig(data="opinionqa", task_metadata={"source": str(tiny_release)}, output_dir=str(tmp_path),
                    test_fraction=0.5, train_split=split)
    with pytest.raises(LeakageError, match=r"are in the test split of opinionqa_wd, which the checkpoint will be "
                                           r"scored on.*train_split: train"):
        load_docs(cfg)


def test_leaking_config_fails_from_the_command_line(tiny_release, tmp_path, capsys):
    """The acceptance check: a config that points training at test questions fails with a clear error."""
    cfg = tmp_path / "leak.yaml"
    cfg.write_text(
        f"model: {tmp_path / 'model'}\ndata: opinionqa\nmode: distributional\n"
        f"task_metadata: {{source: '{tiny_release}'}}\ntrain_split: test\noutput_dir: {tmp_path / 'out'}\n"
    )
    # the guard runs after the model loads and before anything is trained or written
    from tests.helpers.tiny_models import build_model

    build_model("merged", tmp_path / "model")
    assert main(["train", "sft", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "opinbench train sft: error:" in err and "test split of opinionqa_wd" in err
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_different_eval_task_guard_and_drop(tiny_release, tmp_path):
    """OpinionQA modal answers (opinionqa_cot, one document per group) scored against opinionqa_wd."""
    base = dict(data="opinionqa", mode="cot", rationales="human", explanation_field="x",
                task_metadata={"source": str(tiny_release)}, output_dir=str(tmp_path), test_fraction=0.5,
                eval_task="opinionqa_wd")
    test_q = set(wd_dataset(source=str(tiny_release), split="test", test_fraction=0.5)["test"]["question_key"])
    # both tasks use the same question split: the train side passes the other task's guard
    td = load_docs(SFTConfig(**base))
    assert td.docs and td.n_dropped_leaking == 0 and all(d["question_key"] not in test_q for d in td.docs)
    # all documents: the test questions of opinionqa_wd leak, whoever answers them
    with pytest.raises(LeakageError, match="test split of opinionqa_wd"):
        load_docs(SFTConfig(**base, train_split="all"))
    td_all = load_docs(SFTConfig(**base, train_split="all", drop_test_questions=True))
    assert td_all.n_dropped_leaking > 0
    assert sorted(d["id"] for d in td_all.docs) == sorted(d["id"] for d in td.docs)


def test_drop_is_refused_within_one_task(tiny_release, tmp_path):
    cfg = SFTConfig(data="opinionqa", task_metadata={"source": str(tiny_release)}, output_dir=str(tmp_path),
                    drop_test_questions=True)
    with pytest.raises(ConfigError, match="different tasks"):
        load_docs(cfg)


def test_wom_individuals_and_their_splits(tiny_wom, tmp_path):
    cfg = GRPOConfig(data="wom", task_metadata={"source": str(tiny_wom)}, output_dir=str(tmp_path),
                     individuals=["SPD"])
    td = load_docs(cfg)
    assert {d["subject"] for d in td.docs} == {"SPD"} and len(td.docs) == 7  # 10 theses, 3 held out
    assert all(d["split"] == "train" for d in td.docs)
    with pytest.raises(ConfigError, match="match no training document; e.g."):
        select_individuals(td.docs, ["CDU"])


def test_subsample_is_seeded_and_keeps_order():
    docs = [{"id": str(i)} for i in range(20)]
    a, b = subsample(docs, 5, 1), subsample(docs, 5, 1)
    assert a == b and len(a) == 5 and [int(d["id"]) for d in a] == sorted(int(d["id"]) for d in a)
    assert subsample(docs, None, 1) == docs
