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


def faithfulness_load(
    counts: Sequence[TaskCount],
    tokenizer: Any,
    judge: str,
    *,
    gen_tokens_per_task: dict[str, float],
    control: bool = True,
    max_tokens: int | None = None,
) -> JudgeLoad:
    """Calls and tokens of ``opinbench judge faithfulness`` over the generations in ``counts``
    (``max_tokens``: the judge's ``--max-tokens``, over the judge settings' own)."""
    from opinbench.judging.faithfulness import build_request
    from opinbench.judging.settings import FAMILIES, faithfulness_settings

    load = JudgeLoad("judge", judge)
    settings: dict[str, Any] = {}
    prompt_cache: dict[tuple[str, str, tuple[str, ...]], int] = {}

    def prompt_tokens(family: str, question: str, options: Sequence[str], reasoning: str) -> int:
        st = settings.setdefault(family, faithfulness_settings(family))
        req = build_request(st, question=question, options=options, reasoning=reasoning)
        return sum(n_tokens(tokenizer, text) for _, text in req.messages) + (
            n_tokens(tokenizer, req.system) if req.system else 0
        )

    for c in counts:
        per_gen = gen_tokens_per_task.get(c.task, 0.0)
        for family, question, options in c.judge_docs:
            if family not in FAMILIES:
                continue  # a family without a faithfulness judge
            key = (family, question, tuple(options))
            if key not in prompt_cache:
                prompt_cache[key] = prompt_tokens(family, question, options, "")
            load.calls += 1
            load.input_tokens += prompt_cache[key] + int(round(per_gen))
            load.output_tokens += int(max_tokens or settings[family].get("max_tokens", 64))
    if control and load.calls:
        try:
            from opinbench.judging.control import load_control

            vk = settings.get("vk") or faithfulness_settings("vk")
            for item in load_control(None, vk.get("control") or {}, seed=0):
                load.control_calls += 1
                load.input_tokens += prompt_tokens("vk", item.question, item.options, item.reasoning)
                load.output_tokens += int(max_tokens or vk.get("max_tokens", 64))
        except Exception as err:  # noqa: BLE001 (no VK data here: the control set is left out, said)
            log.warning("judge control set not counted: %s", err)
    return load


def moderation_load(counts: Sequence[TaskCount], moderator: str,
                    gen_tokens_per_task: dict[str, float]) -> JudgeLoad:
    """One moderation call per generation, its input the reasoning."""
    load = JudgeLoad("moderator", moderator)
    for c in counts:
        load.calls += len(c.judge_docs)
        load.input_tokens += int(round(len(c.judge_docs) * gen_tokens_per_task.get(c.task, 0.0)))
    return load


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
