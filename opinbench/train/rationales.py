"""Rationales for chain-of-thought SFT: human-written, or synthetic and STaR-filtered.

A CoT training target is a rationale followed by the gold answer, in the
format the CoT task asks for (`format_target`; the data set's profile says which,
`opinbench.data.registry.Profile.answer_tags`)::

    wom / smartvote / anes:  <reasoning>RATIONALE</reasoning>
                             <answer>Yes</answer>
    vk / opinionqa:          RATIONALE
                             Answer: B

Every target is parsed back with the task's own parser
(`opinbench.answers.extract_doc_answer`) and must give the gold answer; one that does
not (a rationale that itself contains an answer line or tag) is left out and
counted.

**Human-written** (`human_rationales`): the records' ``meta`` field, by default
the data set's ``explanation_field`` (`opinbench.data.registry.Profile`): Value
Kaleidoscope's ``explanation`` (ValuePrism) and Wahl-o-Mat's party ``comment``,
the party's own justification of its answer.

**Synthetic, STaR-style** (`synthetic_rationales`, Zelikman et al. 2022): a
provider model (through `opinbench.llm`'s providers, cache and runner:
retries, budget, progress bar) answers the task's own CoT prompt. If its parsed
answer is the gold one, its rationale is kept. If not, it is asked again with
the gold answer as a hint (*rationalisation*); the rationale is kept if it then
reaches the gold answer, and the hint never enters the training prompt.
Everything else is dropped and counted (`StarStats`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opinbench.answers import extract_doc_answer
from opinbench.data import registry
from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.train")

RATIONALIZE_HINT = (
    "Hint: the answer is {answer} ({letter}). Explain the reasoning that leads to this answer, "
    "without mentioning this hint, and answer in the format asked for above."
)

_REASONING = re.compile(r"<reasoning>\s*(.*?)\s*(?:</reasoning>|<answer>|\Z)", re.I | re.S)
_ANSWER_TAIL = re.compile(r"(?:^|\n)[ \t>*_#-]*(?:final\s+)?answer[ \t*_]*[:：].*\Z", re.I | re.S)
_ANSWER_TAG = re.compile(r"<answer>.*\Z", re.I | re.S)


def format_target(doc: dict[str, Any], rationale: str) -> str:
    """The training completion: rationale then gold answer, in the document's CoT format."""
    rationale = rationale.strip()
    if registry.profile(doc["dataset"]).answer_tags:
        return f"<reasoning>{rationale}</reasoning>\n<answer>{doc['answer']}</answer>"
    return f"{rationale}\nAnswer: {doc['answer_letter']}"


def shorten(text: str, max_chars: int | None) -> str:
    """The first sentences of ``text`` that fit in ``max_chars`` (at least one, cut at a word if longer).

    >>> shorten("One. Two two. Three.", 10)
    'One.'
    >>> shorten("A very long first sentence", 12)
    'A very long'
    """
    text = " ".join(text.split())
    if max_chars is None or len(text) <= max_chars:
        return text
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        out = candidate
    if not out:
        out = text[:max_chars].rsplit(" ", 1)[0] if " " in text[:max_chars] else text[:max_chars]
    return out


def target_is_gold(doc: dict[str, Any], target: str) -> bool:
    return extract_doc_answer(doc, target).answer == doc["answer"]


def extract_rationale(reply: str) -> str:
    """The reasoning part of a model reply: inside ``<reasoning>``, else the text before the answer."""
    m = _REASONING.search(reply)
    if m and m.group(1).strip():
        return m.group(1).strip()
    text = _ANSWER_TAG.sub("", reply)
    text = _ANSWER_TAIL.sub("", text)
    return text.strip()


# --------------------------------------------------------------------------- human


def human_rationales(docs: Sequence[dict[str, Any]], *, data: str, field: str | None,
                     load_options: dict[str, Any]) -> tuple[list[tuple[dict[str, Any], str]], dict[str, int]]:
    """(document, explanation) pairs from the records' ``meta[field]``; documents without one are counted."""
    field = field or registry.profile(data).explanation_field
    if not field:
        raise ConfigError(f"{data}: no default explanation field; set explanation_field")
    pairs = registry.answer_records(
        data, load_options.get("source"), load_options.get("data_dir"), cache=True,
        split_seed=int(load_options.get("split_seed", 0)), test_fraction=load_options.get("test_fraction"),
        **registry.options_of(data, load_options),
    )
    meta = {r.id: (r.meta or {}) for r, _ in pairs}
    out, missing = [], 0
    for d in docs:
        text = meta.get(d["id"], {}).get(field)
        if isinstance(text, str) and text.strip():
            out.append((d, text.strip()))
        else:
            missing += 1
    if not out:
        raise ConfigError(f"{data}: no training record has a {field!r} explanation")
    return out, {"without_explanation": missing}


# --------------------------------------------------------------------------- synthetic (STaR)


