"""From token counts to the estimate: judge calls, judge tokens and dollars, GPU-hours.

Judge tokens are counted on the real judge prompts (the judges' templates and
settings in ``judges/``, rendered for every generation's question and options, plus
the generation itself as the reasoning) with the *evaluated model's* tokenizer: the
judge's own tokenizer is not public for Claude or GPT models, so these counts are
an approximation (tokenizers of that size differ by some 10-20 %). A judge reply is
counted at its ``max_tokens`` (an upper bound; a reply is one "Answer: X" line).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opinbench.estimate.counts import TaskCount, n_tokens
from opinbench.estimate.prices import PriceTable

log = logging.getLogger(__name__)


@dataclass
class JudgeLoad:
    """One judge's calls and tokens over a run (``gen_tokens``: the reasoning length assumed)."""

    role: str
    model: str
    calls: int = 0
    control_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_live: float | None = None
    cost_batch: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_load(
    kind: str,
    counts: Sequence[TaskCount],
    tokenizer: Any,
    model: str,
    *,
    gen_tokens_per_task: dict[str, float],
    control: bool = True,
) -> JudgeLoad:
    """Calls and tokens of ``opinbench judge KIND`` over the generations in ``counts``: per
    generation the texts the judge kind sends besides the reasoning (its registry entry's
    `prompt_texts`, rendered from the real templates) plus the reasoning's assumed length, and
    its reply at ``max_tokens``; with ``control``, the kind's control requests."""
    from opinbench.judging import registry

    entry = registry.get(kind)
    judge = entry.judge(entry.options())
    load = JudgeLoad(entry.role, model)
    prompt_cache: dict[tuple[str, str, tuple[str, ...]], int | None] = {}
    for c in counts:
        per_gen = int(round(gen_tokens_per_task.get(c.task, 0.0)))
        for family, question, options in c.judge_docs:
            key = (family, question, tuple(options))
            if key not in prompt_cache:
                texts = judge.prompt_texts(family, question, options, "")
                prompt_cache[key] = None if texts is None else _tokens(tokenizer, texts)
            if prompt_cache[key] is None:
                continue  # a family this judge does not judge
            load.calls += 1
            load.input_tokens += prompt_cache[key] + per_gen
            load.output_tokens += judge.reply_tokens(family)
    if control and load.calls:
        try:
            for texts, reply in judge.control_prompts():
                load.control_calls += 1
                load.input_tokens += _tokens(tokenizer, texts)
                load.output_tokens += reply
        except Exception as err:  # noqa: BLE001 (no VK data here: the control set is left out, said)
            log.warning("judge control set not counted: %s", err)
    return load


def _tokens(tokenizer: Any, texts: Sequence[str]) -> int:
    return sum(n_tokens(tokenizer, text) for text in texts)


def price(load: JudgeLoad, prices: PriceTable) -> JudgeLoad:
    """Fill ``cost_live`` / ``cost_batch`` (None when the model is not in the table)."""
    p = prices.get(load.model)
    if p is not None:
        load.cost_live = p.cost(load.input_tokens, load.output_tokens)
        load.cost_batch = p.cost(load.input_tokens, load.output_tokens, prices.batch_discount)
    return load


def gpu_hours(prompt_tokens: float, gen_tokens: float, *, prefill_tps: float,
              decode_tps: float) -> float:
    """Model time at a measured throughput (tokens/s of prefill and of decoding).

    >>> gpu_hours(3_600_000, 360_000, prefill_tps=1000, decode_tps=100)
    2.0
    """
    return (prompt_tokens / prefill_tps + gen_tokens / decode_tps) / 3600
