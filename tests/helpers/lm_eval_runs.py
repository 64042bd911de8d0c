"""Write lm-eval-shaped output folders (results and samples files) for tests of readers of runs.

The shapes follow a real lm-eval 0.4.13 run with --log_samples: ``samples_<task>_<ts>.jsonl``
rows ``{doc_id, doc, target, arguments, resps, filtered_resps, filter, metrics, ...}`` where a
multiple-choice task's ``filtered_resps`` is ``[[loglikelihood, is_greedy], ...]`` written as
strings, and ``results_<ts>.json`` with ``results``, ``configs``, ``model_name``, ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TIMESTAMP = "2026-01-01T00-00-00.000000"
LETTERS = "ABCDEFGHIJ"


def mc_resps(letter_probs: Sequence[float]) -> list[list[str]]:
    """``filtered_resps`` of a ``*_wd`` document whose letters get ``letter_probs``: the " X"
    spelling carries the probability, the "X" spelling almost none."""
    spaced = [[str(math.log(max(p, 1e-300))), "False"] for p in letter_probs]
    bare = [[str(math.log(1e-12)), "False"] for _ in letter_probs]
    return spaced + bare


def wd_doc(question_key, question, options, ordinal, attribute, group, distribution, *, steering="qa", n=100.0,
           dataset="opinionqa") -> dict[str, Any]:
    return {
        "id": f"{dataset}:{question_key}:{attribute}:{group}", "dataset": dataset, "question_key": question_key,
        "attribute": attribute, "group": group, "question": question, "options": list(options),
        "ordinal": list(ordinal), "distribution": list(distribution), "n": n,
        "steering": steering if attribute != "OVERALL" else "unsteered",
        "letters": list(LETTERS[: len(options)]), "n_ordinal": len(ordinal), "seed": 0,
        "human_resamples": 50, "mass_threshold": 0.1,
    }


def default_doc(question_key, question, options, ordinal, groups: Sequence[dict[str, Any]], dataset="opinionqa"):
    return {
        "id": f"{dataset}:{question_key}", "dataset": dataset, "question_key": question_key, "attribute": "OVERALL",
        "group": "Overall", "question": question, "options": list(options), "ordinal": list(ordinal),
        "steering": "unsteered", "letters": list(LETTERS[: len(options)]), "n_ordinal": len(ordinal), "seed": 0,
        "human_resamples": 50, "mass_threshold": 0.1, "groups": list(groups),
    }


def write_run(folder: Path, tasks: dict[str, list[dict[str, Any]]], *, model="org/tiny-model", timestamp=TIMESTAMP) -> Path:
    """``tasks``: task -> rows (each at least ``doc`` and ``filtered_resps``; other fields filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in tasks.items():
        lines = []
        for i, row in enumerate(rows):
            full = {"doc_id": i, "target": "0", "arguments": {}, "resps": [[r] for r in row["filtered_resps"]],
                    "filter": "none", "metrics": [], "doc_hash": f"h{i}", "prompt_hash": f"p{i}", **row}
            lines.append(json.dumps(full, ensure_ascii=False))
        (folder / f"samples_{task}_{timestamp}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = {"results": {t: {"alias": t} for t in tasks}, "configs": {}, "model_name": model,
               "n-samples": {t: {"original": len(r), "effective": len(r)} for t, r in tasks.items()}}
    (folder / f"results_{timestamp}.json").write_text(json.dumps(results), encoding="utf-8")
    return folder
