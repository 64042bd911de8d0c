"""GRPO rewards: plain callables in TRL's shape, built by ``get_*`` factories.

Each reward takes the completions and the dataset columns by name (``answer``,
``options``, ``letters``) plus ``**kwargs`` and returns one float per
completion. TRL logs each under its function name (``rewards/<name>/mean``),
their weighted sum as ``reward``, and the share of groups whose completions
all scored the same (``frac_reward_zero_std``: no learning signal).

**Training and scoring agree.** The answer is parsed by
`opinbench.answers.extract_answer`, the parse of the CoT tasks' scoring, after
cutting the completion at the task's stop sequences (``until: ["</answer>"]``)
as lm-eval's ``generate_until`` does. An empty or unparsable answer gets no
reward: 0 for correctness and 0 for format (a well-tagged empty answer earns
nothing), and it is counted (``invalid_share``).

The composite reward of Berdoz et al. (2026) is three rewards with weights
(``reward_weights`` of TRL's GRPOConfig)::

    R = 0.25 * format_reward + 0.01 * length_reward + 1.0 * correctness_reward

* ``format_reward``: one point for each of ``<reasoning>``, ``</reasoning>``,
  ``<answer>``, ``</answer>`` that occurs exactly once (0..4);
* ``length_reward``: ``-|L - L*|`` with ``L`` the completion's length in tokens
  (or words, characters);
* ``correctness_reward``: 1 when the parsed answer is the gold one, else 0.

>>> correct = get_correctness_reward()
>>> correct(["<reasoning>x</reasoning><answer>No</answer>", "<answer></answer>", ""],
...         answer=["No"] * 3, options=[["Yes", "Neutral", "No"]] * 3)
[1.0, 0.0, 0.0]
>>> fmt = get_format_reward()
>>> fmt(["<reasoning>x</reasoning><answer>No</answer>", "<answer>Yes", "<answer></answer>"],
...     answer=["No"] * 3, options=[["Yes", "Neutral", "No"]] * 3)
[4.0, 1.0, 0.0]
>>> get_length_reward(5, unit="words")(["one two three"], answer=["x"], options=[["x"]])
[-2.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opinbench.answers import LETTERS, Extraction, extract_answer

__all__ = [
    "DEFAULT_TAGS",
    "completion_text",
    "get_correctness_reward",
    "get_format_reward",
    "get_length_reward",
    "get_rewards",
    "parse_completion",
    "truncate_at_stop",
]

DEFAULT_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")
RewardFn = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational ``[{"role": ..., "content": ...}]``."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion)
    return str(completion)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """The completion up to and including the first stop sequence (what lm-eval would have generated).

    lm-eval drops the stop sequence itself; keeping it changes nothing for
    `extract_answer` (an unclosed last ``<answer>`` runs to the end) and lets
    `format_reward` see the closing tag.
    """
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i + len(s))
    return text[:cut]


def parse_completion(completion: Any, options: Sequence[str], letters: Sequence[str] | str | None = None,
                     stop: Sequence[str] = ()) -> Extraction:
    """The answer of one completion, parsed exactly as the CoT tasks score it."""
    text = truncate_at_stop(completion_text(completion), stop)
    letters = "".join(letters) if letters else LETTERS
    return extract_answer(text, list(options), letters)


def _columns(n: int, answer: Sequence[str] | None, options: Sequence[Sequence[str]] | None,
             letters: Sequence[Sequence[str]] | None, name: str) -> tuple[list[str], list[list[str]], list[Any]]:
    if answer is None or options is None:
        raise ValueError(f"{name} needs the dataset columns 'answer' and 'options'")
    if len(answer) != n or len(options) != n:
        raise ValueError(f"{name}: {n} completions but {len(answer)} answers and {len(options)} option lists")
    lets = list(letters) if letters is not None else [None] * n
    return list(answer), [list(o) for o in options], lets


def _log(kwargs: dict[str, Any], name: str, value: float) -> None:
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(name, value)


def get_correctness_reward(stop: Sequence[str] = ()) -> RewardFn:
    """1.0 when the parsed answer is the gold option, else 0.0 (empty or unparsable: 0.0)."""

    def correctness_reward(completions: list[Any], answer: list[str] | None = None,
                           options: list[list[str]] | None = None, letters: list[list[str]] | None = None,
                           **kwargs: Any) -> list[float]:
        gold, opts, lets = _columns(len(completions), answer, options, letters, "correctness_reward")
        parsed = [parse_completion(c, o, ls, stop) for c, o, ls in zip(completions, opts, lets)]
        if parsed:
            _log(kwargs, "invalid_share", sum(not p.valid for p in parsed) / len(parsed))
        return [1.0 if p.valid and p.answer == g else 0.0 for p, g in zip(parsed, gold)]

    return correctness_reward


def get_format_reward(tags: Sequence[str] = DEFAULT_TAGS, stop: Sequence[str] = ()) -> RewardFn:
    """One point per tag that occurs exactly once; 0.0 when the answer is empty or unparsable."""

    def format_reward(completions: list[Any], answer: list[str] | None = None,
                      options: list[list[str]] | None = None, letters: list[list[str]] | None = None,
                      **kwargs: Any) -> list[float]:
        _, opts, lets = _columns(len(completions), answer, options, letters, "format_reward")
        out = []
        for c, o, ls in zip(completions, opts, lets):
            if not parse_completion(c, o, ls, stop).valid:
                out.append(0.0)
                continue
            text = truncate_at_stop(completion_text(c), stop)
            out.append(float(sum(text.count(t) == 1 for t in tags)))
        return out

    return format_reward


def get_length_reward(target_length: int, unit: str = "tokens", stop: Sequence[str] = ()) -> RewardFn:
    """``-|L - target_length|``, with L in tokens (TRL's ``completion_ids``), words or characters.

    Token counts are those of the sampled completion (up to its end-of-sequence);
    words and characters are counted on the text up to the first stop sequence.
    """
    if unit not in ("tokens", "words", "chars"):
        raise ValueError(f"unit must be tokens, words or chars, got {unit!r}")

    def length_reward(completions: list[Any], completion_ids: list[list[int]] | None = None,
                      **kwargs: Any) -> list[float]:
        out = []
        for i, c in enumerate(completions):
            text = truncate_at_stop(completion_text(c), stop)
            if unit == "tokens":
                if completion_ids is None:
                    raise ValueError("length_reward with unit tokens needs completion_ids (TRL passes them)")
                n = len(completion_ids[i])
            elif unit == "words":
                n = len(text.split())
            else:
                n = len(text)
            out.append(-abs(float(n) - float(target_length)))
        if out:
            _log(kwargs, "length_abs_deviation", sum(abs(x) for x in out) / len(out))
        return out

    return length_reward


def get_rewards(kind: str, *, stop: Sequence[str] = (), target_length: int = 100, length_unit: str = "tokens",
                format_weight: float = 0.25, length_weight: float = 0.01,
                correct_weight: float = 1.0) -> tuple[list[RewardFn], list[float]]:
    """The reward functions and their weights for ``binary`` or ``composite``."""
    if kind == "binary":
        return [get_correctness_reward(stop)], [1.0]
    if kind == "composite":
        return (
            [get_format_reward(stop=stop), get_length_reward(target_length, length_unit, stop),
             get_correctness_reward(stop)],
            [format_weight, length_weight, correct_weight],
        )
    raise ValueError(f"unknown reward {kind!r}; choose binary or composite")
