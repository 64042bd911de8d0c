"""Prefill tokens a prefix cache saves on a task's real requests.

Three counts over the token sequences a backend sends:

* **no cache**: every prompt token is prefilled (the sum of the lengths);
* **ideal prefix cache**: every distinct prefix is computed once, i.e. the number of
  nodes of the token trie of all sequences (unlimited memory, any granularity);
* **vLLM automatic prefix caching**: KV is kept in blocks of ``block_size`` tokens,
  each block keyed by its tokens *and* all tokens before it (a hash chain), and only
  full blocks are reused. A request reuses the longest run of leading full blocks
  already computed, but at most up to its last token minus one: vLLM recomputes the
  last prompt token to get its logits, rounding the hit down to a block boundary
  (``max_cache_hit_length = request.num_tokens - 1`` in vLLM 0.32's
  ``vllm/v1/core/kv_cache_manager.py``). The rest of the request is prefilled.

Eviction: by default none (the cache holds every block once computed;
`PrefixCacheCount.distinct_blocks` says how many that is, to compare with the KV cache
a GPU has room for). With ``capacity_blocks`` the blocks are evicted least recently used
first, requests served one after another: a simplification of vLLM's free-block queue,
which also never evicts the blocks of requests still running.

Order matters only with eviction. `PrefixCounter.finish` replays the sequences in the
order lm-eval's vllm backend sends them (its ``Collator`` sorts by length, longest
first, then by tokens) or in token order (``order="tokens"``: the order in which
``opinbench-vllm`` sends its scoring prompts, `opinbench.harness.vllm_model`), where
consecutive requests share the longest prefixes.

Not every request can *read* the cache: vLLM skips the lookup for a request that asks
for ``prompt_logprobs`` (``SamplingParams.skip_reading_prefix_cache``), and lm-eval's
``--model vllm`` scores every ``loglikelihood`` request that way, so for the ``*_wd``
and ``*_direct`` tasks the vLLM count is what prefix caching *could* save, realised by
``--model opinbench-vllm`` (docs/vllm.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Order = Literal["lm-eval", "tokens"]


@dataclass
class PrefixCacheCount:
    """Prefill tokens of one set of requests under the three caches.

    Attributes:
        requests: sequences counted (repeats included).
        prompt_tokens: tokens prefilled with no cache.
        ideal_tokens: distinct nodes of the token trie.
        block_tokens: tokens prefilled with vLLM's block-wise prefix cache.
        block_size: tokens per KV block.
        capacity_blocks: the cache's capacity (None: no eviction).
        distinct_blocks: distinct full blocks over all sequences (what a cache
            without eviction ends up holding).
        reads_cache: whether the backend's requests read the prefix cache at all
            (False: every one asks for ``prompt_logprobs``).
        longest: tokens of the longest sequence (vLLM's ``max_model_len`` must hold it,
            plus the generated tokens).
    """

    requests: int
    prompt_tokens: int
    ideal_tokens: int
    block_tokens: int
    block_size: int
    capacity_blocks: int | None
    distinct_blocks: int
    reads_cache: bool = True
    longest: int = 0

    @property
    def prefilled_tokens(self) -> int:
        """What the backend prefills with vLLM's prefix caching on."""
        return self.block_tokens if self.reads_cache else self.prompt_tokens

    @property
    def ideal_saved(self) -> float:
        """Fraction of the prefill an ideal prefix cache saves."""
        return 1 - self.ideal_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def block_saved(self) -> float:
        """Fraction of the prefill vLLM's block-wise prefix cache saves."""
        return 1 - self.block_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ideal_saved": self.ideal_saved, "block_saved": self.block_saved,
                "prefilled_tokens": self.prefilled_tokens}


