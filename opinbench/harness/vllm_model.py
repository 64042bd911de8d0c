"""``--model opinbench-vllm``: lm-eval's vLLM backend, sending fewer requests that share a cache.

`OpinbenchVLLM` is lm-eval 0.4.13's ``VLLM`` (`lm_eval.models.vllm_causallms`) with two
changes, the results otherwise the same:

* **loglikelihood** (``*_wd``, ``*_direct``): lm-eval sends one request per answer choice
  with ``prompt_logprobs=1`` (logprobs at every prompt position), and vLLM serves such
  requests without reading its prefix cache (``SamplingParams.skip_reading_prefix_cache``),
  so the steering prefix shared by all questions of a group, and the context shared by
  all choices of a question, are prefilled again for every choice. Here every
  continuation token is scored from the next-token logprobs of the prefix before it
  (``max_tokens=1``, ``temperature=0``, ``logprob_token_ids``): one request per distinct
  prefix, for a letter question with a chat template two (the context, and the context
  plus the ``"\\n"`` lm-eval moves into the continuation), sent in token order so that
  neighbours share their prefixes, and all of them read the prefix cache. The value is
  the same sum of log-probabilities and ``is_greedy`` the same comparison with the
  argmax. Requests without a cache key (``loglikelihood_rolling`` windows), with more
  than `MAX_SCORED_TOKENS` continuation tokens, or too long for the model, go the
  original way.
* **generate_until** with ``repeats: N`` (``*_cot_sampled``, ``*_wd_sampled``): lm-eval
  sends N identical requests; here identical (prompt, sampling parameters) requests are
  one vLLM request with ``SamplingParams(n=N)``, whose N completions are handed back in
  lm-eval's order. A greedy request (``n`` must be 1) is sent once and its text handed
  back N times. A request with its own ``seed`` gets N different samples (vLLM seeds
  the N children apart) where lm-eval's backend would return one sample N times.

Importing this module needs neither vLLM nor lm-eval's vllm module: the class is built by
`__getattr__` on first use, and `opinbench.harness.lm_models.register` puts a lazy entry in lm-eval's model registry
(``opinbench eval`` calls it). A plain ``lm_eval`` has no way to load a model from
another package (0.4.13 reads no entry points for models); run it through this module
instead: ``python -m opinbench.harness.vllm_model run --model opinbench-vllm ...``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from opinbench.harness.lm_models import VLLM as MODEL_NAME  # noqa: F401  (its lm-eval name)
from opinbench.harness.lm_models import cli_main as main

# A model of lm-eval's: its messages go where lm-eval's own backends' go (lm-eval gives
# only its "lm_eval" logger a handler, at --verbosity).
log = logging.getLogger("lm_eval.models.opinbench_vllm")

# Each scored continuation token costs one (cached) request: fine for answer letters,
# not for the thousands of tokens of a rolling-loglikelihood window.
MAX_SCORED_TOKENS = 8


def group_identical(prompts: Sequence[Sequence[int]], params: Sequence[Any]) -> list[list[int]]:
    """Indices of identical (prompt, parameters) pairs, in order of first appearance.

    >>> group_identical([[1, 2], [3], [1, 2], [1, 2]], ["a", "a", "a", "b"])
    [[0, 2], [1], [3]]
    """
    groups: list[list[int]] = []
    by_prompt: dict[tuple[int, ...], list[int]] = {}  # prompt -> indices into groups
    for i, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        candidates = by_prompt.setdefault(tuple(prompt), [])
        for g in candidates:  # parameters are compared, not hashed (vLLM's are unhashable)
            if params[groups[g][0]] == p:
                groups[g].append(i)
                break
        else:
            candidates.append(len(groups))
            groups.append([i])
    return groups


def plan_scoring(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], max_targets: int
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The next-token requests that score every continuation token of ``pairs``.

    Each (context, continuation) needs, for each continuation position j, the logprob of
    ``continuation[j]`` after ``context + continuation[:j]``. Returned: (prefix, tokens to
    score) per request, prefixes in token order, at most ``max_targets`` tokens each
    (vLLM's ``max_logprobs``; a prefix with more gets several requests; -1: no limit).

    >>> plan_scoring([([7, 8], [9, 1]), ([7, 8], [9, 2]), ([7, 8], [3])], max_targets=20)
    [((7, 8), (3, 9)), ((7, 8, 9), (1, 2))]
    >>> plan_scoring([([5], [1]), ([5], [2]), ([5], [3])], max_targets=2)
    [((5,), (1, 2)), ((5,), (3,))]
    """
    needed: dict[tuple[int, ...], set[int]] = {}
    for context, continuation in pairs:
        prefix = tuple(context)
        for token in continuation:
            needed.setdefault(prefix, set()).add(int(token))
            prefix += (int(token),)
    plan = []
    for prefix in sorted(needed):
        tokens = sorted(needed[prefix])
        step = len(tokens) if max_targets < 1 else max_targets
        plan += [(prefix, tuple(tokens[i:i + step])) for i in range(0, len(tokens), step)]
    return plan


