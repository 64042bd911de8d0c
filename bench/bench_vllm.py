"""``--model vllm`` against ``--model opinbench-vllm`` on the same requests, in one vLLM engine.

One `OpinbenchVLLM` engine (prefix caching on) runs each phase with lm-eval's own code path
(``next_token_scoring=False`` / ``merge_repeats=False``: exactly lm-eval's ``VLLM``) and with
opinbench's, the prefix cache emptied before each phase, on the real requests of

* ``opinionqa_wd`` (loglikelihood: one request per choice with ``prompt_logprobs``, against
  next-token scoring, one request per distinct prefix, reading the prefix cache), and
* ``opinionqa_wd_sampled`` (16 sampled generations per document: 16 identical requests,
  against one request with ``n=16``).

It prints per phase the wall time, the requests sent, and vLLM's own counters: prompt tokens,
those read from the prefix cache, and the tokens really prefilled (their difference), and the
largest difference between the two paths' loglikelihoods. Run it in the vLLM environment::

    OPINBENCH_DATA_DIR=../shared/data VLLM_CPU_KVCACHE_SPACE=2 VLLM_TARGET_DEVICE=cpu \\
        PYTHONPATH=. ../vllm-venv/bin/python bench/bench_vllm.py --docs 100 --sampled-docs 20 \\
        --model_args block_size=32   # vLLM's CPU attention needs a multiple of 32

On a GPU leave out ``block_size`` (16 there) and the two environment variables.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def parse_model_args(text: str) -> dict[str, Any]:
    from lm_eval.utils import simple_parse_args_string

    return simple_parse_args_string(text) if text else {}


def counters(lm: Any) -> dict[str, float]:
    return {m.name: float(getattr(m, "value", 0) or 0) for m in lm.model.get_metrics()
            if hasattr(m, "value")}


def build(task_name: str, docs: int, lm: Any) -> list[Any]:
    """The task's requests as lm-eval's evaluator hands them to the model (repeats cloned)."""
    from opinbench.estimate.counts import load_tasks

    task = load_tasks([task_name])[task_name]
    task.build_all_requests(limit=docs, apply_chat_template=True, fewshot_as_multiturn=True,
                            chat_template=lm.apply_chat_template, tokenizer_name=lm.tokenizer_name)
    return [inst for inst in task.instances for _ in range(inst.repeats or 1)]


def phase(lm: Any, name: str, method: str, requests: list[Any], **switches: bool) -> dict:
    for k, v in switches.items():
        setattr(lm, k, v)
    lm.model.reset_prefix_cache()
    before = counters(lm)
    sent = []
    original = lm.model.generate

    def counting_generate(prompts, *a, **kw):  # the requests that really reach vLLM
        sent.append(len(prompts))
        return original(prompts, *a, **kw)

    lm.model.generate = counting_generate
    start = time.perf_counter()
    try:
        result = getattr(lm, method)(requests, disable_tqdm=True)
    finally:
        lm.model.generate = original
    seconds = time.perf_counter() - start
    after = counters(lm)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    prompt = delta.get("vllm:prompt_tokens", 0)
    hits = delta.get("vllm:prefix_cache_hits", 0)
    row = {"phase": name, "seconds": seconds, "lm_eval_requests": len(requests),
           "vllm_requests": sum(sent), "prompt_tokens": prompt, "cache_hits": hits,
           "prefilled": prompt - hits, "generated": delta.get("vllm:generation_tokens", 0)}
    print(f"{name:34s} {seconds:8.1f} s  {row['lm_eval_requests']:7d} {row['vllm_requests']:7d} "
          f"{prompt:10.0f} {hits:10.0f} {prompt - hits:10.0f} {row['generated']:9.0f}", flush=True)
    return {"row": row, "result": result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2", help="packaged name, folder or hub id")
    ap.add_argument("--model_args", default="", help="more vllm.LLM / lm-eval VLLM arguments")
    ap.add_argument("--docs", type=int, default=100, help="opinionqa_wd documents")
    ap.add_argument("--sampled-docs", type=int, default=20, help="opinionqa_wd_sampled documents")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    from opinbench.harness.vllm_model import OpinbenchVLLM
    from opinbench.models import resolve

    kwargs = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True,
              **parse_model_args(args.model_args), "enable_prefix_caching": True,
              "disable_log_stats": False}
    start = time.perf_counter()
    lm = OpinbenchVLLM(pretrained=resolve(args.model), batch_size="auto", **kwargs)
    print(f"engine ready in {time.perf_counter() - start:.0f} s; block size "
          f"{lm.model.llm_engine.vllm_config.cache_config.block_size}")
    wd = build("opinionqa_wd", args.docs, lm)
    sampled = build("opinionqa_wd_sampled", args.sampled_docs, lm)
    lm.generate_until(sampled[:2], disable_tqdm=True)  # warm-up, not timed
    print(f"{'phase':34s} {'wall':>10s}  {'lm-eval':>7s} {'vLLM':>7s} {'prompt tok':>10s} "
          f"{'cache hits':>10s} {'prefilled':>10s} {'generated':>9s}")
    rows = []
    ll = {}
    for name, on in (("loglikelihood, lm-eval vllm", False), ("loglikelihood, opinbench-vllm", True)):
        r = phase(lm, name, "loglikelihood", wd, next_token_scoring=on)
        rows.append(r["row"])
        ll[on] = r["result"]
    for name, on in (("generate x16, lm-eval vllm", False), ("generate x16, opinbench-vllm", True)):
        rows.append(phase(lm, name, "generate_until", sampled, merge_repeats=on)["row"])
    diff = max(abs(a[0] - b[0]) for a, b in zip(ll[False], ll[True], strict=True))
    same_greedy = all(a[1] == b[1] for a, b in zip(ll[False], ll[True], strict=True))
    print(f"largest loglikelihood difference between the two paths: {diff:.2e}; "
          f"is_greedy {'identical' if same_greedy else 'DIFFERS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "max_abs_diff": diff, "same_greedy": same_greedy,
                       "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
