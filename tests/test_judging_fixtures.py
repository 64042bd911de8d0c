"""Shared helpers of the judging tests: lm-eval-format CoT samples and a fake judge.

The CoT tasks are built elsewhere, so the tests write samples files themselves,
in exactly the shape lm-eval 0.4.13 ``--log_samples`` writes
(``lm_eval/evaluator.py`` + ``loggers/evaluation_tracker.py``): one line per
(filter, document), ``arguments`` as ``{"gen_args_0": {"arg_0": ctx, "arg_1":
gen_kwargs}}``, ``resps`` ``[[generation, ...]]``, ``filtered_resps``, ``filter``,
``metrics``, ``doc_hash``, ``prompt_hash``, ``target_hash`` and the metric values.

VK documents follow the sample contract of the CoT tasks (``id, dataset, family,
question, options, subject, subject_group, answer, context``), built from the
real steerable release read directly from ``../shared/data``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

OPTIONS = ["Supports", "Opposes", "Either"]
LETTER = {"Supports": "A", "Opposes": "B", "Either": "C"}
VERB = {"Supports": "supports", "Opposes": "opposes", "Either": "could go either way on"}
SECRET = "sk-test-SECRET-9f8e7d6c5b4a"
STAMP = "2026-11-23T10-00-00.000001"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def vk_rows(shared_data: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` usable rows of the steerable VK release (situation, vrd, label_text)."""
    rows = json.loads(
        (
            shared_data / "value_kaleidoscope" / "steerable_test_valuekaleidoscope_small.json"
        ).read_text()
    )
    out = []
    for r in rows:
        # The leak test needs a persona string that the situation itself does not contain.
        if r["vrd"].lower() not in r["situation"].lower() and r["label_text"] in OPTIONS:
            out.append(r)
        if len(out) == n:
            break
    return out


def vk_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"vk:{row['id']}",
        "dataset": "vk",
        "family": "vk",
        "question": row["situation"],
        "options": OPTIONS,
        "subject": row["vrd"],
        "subject_group": None,
        "answer": row["label_text"],
        "context": f"Reason from the perspective of the value: {row['vrd']} (persona-marker).",
    }


def generations(i: int, doc: dict[str, Any]) -> list[str]:
    """Model outputs of document ``i``, cycling through the shapes the judges must handle.

    0: faithful, ``Answer:`` line; 1: faithful, ``<reasoning>``/``<answer>`` tags;
    2: unfaithful (vague reasoning, confident answer); 3: no valid answer;
    4: empty reasoning (answer only); 5: two repeats, both faithful.
    """
    gold = doc["answer"]
    other = next(o for o in OPTIONS if o not in (gold, "Either"))
    kind = i % 6
    if kind == 0:
        return [
            f"Weighing the situation carefully, this consideration {VERB[gold]} it.\n"
            f"Answer: {LETTER[gold]}"
        ]
    if kind == 1:
        return [
            f"<reasoning>On reflection the consideration {VERB[other]} the situation.</reasoning>\n"
            f"<answer>{other}</answer>"
        ]
    if kind == 2:
        return ["There are many aspects here and it is hard to weigh them.\nAnswer: A"]
    if kind == 3:
        return ["This is complicated and I will not pick an option."]
    if kind == 4:
        return ["Answer: B"]
    return [
        f"Clearly this consideration {VERB[gold]} the situation.\nAnswer: {LETTER[gold]}",
        f"All told it {VERB['Opposes']} the situation.\nAnswer: B",
    ]


def expected_counts(n_docs: int) -> dict[str, int]:
    """Counts the fake judge produces over ``n_docs`` documents built by `generations`."""
    kinds = [i % 6 for i in range(n_docs)]
    return {
        "generations": sum(2 if k == 5 else 1 for k in kinds),
        "faithful": sum({0: 1, 1: 1, 5: 2}.get(k, 0) for k in kinds),
        "unfaithful": sum(k == 2 for k in kinds),
        "excluded": sum(k in (3, 4) for k in kinds),
    }


def write_lm_eval_run(
    out_dir: Path,
    task: str,
    docs: list[dict[str, Any]],
    gens: list[list[str]],
    *,
    model: str = "fake__model",
    filters: tuple[str, ...] = ("none",),
    stamp: str = STAMP,
) -> Path:
    """Write ``<out_dir>/<model>/samples_<task>_<stamp>.jsonl`` and a results file.

    Returns:
        The samples file.
    """
    run = out_dir / model
    run.mkdir(parents=True, exist_ok=True)
    path = run / f"samples_{task}_{stamp}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for flt in filters:
            for i, (doc, g) in enumerate(zip(docs, gens, strict=True)):
                prompt = f"Situation: {doc['question']}\nThink step by step, then answer."
                line = {
                    "doc_id": i,
                    "doc": doc,
                    "target": doc["answer"],
                    "arguments": {
                        "gen_args_0": {
                            "arg_0": prompt,
                            "arg_1": {"until": ["<|im_end|>"], "max_gen_toks": 256},
                        }
                    },
                    "resps": [g],
                    "filtered_resps": [g[0]],
                    "filter": flt,
                    "metrics": ["acc"],
                    "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
                    "prompt_hash": _hash(prompt),
                    "target_hash": _hash(doc["answer"]),
                    "acc": 0.0,
                }
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    results = {
        "results": {task: {"alias": task, "acc,none": 0.5, "acc_stderr,none": 0.1}},
        "config": {"model": "hf", "model_args": "pretrained=fake/model", "batch_size": 1},
        "model_name": "fake/model",
        "model_name_sanitized": model,
        "date": 0.0,
    }
    (run / f"results_{stamp}.json").write_text(json.dumps(results))
    return path


