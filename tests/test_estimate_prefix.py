"""Prefix-cache counts (`opinbench.estimate.prefix`) and their use by ``count_tasks``."""

from __future__ import annotations

import json
import random

import pytest

from opinbench.estimate.counts import PrefixOptions, count_tasks, encode_pair, is_greedy
from opinbench.estimate.prefix import PrefixCounter
from tests.helpers.tiny_models import CHAT_TEMPLATE, build_tokenizer


@pytest.fixture(scope="module")
def tok():
    t = build_tokenizer("merged")
    t.chat_template = CHAT_TEMPLATE
    return t


def naive_counts(seqs: list[tuple[int, ...]], bs: int) -> tuple[int, int]:
    """Ideal and vLLM-block prefill by brute force over tuples: the trie as the set of all
    prefixes, and blocks as the set of block-aligned prefixes computed so far."""
    prefixes = {s[:i] for s in seqs for i in range(1, len(s) + 1)}
    cached: set[tuple[int, ...]] = set()
    block = 0
    for s in sorted(seqs, key=lambda s: (-len(s), s)):
        hit = 0
        while (hit + 1) * bs <= len(s) - 1 and s[: (hit + 1) * bs] in cached:
            hit += 1
        block += len(s) - hit * bs
        cached.update(s[: (k + 1) * bs] for k in range(len(s) // bs))
    return len(prefixes), block


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bs", [1, 2, 4])
def test_counts_match_brute_force(seed, bs):
    rng = random.Random(seed)
    stems = [tuple(rng.randrange(5) for _ in range(rng.randrange(1, 8))) for _ in range(4)]
    seqs = [rng.choice(stems) + tuple(rng.randrange(5) for _ in range(rng.randrange(0, 6)))
            for _ in range(30)]
    c = PrefixCounter(block_size=bs)
    for s in seqs:
        c.add(s)
    r = c.finish()
    ideal, block = naive_counts(seqs, bs)
    assert (r.requests, r.prompt_tokens) == (len(seqs), sum(map(len, seqs)))
    assert r.ideal_tokens == ideal
    assert r.block_tokens == block
    assert r.ideal_tokens <= r.block_tokens <= r.prompt_tokens
    assert r.longest == max(map(len, seqs))


def test_repeats_share_all_but_the_last_block():
    # 32 tokens in blocks of 16: a repeat reuses the first block only (vLLM recomputes
    # the last token, block-aligned); 33 tokens: both full blocks are reused.
    for n, per_repeat in ((32, 16), (33, 1)):
        c = PrefixCounter(block_size=16)
        c.add(list(range(n)), copies=8)
        r = c.finish()
        assert r.prompt_tokens == 8 * n and r.ideal_tokens == n
        assert r.block_tokens == n + 7 * per_repeat
        assert r.distinct_blocks == 2


def test_eviction_depends_on_order():
    # Two groups, each a long and a short prompt sharing a first block of 2 tokens.
    seqs = {"A4": [1, 1, 0, 0], "B4": [2, 2, 0, 0], "A3": [1, 1, 5], "B3": [2, 2, 5]}

    def count(order, capacity):
        c = PrefixCounter(block_size=2, capacity_blocks=capacity)
        for s in seqs.values():
            c.add(s)
        return c.finish(order).block_tokens

    # lm-eval's order (longest first) is A4 B4 A3 B3: with room for 2 blocks, B4 evicts
    # A's blocks before A3 comes, and A3 evicts B's before B3: nothing is reused.
    assert count("lm-eval", 2) == 4 + 4 + 3 + 3
    # Token order A4 A3 B4 B3 keeps each group together: A3 and B3 reuse their block.
    assert count("tokens", 2) == 4 + 1 + 4 + 1
    assert count("lm-eval", None) == count("tokens", None) == 10  # no eviction: no order
    with pytest.raises(ValueError, match="order"):
        PrefixCounter().finish("random")
    with pytest.raises(ValueError, match="block_size"):
        PrefixCounter(block_size=0)
    with pytest.raises(ValueError, match="capacity_blocks"):
        PrefixCounter(capacity_blocks=0)


def test_once_adds_a_sequence_once():
    c = PrefixCounter(block_size=2)
    c.add([1, 2, 3], once=True)
    c.add([1, 2, 3], once=True)
    c.add([1, 2, 3], copies=2)
    assert c.finish().requests == 3


def test_encode_pair_moves_trailing_whitespace(tok):
    ctx, cont = encode_pair(tok, "Answer:\n", " A")
    assert ctx == tok.encode("Answer:", add_special_tokens=False)
    assert ctx + cont == tok.encode("Answer:\n A", add_special_tokens=False)
    assert is_greedy({"until": ["\n"]}) and not is_greedy({"do_sample": True, "temperature": 1.0})


def test_count_tasks_prefix_cache(shared_data, tok, monkeypatch):
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    wd, sampled, greedy = count_tasks(["opinionqa_wd", "vk_cot_sampled", "vk_cot"], tok, limit=4,
                                      prefix_cache=PrefixOptions(block_size=16))
    plain = count_tasks(["opinionqa_wd"], tok, limit=4)[0]
    assert wd.prompt_tokens == plain.prompt_tokens  # the same tokens, counted either way
    v, o = wd.prefix_cache["vllm"], wd.prefix_cache["opinbench-vllm"]
    assert (v.requests, v.prompt_tokens) == (wd.requests, wd.prompt_tokens)
    # prompt_logprobs requests read no cache; opinbench-vllm's do, one per scoring prefix.
    assert not v.reads_cache and v.prefilled_tokens == v.prompt_tokens
    assert o.reads_cache and o.prefilled_tokens == o.block_tokens < v.prompt_tokens
    assert wd.documents <= o.requests < v.requests
    assert v.ideal_tokens < v.block_tokens < v.prompt_tokens
    # 8 samples of one prompt: one prefill each (the trie), repeats read the cache.
    s = sampled.prefix_cache["vllm"]
    assert s.requests == 8 * sampled.documents and s.reads_cache
    assert s.ideal_tokens <= s.prompt_tokens / 8 and s.block_tokens < s.prompt_tokens / 4
    assert sampled.prefix_cache["opinbench-vllm"].requests == s.requests
    # greedy repeats (vk_cot has repeats: 1) are not merged into anything
    assert greedy.prefix_cache["opinbench-vllm"].requests == greedy.documents


def test_estimate_command_prints_and_writes_the_prefix_cache(shared_data, tmp_path, monkeypatch, capsys):
    from opinbench.cli import main

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    out = tmp_path / "e.json"
    assert main(["estimate", "opinionqa_wd", "--limit", "2", "--prefix-cache", "--block-size", "32",
                 "--prefill-tps", "100", "--decode-tps", "10", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "blocks of 32 tokens, no eviction" in printed and "opinbench-vllm" in printed
    data = json.loads(out.read_text())
    pc = data["tasks"][0]["prefix_cache"]
    assert pc["vllm"]["prefilled_tokens"] == data["tasks"][0]["prompt_tokens"]  # no cache read
    assert pc["opinbench-vllm"]["prefilled_tokens"] < pc["vllm"]["prefilled_tokens"]
    assert data["gpu_hours_prefix_cache"]["opinbench-vllm"] < data["gpu_hours"]
    assert main(["estimate", "opinionqa_wd", "--prefix-cache", "--block-size", "0"]) == 2
    assert "--block-size" in capsys.readouterr().err