def score_pair(
    context: Sequence[int], continuation: Sequence[int],
    scores: dict[tuple[tuple[int, ...], int], float], argmax: dict[tuple[int, ...], int],
) -> tuple[float, bool]:
    """(sum of the continuation's logprobs, whether each token is the argmax), from the
    next-token ``scores[(prefix, token)]`` and ``argmax[prefix]`` of `plan_scoring`'s requests.

    >>> score_pair([7], [9, 1], {((7,), 9): -0.5, ((7, 9), 1): -0.25}, {(7,): 9, (7, 9): 2})
    (-0.75, False)
    """
    prefix, total, greedy = tuple(context), 0.0, True
    for token in continuation:
        total += scores[(prefix, int(token))]
        greedy = greedy and argmax[prefix] == int(token)
        prefix += (int(token),)
    return total, greedy


def scatter_outputs(outputs: Sequence[Any], groups: Sequence[Sequence[int]], n: int) -> list[Any]:
    """One vLLM ``RequestOutput`` per original request: group g's k completions go, in order,
    to its k requests, each as an output of its own holding one completion (lm-eval reads
    ``outputs[0]``); a group answered with one completion (greedy) gives it to all."""
    result: list[Any] = [None] * n
    for out, group in zip(outputs, groups, strict=True):
        completions = list(out.outputs)
        if len(completions) not in (1, len(group)):
            raise RuntimeError(f"vLLM returned {len(completions)} completions for a request "
                               f"of n={len(group)}")
        for j, i in enumerate(group):
            view = copy.copy(out)
            view.outputs = [completions[j if len(completions) > 1 else 0]]
            result[i] = view
    return result


def _is_greedy(params: Any) -> bool:
    return float(getattr(params, "temperature", 1.0) or 0.0) < 1e-5


