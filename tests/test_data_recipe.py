"""The recipe "add a data set", followed once: a toy data set in three pieces and nothing else.

1. its loader (a module: the rows read by `opinbench.data.files`, the records built by
   `opinbench.data.records.make_record`, which owns the id scheme);
2. its registry entry (`opinbench.data.registry.register`, with its prompt `Profile`);
3. its task folder (YAMLs that ``include:`` the shared templates).

Then lm-eval's own `TaskManager` (through `opinbench.harness.tasks`, ``include_path`` = the
folder) loads its tasks, renders its prompts and scores them, with no other file touched.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from opinbench.data import registry
from opinbench.harness import tasks as harness_tasks
from opinbench.paths import tasks_dir

LOADER = '''
"""Toy poll: parties' answers to statements, one CSV (party,group,key,statement,answer)."""
from opinbench.data.files import read_csv
from opinbench.data.records import AnswerRecord, make_record
from opinbench.data.splits import split_questions

OPTIONS = ("Yes", "Neutral", "No")


def load_toy(source, *, strict=False, skips=None, seed=0, test_fraction=0.5):
    rows = read_csv(source, ("party", "group", "key", "statement", "answer"))
    keys = sorted({r["key"] for r in rows})
    out = []
    for party in sorted({r["party"] for r in rows}):
        split = split_questions(party, keys, seed=seed, test_fraction=test_fraction)
        for r in (r for r in rows if r["party"] == party):
            out.append(make_record(AnswerRecord, "toy", (party, r["key"]), subject=party,
                                   subject_group=r["group"], question_key=r["key"],
                                   question=r["statement"], options=OPTIONS, answer=r["answer"],
                                   split=split[r["key"]], context="toy poll 2026", source=str(source)))
    return out


def identity(record):
    return f"You are the toy party {record.subject}, answering the {record.context}."
'''

ROWS = [("P1", "Left", "s1", "Bread should be free.", "Yes"), ("P1", "Left", "s2", "Cats over dogs.", "No"),
        ("P1", "Left", "s3", "Rain is good.", "Neutral"), ("P1", "Left", "s4", "Tea at noon.", "Yes"),
        ("P2", "Right", "s1", "Bread should be free.", "No"), ("P2", "Right", "s2", "Cats over dogs.", "Yes"),
        ("P2", "Right", "s3", "Rain is good.", "No"), ("P2", "Right", "s4", "Tea at noon.", "Neutral")]


def _yaml(name: str, template: str, source: Path) -> str:
    return textwrap.dedent(f"""\
        task: {name}
        include: {tasks_dir() / "_templates" / template}
        metadata:
          version: 1.0
          data: toy
          split: test
          source: {source}
        """)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The three pieces of a new data set, written into ``tmp_path``; returns its task folder."""
    # 1. the loader
    (tmp_path / "toy_loader.py").write_text(LOADER)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "toy.csv"
    source.write_text("party,group,key,statement,answer\n" + "".join(",".join(r) + "\n" for r in ROWS))
    # 2. the registry entry (restored after the test)
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    registry.register(registry.DataSet(
        "toy", "answer", "survey", "toy_loader:load_toy", "toy", "a toy poll", individuals=True,
        profile=registry.Profile("individual", persona="You are a toy voter.", item_label="Statement",
                                 item_plural="statements", ask="Do you agree with this statement?",
                                 identity="toy_loader:identity"),
    ))
    # 3. the task folder
    folder = tmp_path / "tasks" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy_cot.yaml").write_text(_yaml("toy_cot", "_individual_cot_yaml", source))
    (folder / "toy_direct.yaml").write_text(_yaml("toy_direct", "_individual_direct_yaml", source))
    return folder


def test_a_new_data_set_loads_renders_and_scores_through_lm_eval(toy):
    from lm_eval import simple_evaluate

    from tests.test_cot_harness import make_fake_lm

    loaded = harness_tasks.load_tasks(["toy_cot", "toy_direct"], include_path=toy)
    docs = harness_tasks.eval_docs(loaded["toy_cot"])
    assert len(docs) == 4 and {d["split"] for d in docs} == {"test"}  # half of each party's statements
    first = docs[0]
    assert first["id"] == f"toy:{first['subject']}:{first['question_key']}"
    assert first["system"] == "You are a toy voter." and first["labels"] == ["Yes", "Neutral", "No"]
    assert first["prompt"].startswith(f"You are the toy party {first['subject']}, answering the toy poll 2026.")
    assert f"Statement: {first['question']}\nDo you agree with this statement?" in first["prompt"]
    assert "<answer></answer>" in first["prompt"]  # the individual-level answer format
    assert harness_tasks.eval_docs(loaded["toy_direct"])[0]["prompt"].endswith("Answer:")
    with pytest.raises(Exception, match="already registered"):
        registry.register(registry.get("toy"))

    for policy, expected in (("gold", 1.0), ("wrong", 0.0)):
        out = simple_evaluate(model=make_fake_lm(policy), tasks=["toy_cot", "toy_direct"],
                              task_manager=harness_tasks.task_manager(include_path=toy), bootstrap_iters=0)
        for task in ("toy_cot", "toy_direct"):
            r = out["results"][task]
            assert r["acc,none"] == expected and r["macro_f1,none"] == expected, (policy, task, r)
            assert "acc_binary,none" not in r  # no binary labels in this profile
            assert r["macro_f1_individual|Left,none"] == expected
        assert out["results"]["toy_cot"]["invalid,none"] == 0.0


def test_its_tasks_are_opinbenchs_in_the_logs(toy):
    from opinbench.harness.quiet_logs import BreakdownLogFilter, CustomKwargsHintFilter

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("lm_eval", logging.WARNING, __file__, 1, msg, None, None)

    assert not CustomKwargsHintFilter().filter(record("toy_cot: Custom kwargs can be passed to `--metadata`"))
    assert not BreakdownLogFilter().filter(record("[toy_cot] No aggregation function defined for metric x"))
    assert BreakdownLogFilter().filter(record("[hellaswag] No aggregation function defined for metric x"))


def test_its_family_reaches_the_judges_and_the_leakage_guard(monkeypatch):
    """A situations data set (family ``vk``) is judged with the VK template and split by situation
    without touching `judging` or `train`: both read the family from its registry entry."""
    from opinbench.judging.samples import _family
    from opinbench.train.data import unit_of

    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    registry.register(registry.DataSet("toy_situations", "answer", "vk", "toy_loader:load", "toy",
                                       "situations", shipped_tasks=False))
    doc = {"dataset": "toy_situations", "question_key": "s1", "subject": "Honesty"}
    assert _family(doc) == "vk" and unit_of(doc) is None
    survey = {"dataset": "wom", "question_key": "t1", "subject": "SPD", "individual": "SPD"}
    assert _family(survey) == "survey" and unit_of(survey) == "SPD"
    assert registry.family_of("not_registered") == registry.family_of(None) == "survey"
