"""lm-eval glue for the chain-of-thought tasks (``vk_cot``, ``opinionqa_cot``,
``wom_cot``, ``smartvote_cot``, ``anes_cot``).

The model generates (``generate_until``); `keep_all` keeps every repeat's raw
generation (lm-eval's default filter keeps only the first), and `process_results`
parses each with `opinbench.answers.extract_doc_answer`, the parse the judges and the
GRPO rewards use, and scores it (`opinbench.metrics.answer_tasks`). An unparsable
answer is counted in ``invalid`` and scored wrong.

Documents and their settings: `opinbench.harness.answer_docs`; prompts:
`opinbench.prompts.cot`. With ``repeats: N`` (e.g. 8 samples at temperature 1.0)
every metric is computed per repeat and averaged, and ``*_repeat_std`` gives the
spread over repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opinbench.harness import answer_docs, settings
from opinbench.metrics import clustered
from opinbench.scoring.answer import cot_doc_values


@settings.same_settings_as(answer_docs.load_dataset)
def load_dataset(**kwargs: Any) -> dict[str, Any]:
    """``custom_dataset`` hook: CoT documents (see `opinbench.harness.answer_docs.load_dataset`)."""
    kwargs["format"] = "cot"
    return answer_docs.load_dataset(**kwargs)


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"]


def doc_to_target(doc: dict[str, Any]) -> str:
    """The gold option text (lm-eval logs it as ``target``; scoring does not use it)."""
    return doc["answer"]


def keep_all(resps: Sequence[Sequence[str]], docs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Filter that keeps every repeat's raw generation (lm-eval's default keeps the first)."""
    return [list(r) for r in resps]


def generations(results: Sequence[Any]) -> list[str]:
    """The raw generations of one document from what lm-eval passes to `process_results`."""
    out: list[str] = []
    for r in results:
        if isinstance(r, (list, tuple)):
            out += [str(x) if x is not None else "" for x in r]
        else:
            out.append("" if r is None else str(r))
    return out


@clustered.by_sampling_unit
def process_results(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    return cot_doc_values(doc, generations(results))
