"""Paired synthetic lm-eval runs for `opinbench regress`: a baseline and perturbed candidates in the real file schema.

The structure copies a real SmolLM2 run of ``opinionqa_wd`` and ``vk_direct``
(``--log_samples``): ``<out>/<model>/results_<ts>.json`` with ``versions``,
``task_hashes``, ``config``; ``samples_<task>_<ts>.jsonl`` rows with ``doc``,
``arguments``, ``resps`` (``[[[ll, greedy]], ...]``, strings), ``filtered_resps``,
``doc_hash``, ``prompt_hash``, ``target_hash`` computed as lm-eval computes them. The
content is synthetic: the model is a table of letter probabilities, or (``*_cot``
tasks) of generations: ``resps`` ``[[generation, ...]]`` with one text per repeat.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

TIMESTAMP = "2026-01-01T00-00-00.000000"
VK_OPTIONS = ["Supports", "Opposes", "Either"]


def hash_string(s: str) -> str:  # lm_eval.utils.hash_string
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def distribution_docs(n_questions: int = 20, n_groups: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """``opinionqa_wd``-like documents: 4 ordinal options + Refused, a human distribution per group."""
    rng = np.random.default_rng(seed)
    docs = []
    for q in range(n_questions):
        base = rng.dirichlet(np.ones(4) * 2)
        for g in range(n_groups):
            dist = rng.dirichlet(base * 30 + 0.1)
            docs.append({
                "id": f"opinionqa:Q{q}:ATTR:G{g}", "dataset": "opinionqa", "question_key": f"Q{q}",
                "attribute": "ATTR", "group": f"G{g}", "question": f"Question {q}?",
                "options": ["Very", "Somewhat", "Not too", "Not at all", "Refused"],
                "ordinal": [1.0, 2.0, 3.0, 4.0], "distribution": [float(x) for x in dist], "n": None,
                "steering": "qa", "letters": ["A", "B", "C", "D", "E"], "n_ordinal": 4, "seed": 0,
                "human_resamples": 1000, "mass_threshold": 0.1,
            })
    return docs


def vk_docs(n: int = 60, seed: int = 1) -> list[dict[str, Any]]:
    """``vk_direct``-like documents (gold drawn at random)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        gold = VK_OPTIONS[int(rng.integers(3))]
        docs.append({
            "id": f"vk:{i}", "dataset": "vk", "family": "vk", "question_key": f"sit-{i // 2}",
            "question": f"Situation {i // 2}", "options": VK_OPTIONS, "letters": ["A", "B", "C"],
            "subject": f"Value {i}", "subject_group": None, "individual": None, "answer": gold,
            "answer_letter": "ABC"[VK_OPTIONS.index(gold)], "context": None, "split": "test",
            "attribute": None, "group": None, "format": "direct", "system": "", "description": "",
            "prompt": f"Question: does the value support the situation?\n\nSituation {i // 2}\nValue {i}\n"
            "A. Support B. Oppose C. Either\nAnswer:",
            "labels": VK_OPTIONS, "gold_label": gold, "n_boot": 1000, "boot_seed": 0,
        })
    return docs


def wd_prompt(doc: dict[str, Any]) -> str:
    return f"Question: {doc['question']}\n" + "\n".join(
        f"{letter}. {o}" for letter, o in zip(doc["letters"], doc["options"])
    ) + "\nAnswer:"


def vk_prompt(doc: dict[str, Any]) -> str:
    return doc["prompt"]


def model_near_human(doc: dict[str, Any], seed: int = 0, noise: float = 20.0) -> np.ndarray:
    """Letter probabilities (one per letter) of a model close to the group's distribution."""
    rng = np.random.default_rng([seed, int(hash_string(doc["id"])[:8], 16)])
    p = rng.dirichlet(np.asarray(doc["distribution"]) * noise + 0.05)
    return np.concatenate([p * 0.7, [0.02]])  # some mass off the letters, a little on Refused