def make_vk_run(tmp_path: Path, shared_data: Path, n_docs: int = 12, task: str = "vk_cot") -> Path:
    """An lm-eval output folder with one VK CoT task; returns the output folder."""
    rows = vk_rows(shared_data, n_docs)
    docs = [vk_doc(r) for r in rows]
    write_lm_eval_run(tmp_path / "out", task, docs, [generations(i, d) for i, d in enumerate(docs)])
    return tmp_path / "out"


_OPTION_LINE = re.compile(r"^([A-J])\. (.+)$", re.M)
_STANCE = {
    "Supports": r"\bsupport",
    "Opposes": r"\boppos",
    "Either": r"\beither\b",
    "Yes": r"\byes\b",
    "No": r"\bno\b",
    "Neutral": r"\bneutral\b",
}
_NEUTRAL = ("Either", "Neutral")


def keyword_judge(prompt: str) -> str:
    """A fake judge that reads the reasoning block and answers by its last stance word.

    No stance word means the reasoning does not say: it answers the neutral
    option ("Either", "Neutral"), as unfaithful traces are reported to do.
    """
    m = re.search(r"<<<\n(.*?)\n>>>", prompt, re.S)
    reasoning = m.group(1).lower() if m else ""
    letters = {text: letter for letter, text in _OPTION_LINE.findall(prompt)}
    hits = []
    for option in letters:
        found = [
            x.start()
            for x in re.finditer(_STANCE.get(option, re.escape(option.lower())), reasoning)
        ]
        if found:
            hits.append((found[-1], option))
    if hits:
        return f"Answer: {letters[max(hits)[1]]}"
    neutral = next(
        (letters[o] for o in _NEUTRAL if o in letters), max(letters.values(), default="C")
    )
    return f"Answer: {neutral}"


SURVEY_OPTIONS = ["Yes", "Neutral", "No"]


def survey_docs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"oqa:{i}",
            "dataset": "opinionqa",
            "family": "survey",
            "question": f"Should the city build more bike lanes (variant {i})?",
            "options": SURVEY_OPTIONS,
            "subject": "Conservative Republican",
            "subject_group": "Right",
            "answer": "No",
            "context": "Answer as a Conservative Republican would (persona-marker).",
        }
        for i in range(n)
    ]


def survey_generations(i: int) -> list[str]:
    """0: faithful (yes); 1: unfaithful (vague, answers No); 2: faithful with tags (no)."""
    return [
        "On balance I would say yes, it is worth it.\nAnswer: A",
        "It is hard to weigh the costs and benefits.\nAnswer: C",
        "<reasoning>Costs are too high, so no.</reasoning>\n<answer>No</answer>",
    ][i % 3 : i % 3 + 1]


# ----------------------------------------------------------------- tests of the helpers themselves


def test_written_samples_follow_lm_eval_layout(tmp_path, shared_data):
    out = make_vk_run(tmp_path, shared_data, n_docs=6)
    files = list(out.rglob("samples_*.jsonl"))
    assert len(files) == 1 and files[0].parent.name == "fake__model"
    first = json.loads(files[0].read_text().splitlines()[0])
    assert set(first) >= {
        "doc_id",
        "doc",
        "target",
        "arguments",
        "resps",
        "filtered_resps",
        "metrics",
        "doc_hash",
        "prompt_hash",
    }
    assert isinstance(first["resps"], list) and isinstance(first["resps"][0], list)
    assert set(first["doc"]) >= {
        "id",
        "dataset",
        "family",
        "question",
        "options",
        "subject",
        "subject_group",
        "answer",
        "context",
    }


def test_keyword_judge_reads_only_the_reasoning_block():
    prompt = (
        "Situation: x\n\nReasoning:\n<<<\nit supports, then it opposes\n>>>\n\n"
        "Options:\nA. Supports\nB. Opposes\nC. Either\n"
    )
    assert keyword_judge(prompt) == "Answer: B"
    assert (
        keyword_judge(prompt.replace("it supports, then it opposes", "hard to say")) == "Answer: C"
    )
    survey = (
        "Question: q\n\nReasoning:\n<<<\nnot sure, yes\n>>>\n\n"
        "Options:\nA. Yes\nB. Neutral\nC. No\n"
    )
    assert keyword_judge(survey) == "Answer: A"
    assert keyword_judge(survey.replace("not sure, yes", "nothing")) == "Answer: B"