def round_robin_order(n: int, ways: int) -> list[int]:
    """The order to hand ``n`` sorted items to lm-eval's data-parallel dispatch so that each
    of its ``ways`` replicas gets a contiguous run of them.

    lm-eval deals requests out like cards (``more_itertools.distribute``: item i to replica
    i % ways), which would part a prompt from its neighbours in token order, the ones that
    share its prefix; arranged by this order, replica k gets the k-th run instead.

    >>> round_robin_order(7, 3)
    [0, 3, 5, 1, 4, 6, 2]
    """
    sizes = [len(range(k, n, ways)) for k in range(ways)]
    starts = [sum(sizes[:k]) for k in range(ways)]
    return [starts[i % ways] + i // ways for i in range(n)]


class OpinbenchVLLMMixin:
    """The two changes, over any class with lm-eval ``VLLM``'s ``_model_generate`` and
    ``_loglikelihood_tokens`` (tests use a fake one; `OpinbenchVLLM` is the real one).

    ``next_token_scoring=False`` / ``merge_repeats=False`` in ``--model_args`` turn either
    change off (lm-eval's own behaviour, for comparisons).
    """

    next_token_scoring = True
    merge_repeats = True

    def __init__(self, *args: Any, next_token_scoring: bool = True, merge_repeats: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_token_scoring = bool(next_token_scoring)
        self.merge_repeats = bool(merge_repeats)

    def _sampling_params(self, **kwargs: Any) -> Any:
        from vllm import SamplingParams

        return SamplingParams(**kwargs)

    def _max_logprobs(self) -> int:
        # lm-eval passes unknown model_args (max_logprobs=...) on to vllm.LLM; 20 is vLLM's default.
        return int(getattr(self, "model_args", {}).get("max_logprobs") or 20)

    def _model_generate(self, requests, generate=False, sampling_params=None):  # type: ignore[no-untyped-def]
        if not generate or not isinstance(sampling_params, list) or not self.merge_repeats:
            return super()._model_generate(requests, generate, sampling_params)  # type: ignore[misc]
        groups = group_identical(requests, sampling_params)
        merged = []
        for group in groups:
            params = sampling_params[group[0]]
            if len(group) > 1 and not _is_greedy(params):
                params = copy.copy(params)
                params.n = len(group)
            merged.append(params)
        if len(groups) < len(requests):
            log.info("%d generation requests sent as %d (identical ones as n completions)",
                     len(requests), len(groups))
        outputs = super()._model_generate(  # type: ignore[misc]
            requests=[requests[g[0]] for g in groups], generate=True, sampling_params=merged
        )
        self._log_prefix_cache()
        return scatter_outputs(outputs, groups, len(requests))

    def _log_prefix_cache(self) -> None:
        """vLLM's prefix-cache counters so far, when its stats are on (``disable_log_stats=False``
        in ``--model_args``; one engine only: with ``data_parallel_size`` the engines are
        Ray workers' own)."""
        engine = getattr(self, "model", None)
        if engine is None or getattr(self, "model_args", {}).get("disable_log_stats", True):
            return
        try:
            metrics = {m.name: getattr(m, "value", None) for m in engine.get_metrics()}
        except Exception as err:  # noqa: BLE001 (statistics only: never fail a run for them)
            log.debug("no vLLM metrics: %s", err)
            return
        queries = metrics.get("vllm:prefix_cache_queries")
        hits = metrics.get("vllm:prefix_cache_hits")
        if queries is not None and hits is not None:
            log.info("vLLM prefix cache so far: %d of %d prompt tokens read from the cache "
                     "(requests that read it; prompt_logprobs requests do not)",
                     int(hits), int(queries))

    def _loglikelihood_tokens(self, requests, disable_tqdm=False):  # type: ignore[no-untyped-def]
        max_len = int(self.max_length) - 1  # type: ignore[attr-defined]
        fast = [i for i, (key, ctx, cont) in enumerate(requests)
                if self.next_token_scoring and key is not None and ctx
                and 0 < len(cont) <= MAX_SCORED_TOKENS and len(ctx) + len(cont) <= max_len]
        rest = sorted(set(range(len(requests))) - set(fast))
        result: list[Any] = [None] * len(requests)
        if rest:
            answers = super()._loglikelihood_tokens(  # type: ignore[misc]
                [requests[i] for i in rest], disable_tqdm=disable_tqdm)
            for i, a in zip(rest, answers, strict=True):
                result[i] = a
        if not fast:
            return result
        plan = plan_scoring([(requests[i][1], requests[i][2]) for i in fast], self._max_logprobs())
        log.info("%d loglikelihood requests scored by %d next-token requests",
                 len(fast), len(plan))
        ways = int(getattr(self, "data_parallel_size", 1) or 1)
        if ways > 1:  # each replica a contiguous run of the prompts in token order
            order = round_robin_order(len(plan), ways)
            plan = [plan[j] for j in order]
        params = [self._sampling_params(temperature=0.0, max_tokens=1, detokenize=False,
                                        logprob_token_ids=list(tokens)) for _, tokens in plan]
        outputs = self._model_generate(requests=[list(p) for p, _ in plan], generate=True,
                                       sampling_params=params)
        scores: dict[tuple[tuple[int, ...], int], float] = {}
        argmax: dict[tuple[int, ...], int] = {}
        for (prefix, tokens), out in zip(plan, outputs, strict=True):
            completion = out.outputs[0]
            logprobs = completion.logprobs[0]
            argmax[prefix] = int(completion.token_ids[0])
            for t in tokens:
                scores[(prefix, t)] = float(getattr(logprobs[t], "logprob", logprobs[t]))
        for i in fast:
            key, ctx, cont = requests[i]
            result[i] = score_pair(ctx, cont, scores, argmax)
            self.cache_hook.add_partial("loglikelihood", key, result[i])  # type: ignore[attr-defined]
        return result


def __getattr__(name: str) -> Any:
    # The class needs vLLM: built on first use (lm-eval's lazy registry asks for it),
    # so that importing this module works without vLLM.
    if name != "OpinbenchVLLM":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from lm_eval.models.vllm_causallms import VLLM

    cls = type("OpinbenchVLLM", (OpinbenchVLLMMixin, VLLM), {"__module__": __name__,
                                                               "__doc__": __doc__})
    globals()["OpinbenchVLLM"] = cls
    return cls


if __name__ == "__main__":
    main()
