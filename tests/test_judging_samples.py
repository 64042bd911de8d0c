"""Reading lm-eval CoT samples: reasoning split, repeats, filters, file discovery, --limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opinbench.errors import DataError
from opinbench.judging.samples import (
    find_samples_files,
    load_samples,
    read_samples_file,
    select,
    split_reasoning,
)
from opinbench.runs import parse_samples_name
from tests.test_judging_fixtures import OPTIONS, write_lm_eval_run


@pytest.mark.parametrize(
    "text, how, reasoning",
    [
        ("It helps people.\nAnswer: A", "answer_line", "It helps people."),
        ("It helps.\n**Answer:** (B)", "answer_line", "It helps."),
        (
            "Step 1. Answer: not yet\nmore\nFinal answer: C",
            "answer_line",
            "Step 1. Answer: not yet\nmore",
        ),
        ("<reasoning>Because.</reasoning>\n<answer>Opposes</answer>", "tag", "Because."),
        ("<reasoning>Unclosed and long", "invalid: no answer found", "Unclosed and long"),
        ("Thinking first. <answer>A</answer>", "tag", "Thinking first."),
        ("I weighed it.\nSupports", "option_text", "I weighed it."),
        ("Supports", "option_text", ""),
        ("B", "bare_letter", ""),
        ("No idea at all.", "invalid: no answer found", "No idea at all."),
        ("", "invalid: empty output", ""),
    ],
)
def test_split_reasoning(text, how, reasoning):
    assert split_reasoning(text, how) == reasoning


def test_samples_name():
    assert parse_samples_name(Path("samples_vk_cot_binary_2026-11-23T10-00-00.000001.jsonl")) == (
        "vk_cot_binary",
        "2026-11-23T10-00-00.000001",
    )
    assert parse_samples_name(Path("mine.jsonl")) == ("mine", None)


def _docs(n):
    return [
        {
            "id": f"x{i}",
            "dataset": "opinionqa",
            "question": f"Q{i}?",
            "options": ["Yes", "Neutral", "No"],
            "subject": "Democrat",
            "subject_group": "Left",
            "answer": "Yes",
            "context": None,
        }
        for i in range(n)
    ]


def test_repeats_filters_and_family(tmp_path):
    docs = _docs(3)
    gens = [["Because.\nAnswer: A", "Hmm.\nAnswer: C"], ["x\nAnswer: B"], ["nothing"]]
    path = write_lm_eval_run(
        tmp_path, "oqa_cot", docs, gens, filters=("strict-match", "flexible-extract")
    )
    samples = read_samples_file(path)
    # Each document is logged once per filter: judged once. Repeats become separate samples.
    assert [(s.doc_id, s.repeat) for s in samples] == [(0, 0), (0, 1), (1, 0), (2, 0)]
    assert {s.family for s in samples} == {"survey"}  # no "family" key: inferred from dataset
    assert samples[1].model_answer.answer == "No" and samples[1].reasoning == "Hmm."
    assert not samples[3].model_answer.valid and samples[3].reasoning == "nothing"
    assert samples[0].run_dir == path.parent


def test_non_cot_file_is_left_out_and_newest_run_wins(tmp_path):
    run = write_lm_eval_run(
        tmp_path, "vk_cot", _docs(2), [["a\nAnswer: A"], ["b\nAnswer: B"]]
    ).parent
    write_lm_eval_run(
        tmp_path, "vk_cot", _docs(1), [["old\nAnswer: A"]], stamp="2026-01-01T00-00-00.000001"
    )
    mc = {
        "doc_id": 0,
        "doc": {"question": "q"},
        "resps": [[["-1.2", "False"]]],
        "filtered_resps": [["-1.2", "False"]],
    }
    (run / "samples_oqa_wd_2026-11-23T10-00-00.000001.jsonl").write_text(json.dumps(mc) + "\n")
    files = find_samples_files(tmp_path)
    assert [f.name for f in files] == [
        "samples_oqa_wd_2026-11-23T10-00-00.000001.jsonl",
        "samples_vk_cot_2026-11-23T10-00-00.000001.jsonl",
    ]
    samples = load_samples([tmp_path])
    assert {s.task for s in samples} == {"vk_cot"} and len(samples) == 2


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_samples([tmp_path / "nope"])
    with pytest.raises(DataError, match="no samples_"):
        load_samples([tmp_path])


def test_bad_lines_are_skipped_and_counted(tmp_path):
    path = write_lm_eval_run(tmp_path, "t", _docs(1), [["a\nAnswer: A"]])
    with path.open("a") as f:
        f.write("{not json\n")
        f.write(
            json.dumps({"doc_id": 5, "doc": {"question": "q", "options": "Yes"}, "resps": [["x"]]})
            + "\n"
        )
    from opinbench.errors import SkipLog

    skips = SkipLog()
    assert len(read_samples_file(path, skips=skips)) == 1
    assert len(skips) == 2


def test_select_keeps_repeats_together_and_is_seeded(tmp_path):
    docs = [dict(d, options=OPTIONS) for d in _docs(10)]
    path = write_lm_eval_run(tmp_path, "t", docs, [["r\nAnswer: A", "s\nAnswer: B"]] * 10)
    samples = read_samples_file(path)
    a = select(samples, 3, seed=1)
    assert len(a) == 6 and len({s.doc_id for s in a}) == 3
    assert [s.item_id for s in a] == [s.item_id for s in select(samples, 3, seed=1)]
    assert select(samples, None, 0) == samples
