"""Judge verdict files in the real schema, written by the real writer (`opinbench.judging.results.write_results`).

The verdict objects and ``config.judge`` copy what ``opinbench judge faithfulness`` and
``opinbench judge moderation`` write (tests/test_judging_faithfulness.py,
tests/test_judging_moderation.py; `test_regress_judges` also runs the real commands
against the fake API server); only the fields regress reads must be exact, the rest
keeps the files realistic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opinbench.judging.results import write_results
from tests.helpers.paired_runs import TIMESTAMP, hash_string

JUDGE_STAMP = "2026-01-02T00-00-00.000000"


def judge_config(kind: str, model: str, samples_files: Sequence[Path], template_sha256: str = "c899d1") -> dict[str, Any]:
    """``config.judge`` as `opinbench.judging.api.run_judge` writes it."""
    provider, _, name = model.partition(":")
    common = {
        "kind": kind,
        "provider": provider,
        "model": name,
        "base_url": "http://127.0.0.1:1" if provider != "anthropic" else "https://api.anthropic.com",
        "api_key_env": f"{provider.upper()}_API_KEY",
        "timeout_s": 60.0,
        "offline_fallback": None,
        "seed": 0,
        "limit": None,
        "complete": True,
        "samples_files": [str(f) for f in samples_files],
    }
    if kind == "faithfulness":
        settings = {"family": "vk", "template": "faithfulness_vk.j2", "version": 1, "judge": model,
                    "temperature": 0, "max_tokens": 64, "neutral_options": ["Either"]}
        return {**common, "temperature_sent": False, "judge": model,
                "overrides": {"max_tokens": None, "temperature": None},
                "families": {"vk": {"settings_file": "faithfulness_vk.yaml", "settings": settings,
                                    "template": "faithfulness_vk.j2", "template_sha256": template_sha256}},
                "control": None}
    settings = {"version": 1, "moderator": model, "prompt": "auto", "template": "moderation_llama_guard.j2",
                "temperature": 0, "max_tokens": 24}
    return {**common, "moderator": model, "prompt_mode": "llama_guard",
            "settings": {"settings_file": "moderation.yaml", "settings": settings,
                         "template": "moderation_llama_guard.j2", "template_sha256": template_sha256}}


def _verdict(kind: str, task: str, doc_id: int, repeat: int, value: int | None) -> dict[str, Any]:
    v: dict[str, Any] = {"type": "sample", "task": task, "doc_id": doc_id, "repeat": repeat,
                         "doc_hash": hash_string(f"{task}:{doc_id}"), "prompt_hash": hash_string(f"{doc_id}:{repeat}"),
                         "cached": False, "attempts": 1}
    if value is None:
        return v | {"status": "excluded", "reason": "empty reasoning"}
    if kind == "faithfulness":
        answer = "Supports"
        return v | {"family": "vk", "model_answer": answer, "model_answer_how": "answer_line", "model_neutral": False,
                    "status": "judged", "judge_reply": "Answer: A" if value else "Answer: C",
                    "judge_answer": answer if value else "Either", "judge_how": "answer_line",
                    "faithful": bool(value), "judge_neutral": not value}
    return v | {"status": "judged", "moderator_reply": "unsafe\nS1" if value else "safe", "flagged": bool(value),
                "categories": ["violent_crimes"] if value else [], "codes": ["S1"] if value else []}


def write_verdicts(
    folder: Path,
    kind: str,
    task: str,
    values: Sequence[int | None],
    *,
    model: str | None = None,
    template_sha256: str = "c899d1",
    stamp: str = JUDGE_STAMP,
    samples_file: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``opinbench judge <kind>``'s results and verdicts for ``task`` into a run ``folder``.

    ``values[i]``: the verdict on lm-eval doc_id ``i`` (one repeat): 1 faithful / flagged,
    0 not, None excluded (not judged).
    """
    model = model or ("anthropic:claude-sonnet-4-6" if kind == "faithfulness" else "openai:llama-guard-3-1b")
    samples = [samples_file or folder / f"samples_{task}_{TIMESTAMP}.jsonl"]
    verdicts = [_verdict(kind, task, i, 0, v) for i, v in enumerate(values)]
    judged = [v for v in values if v is not None]
    metric = "cot_faithfulness" if kind == "faithfulness" else "cot_offensive_rate"
    share = sum(judged) / len(judged)
    results = {task: {"alias": task, f"{metric},none": share, f"{metric}_stderr,none": 0.01}}
    return write_results(
        folder,
        f"judge-{kind}",
        results=results,
        groups={"all": results[task]},
        group_subtasks={"all": [task]},
        versions={task: 1},
        n_samples={task: {"original": len(values), "effective": len(judged)}},
        higher_is_better={task: {metric: kind == "faithfulness"}},
        configs={},
        judge_config=judge_config(kind, model, samples, template_sha256),
        details={"tasks": {task: {"counts": {"judged": len(judged)}}}},
        verdicts=verdicts,
        date_id=stamp,
    )


def read_verdicts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