@dataclass
class StarStats:
    """What became of each document's rationale."""

    documents: int = 0
    correct_first: int = 0  # kept: the provider's own answer was gold
    rationalized: int = 0  # kept: gold after the hint
    wrong: int = 0  # dropped: not gold even with the hint (or rationalisation off)
    failed: int = 0  # dropped: no reply (errors, budget)
    empty_rationale: int = 0  # dropped: gold answer but no reasoning text

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _request(doc: dict[str, Any], *, max_tokens: int, temperature: float | None, hint: bool) -> Any:
    from opinbench.llm.providers import ChatRequest

    text = doc["prompt"]
    if hint:
        text += "\n\n" + RATIONALIZE_HINT.format(answer=doc["answer"], letter=doc["answer_letter"])
    return ChatRequest(messages=(("user", text),), system=doc.get("system") or None, max_tokens=max_tokens,
                       temperature=temperature)


def _ask(docs: Sequence[dict[str, Any]], *, provider: Any, identity: dict[str, Any], cache: Any, options: Any,
         budget: Any, max_tokens: int, temperature: float | None, hint: bool, desc: str) -> dict[str, str | None]:
    from opinbench.llm.cache import request_key
    from opinbench.llm.runner import Job, run_jobs

    jobs, keys = [], {}
    for d in docs:
        req = _request(d, max_tokens=max_tokens, temperature=temperature, hint=hint)
        rj = req.to_json() | {"purpose": "star-rationale"}
        key = request_key(identity, rj)
        keys[d["id"]] = key
        jobs.append(Job(key, rj, lambda r=req: provider.chat(r)))
    outcomes, stats = run_jobs(jobs, cache=cache, provider=identity.get("provider", "?"),
                               model=identity.get("model", "?"), options=options, budget=budget,
                               max_concurrency=getattr(provider, "max_concurrency", None), desc=desc)
    log.info("%s: %s", desc, stats.summary())
    return {i: (outcomes[k].reply if outcomes[k].ok else None) for i, k in keys.items()}


def synthetic_rationales(
    docs: Sequence[dict[str, Any]],
    *,
    provider: Any,
    identity: dict[str, Any],
    cache: Any,
    max_tokens: int = 400,
    temperature: float | None = 0.7,
    rationalize: bool = True,
    max_requests: int | None = None,
    concurrency: int = 4,
    progress: bool = True,
) -> tuple[list[tuple[dict[str, Any], str]], StarStats]:
    """STaR: keep rationales that reach the gold answer, rationalise the rest from it (see module docstring).

    Args:
        docs: CoT task documents (``prompt``, ``system``, ``options``, ``answer``...).
        provider: an `opinbench.llm.providers.Provider` (or anything with ``chat(ChatRequest) -> str``).
        identity: the provider's identity for the cache key (`ProviderSpec.identity`).
        cache: a `opinbench.llm.cache.ReplyCache` (replies already paid for are reused).
    """
    from opinbench.llm.runner import Budget, RunOptions

    options = RunOptions(concurrency=concurrency, progress=progress)
    budget = Budget(max_requests)
    stats = StarStats(documents=len(docs))
    kept: list[tuple[dict[str, Any], str]] = []
    first = _ask(docs, provider=provider, identity=identity, cache=cache, options=options, budget=budget,
                 max_tokens=max_tokens, temperature=temperature, hint=False, desc="rationales")
    retry = []
    for d in docs:
        reply = first[d["id"]]
        if reply is None:
            stats.failed += 1
        elif extract_doc_answer(d, reply).answer == d["answer"]:
            r = extract_rationale(reply)
            if r:
                kept.append((d, r))
                stats.correct_first += 1
            else:
                stats.empty_rationale += 1
        else:
            retry.append(d)
    if retry and rationalize:
        second = _ask(retry, provider=provider, identity=identity, cache=cache, options=options, budget=budget,
                      max_tokens=max_tokens, temperature=temperature, hint=True, desc="rationalisation")
        for d in retry:
            reply = second[d["id"]]
            if reply is None:
                stats.failed += 1
            elif extract_doc_answer(d, reply).answer == d["answer"] and extract_rationale(reply):
                kept.append((d, extract_rationale(reply)))
                stats.rationalized += 1
            else:
                stats.wrong += 1
    else:
        stats.wrong += len(retry)
    return kept, stats


def provider_from_config(config: Any) -> tuple[Any, dict[str, Any], Any]:
    """(provider, identity, cache) for ``rationale_provider`` through `opinbench.llm`."""
    from opinbench.llm.cache import ReplyCache, default_cache_path
    from opinbench.llm.providers import ProviderSpec, make_provider

    spec = ProviderSpec.parse(config.rationale_provider, base_url=config.rationale_base_url,
                              api_key_env=config.rationale_api_key_env)
    if not spec.has_key():
        raise ConfigError(f"{spec}: set {spec.key_env} to the API key (read from the environment only)")
    cache = ReplyCache(config.rationale_cache or default_cache_path())
    return make_provider(spec), spec.identity(), cache
