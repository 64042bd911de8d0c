"""`opinbench.harness.vllm_model` against a fake vLLM backend (the real one: test_vllm_backend.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from opinbench.harness import vllm_model
from opinbench.harness.vllm_model import MAX_SCORED_TOKENS, OpinbenchVLLMMixin


def toy_logprob(prefix, token):
    return -((sum(prefix) * 31 + 7 * token) % 11) / 4 - 0.01


def toy_argmax(prefix):
    # after the "\n" (token 0) one of the letters 10-12, else the "\n"
    return 10 + sum(prefix) % 3 if prefix[-1] == 0 else 0


class FakeVLLM:
    """lm-eval's VLLM as the mixin sees it: `_model_generate` answers from a toy model,
    `_loglikelihood_tokens` is the reference (what prompt_logprobs would give)."""

    max_length = 64

    def __init__(self, max_logprobs=None):
        self.model_args = {"max_logprobs": max_logprobs} if max_logprobs else {}
        self.sent: list[tuple[list[int], object]] = []
        self.reference_calls = 0
        self.cached: list[tuple] = []
        self.cache_hook = SimpleNamespace(add_partial=lambda *a: self.cached.append(a))

    def _model_generate(self, requests, generate=False, sampling_params=None):
        assert generate
        outs = []
        for prompt, sp in zip(requests, sampling_params, strict=True):
            self.sent.append((list(prompt), sp))
            if getattr(sp, "logprob_token_ids", None):
                assert sp.max_tokens == 1 and sp.temperature == 0.0
                lps = {t: SimpleNamespace(logprob=toy_logprob(prompt, t)) for t in sp.logprob_token_ids}
                comp = SimpleNamespace(logprobs=[lps], token_ids=[toy_argmax(prompt)])
                outs.append(SimpleNamespace(outputs=[comp]))
            else:
                n = getattr(sp, "n", 1)
                outs.append(SimpleNamespace(outputs=[
                    SimpleNamespace(text=f"{sum(prompt)}:{len(self.sent)}:{j}") for j in range(n)]))
        return outs

    def _loglikelihood_tokens(self, requests, disable_tqdm=False):
        self.reference_calls += len(requests)
        out = []
        for _key, ctx, cont in requests:
            total, greedy, prefix = 0.0, True, list(ctx)
            for t in cont:
                total += toy_logprob(prefix, t)
                greedy = greedy and toy_argmax(prefix) == t
                prefix.append(t)
            out.append((total, greedy))
        return out


class Model(OpinbenchVLLMMixin, FakeVLLM):
    def _sampling_params(self, **kwargs):
        return SimpleNamespace(n=1, **kwargs)


def letter_requests():
    """Two documents x 5 choices, each continuation "\\n" + letter (as lm-eval moves the
    chat template's trailing newline), plus a rolling window and a long continuation."""
    reqs = []
    for doc, ctx in enumerate(([1, 2, 3, 4], [1, 2, 3, 9, 9])):
        for letter in (10, 11, 12, 20, 21):
            reqs.append(((f"ctx{doc}", f"{letter}"), ctx, [0, letter]))
    reqs.append((None, [5], [1, 2]))  # a loglikelihood_rolling window: no cache key
    reqs.append((("long", "x"), [5], list(range(1, MAX_SCORED_TOKENS + 2))))
    return reqs


def test_loglikelihood_scores_match_the_reference():
    reqs = letter_requests()
    model = Model()
    got = model._loglikelihood_tokens(reqs)
    want = FakeVLLM()._loglikelihood_tokens(reqs)
    assert [g[1] for g in got] == [w[1] for w in want]
    assert sum(g[1] for g in got) == 2  # one greedy letter per document
    assert [g[0] for g in got] == pytest.approx([w[0] for w in want], abs=1e-12)
    # the two exceptions went the reference way; the 10 choices became 4 prefixes
    assert model.reference_calls == 2
    prompts = [p for p, _ in model.sent]
    assert prompts == sorted(prompts) and len(prompts) == 4
    assert prompts[0] == [1, 2, 3, 4] and model.sent[0][1].logprob_token_ids == [0]
    assert model.sent[1][1].logprob_token_ids == [10, 11, 12, 20, 21]
    # lm-eval's cache sees every answer the fast way, keyed as lm-eval keys it
    assert [c[1] for c in model.cached] == [r[0] for r in reqs[:10]]
    assert all(c[0] == "loglikelihood" for c in model.cached)


def test_max_logprobs_splits_a_prefix():
    model = Model(max_logprobs=2)
    reqs = letter_requests()[:5]
    got, want = model._loglikelihood_tokens(reqs), FakeVLLM()._loglikelihood_tokens(reqs)
    assert [g[0] for g in got] == pytest.approx([w[0] for w in want], abs=1e-12)
    assert [len(sp.logprob_token_ids) for _, sp in model.sent] == [1, 2, 2, 1]


def test_plan_scoring_groups_by_prefix():
    plan = vllm_model.plan_scoring([([1], [2, 3]), ([1], [2, 4]), ([1, 2], [5])], max_targets=-1)
    assert plan == [((1,), (2,)), ((1, 2), (3, 4, 5))]


def test_identical_generations_become_one_request_with_n():
    sample = SimpleNamespace(n=1, temperature=1.0)
    other = SimpleNamespace(n=1, temperature=0.5)
    greedy = SimpleNamespace(n=1, temperature=0.0)
    prompts = [[1, 2]] * 3 + [[3]] + [[1, 2]] * 2 + [[4]] * 2
    params = [sample] * 4 + [other] * 2 + [greedy] * 2
    model = Model()
    outs = model._model_generate(prompts, generate=True, sampling_params=params)
    assert len(outs) == len(prompts) and all(len(o.outputs) == 1 for o in outs)
    # [1,2]x3 sampled -> n=3; [3] -> n=1; [1,2] at another temperature -> n=2; greedy -> once
    assert [(p, sp.n) for p, sp in model.sent] == [([1, 2], 3), ([3], 1), ([1, 2], 2), ([4], 1)]
    texts = [o.outputs[0].text for o in outs]
    assert texts[:3] == ["3:1:0", "3:1:1", "3:1:2"]  # the n completions, in order
    assert texts[3] == "3:2:0" and texts[4:6] == ["3:3:0", "3:3:1"]
    assert texts[6] == texts[7] == "4:4:0"  # greedy: the one text, twice
    assert sample.n == 1  # the caller's parameters are not changed


def test_scatter_refuses_a_wrong_number_of_completions():
    out = SimpleNamespace(outputs=[SimpleNamespace(text="a"), SimpleNamespace(text="b")])
    with pytest.raises(RuntimeError, match="2 completions for a request of n=3"):
        vllm_model.scatter_outputs([out], [[0, 1, 2]], 3)


def test_register_is_lazy():
    from lm_eval.api.registry import model_registry

    from opinbench.harness import lm_models

    lm_models.register()
    lm_models.register()  # twice is fine
    assert model_registry._objs[vllm_model.MODEL_NAME] == "opinbench.harness.vllm_model:OpinbenchVLLM"
    with pytest.raises(AttributeError):
        vllm_model.NotAThing  # noqa: B018


def test_switches_give_lm_evals_own_behaviour():
    reqs = letter_requests()
    model = Model(next_token_scoring=False, merge_repeats=False)
    assert model._loglikelihood_tokens(reqs) == FakeVLLM()._loglikelihood_tokens(reqs)
    assert model.reference_calls == len(reqs) and not model.sent
    sp = SimpleNamespace(n=1, temperature=1.0)
    model._model_generate([[1], [1]], generate=True, sampling_params=[sp, sp])
    assert [p for p, _ in model.sent] == [[1], [1]]


def test_data_parallel_replicas_get_runs_of_neighbours():
    from more_itertools import distribute

    model = Model()
    model.data_parallel_size = 2
    reqs = letter_requests()[:10]
    got = model._loglikelihood_tokens(reqs)
    assert [g[0] for g in got] == pytest.approx([w[0] for w in FakeVLLM()._loglikelihood_tokens(reqs)])
    sent = [tuple(p) for p, _ in model.sent]
    first, second = (list(x) for x in distribute(2, sent))  # as lm-eval deals them out
    assert first + second == sorted(sent)  # each replica: a run of the prompts in token order


def test_registering_keeps_lm_evals_own_models_in_a_fresh_process():
    """`opinbench eval` registers opinbench-vllm before lm-eval has loaded its registry: `hf` must stay."""
    import subprocess
    import sys

    code = (
        "from opinbench.harness import lm_models; lm_models.register()\n"
        "from lm_eval.api.registry import get_model, model_registry\n"
        "assert 'opinbench-vllm' in model_registry\n"
        "print(get_model('hf').__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("HFLM")