def _key(tokens: Sequence[int]) -> bytes:
    # Big-endian uint32: byte order = token order, so sorting the keys sorts the
    # sequences lexicographically (a prefix before its extensions). 4 bytes a token keep
    # the suite's ~15 M prompt tokens in memory where Python int lists would take 10x.
    return np.asarray(tokens, dtype=">u4").tobytes()


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class PrefixCounter:
    """Collects token sequences, then counts their prefill under the three caches.

    >>> c = PrefixCounter(block_size=2)
    >>> c.add([1, 2, 3, 4, 5]); c.add([1, 2, 3, 4, 6]); c.add([1, 2, 3, 9])
    >>> r = c.finish()
    >>> r.prompt_tokens, r.ideal_tokens, r.block_tokens, r.distinct_blocks
    (14, 7, 8, 3)

    The trie has the nodes 1, 12, 123, 1234, 12345, 12346, 1239 (7). In blocks of 2,
    the first sequence computes its 5 tokens, the second reuses the blocks [1 2][3 4]
    and computes 1 token, the third reuses [1 2] and computes [3 9] (8).
    """

    def __init__(self, block_size: int = 16, capacity_blocks: int | None = None) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        if capacity_blocks is not None and capacity_blocks < 1:
            raise ValueError(f"capacity_blocks must be at least 1, got {capacity_blocks}")
        self.block_size = block_size
        self.capacity_blocks = capacity_blocks
        self._copies: dict[bytes, int] = {}

    def add(self, tokens: Sequence[int], copies: int = 1, *, once: bool = False) -> None:
        """One request (``copies`` identical ones: lm-eval's ``repeats``); with ``once``,
        nothing if the same sequence was added before (a backend that sends it once)."""
        if copies < 1:
            raise ValueError(f"copies must be at least 1, got {copies}")
        key = _key(tokens)
        if once and key in self._copies:
            return
        self._copies[key] = self._copies.get(key, 0) + copies

    def _blocks(self, seq: np.ndarray) -> list[int]:
        """The hash chain of the full blocks of ``seq`` (vLLM's block hashes)."""
        out, parent, bs = [], 0, self.block_size
        for start in range(0, len(seq) - bs + 1, bs):
            parent = hash((parent, seq[start:start + bs].tobytes()))
            out.append(parent)
        return out

    def finish(self, order: Order = "lm-eval", *, reads_cache: bool = True) -> PrefixCacheCount:
        """Count (sequences replayed in ``order``; only matters with ``capacity_blocks``)."""
        keys = sorted(self._copies)
        seqs = {k: np.frombuffer(k, dtype=">u4") for k in keys}
        requests = sum(self._copies.values())
        prompt = sum(len(seqs[k]) * n for k, n in self._copies.items())
        # Ideal: in sorted order, each sequence adds the tokens past its common prefix
        # with the one before it (the trie's new nodes); a repeat adds none.
        ideal, prev = 0, None
        for k in keys:
            s = seqs[k]
            ideal += len(s) - (_common_prefix(prev, s) if prev is not None else 0)
            prev = s
        if order == "lm-eval":
            keys.sort(key=lambda k: -len(k))  # stable: ties stay in token order
        elif order != "tokens":
            raise ValueError(f"order must be 'lm-eval' or 'tokens', got {order!r}")
        cache: OrderedDict[int, None] = OrderedDict()
        seen: set[int] = set()
        block_tokens, bs = 0, self.block_size
        for k in keys:
            s = seqs[k]
            blocks = self._blocks(s)
            seen.update(blocks)
            limit = (len(s) - 1) // bs  # at most up to the last token minus one
            for _ in range(self._copies[k]):
                hit = 0
                while hit < min(limit, len(blocks)) and blocks[hit] in cache:
                    hit += 1
                block_tokens += len(s) - hit * bs
                for b in blocks:
                    cache[b] = None
                    cache.move_to_end(b)
                if self.capacity_blocks is not None:
                    while len(cache) > self.capacity_blocks:
                        cache.popitem(last=False)
        return PrefixCacheCount(requests, prompt, ideal, block_tokens, bs,
                                self.capacity_blocks, len(seen), reads_cache,
                                max((len(s) for s in seqs.values()), default=0))