def model_answers_right(doc: dict[str, Any], seed: int = 0, p_right: float = 0.75) -> np.ndarray:
    """Letter probabilities of a direct model that puts most mass on the gold letter with probability ``p_right``."""
    rng = np.random.default_rng([seed, int(doc["id"].split(":")[1])])
    k = len(doc["letters"])
    gold = doc["letters"].index(doc["answer_letter"])
    top = gold if rng.random() < p_right else int((gold + 1 + rng.integers(k - 1)) % k)
    p = np.full(k, 0.05)
    p[top] = 0.6
    return p


def _row(doc_id: int, doc: dict[str, Any], prompt: str, letter_probs: np.ndarray, target: str) -> dict[str, Any]:
    letters = doc["letters"]
    choices = [f" {x}" for x in letters] + list(letters)
    # Split each letter's probability over its two spellings (" A" 70 %, "A" 30 %).
    lls = [float(np.log(p * 0.7)) for p in letter_probs] + [float(np.log(p * 0.3)) for p in letter_probs]
    best = int(np.argmax(lls))
    pairs = [[str(ll), str(i == best)] for i, ll in enumerate(lls)]
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": {f"gen_args_{i}": {"arg_0": prompt, "arg_1": c} for i, c in enumerate(choices)},
        "resps": [[p] for p in pairs],
        "filtered_resps": pairs,
        "filter": "none",
        "metrics": [],
        "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": hash_string(prompt),
        "target_hash": hash_string(str(target)),
    }


def _cot_row(doc_id: int, doc: dict[str, Any], prompt: str, gens: list[str], target: str) -> dict[str, Any]:
    """A generation task's row as lm-eval logs it (``resps``: the repeats; ``filtered_resps``: the first)."""
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": ["<|im_end|>"], "max_gen_toks": 256}}},
        "resps": [list(gens)],
        "filtered_resps": [gens[0]],
        "filter": "none",
        "metrics": ["acc"],
        "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": hash_string(prompt),
        "target_hash": hash_string(str(target)),
    }


def vk_reasoning(doc: dict[str, Any], seed: int = 0, p_right: float = 0.75) -> list[str]:
    """One CoT generation that argues for the option it answers (the answer of `model_answers_right`)."""
    answer = doc["options"][int(np.argmax(model_answers_right(doc, seed, p_right)))]
    verb = {"Supports": "supports", "Opposes": "opposes", "Either": "could go either way on"}[answer]
    return [f"Weighing it up, the value {verb} the situation.\nAnswer: {doc['letters'][doc['options'].index(answer)]}"]


def write_run(
    out: Path,
    tasks: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], np.ndarray]]],
    *,
    versions: dict[str, Any] | None = None,
    model: str = "fake__model",
) -> Path:
    """Write one run: ``tasks`` maps a task to (documents, prompt function, model), the model giving a
    document's letter probabilities, or its generations (a list of texts: a ``*_cot`` row).

    Returns the model folder.
    """
    folder = out / model
    folder.mkdir(parents=True, exist_ok=True)
    task_hashes = {}
    for task, (docs, prompt_of, probs_of) in tasks.items():
        rows = []
        for i, doc in enumerate(docs):
            target = str(doc["letters"].index(doc["answer_letter"])) if "answer_letter" in doc else "0"
            out = probs_of(doc)
            make = _cot_row if isinstance(out, list) and all(isinstance(x, str) for x in out) else _row
            rows.append(make(i, doc, prompt_of(doc), out, target))
        task_hashes[task] = hash_string("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
        with (folder / f"samples_{task}_{TIMESTAMP}.jsonl").open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    results = {
        "results": {t: {"alias": t} for t in tasks},
        "versions": {t: (versions or {}).get(t, 1.0) for t in tasks},
        "n-samples": {t: {"original": len(d), "effective": len(d)} for t, (d, _, _) in tasks.items()},
        "config": {"model": "hf", "model_args": {"pretrained": model}, "limit": None, "random_seed": 0},
        "task_hashes": task_hashes,
        "model_name": model,
        "git_hash": "0000000",
        "lm_eval_version": "0.4.13",
        "date": 0.0,
    }
    (folder / f"results_{TIMESTAMP}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return folder
