"""``opinbench estimate``: documents, tokens, judge cost and GPU-hours of a set of tasks.

Examples::

    opinbench estimate opinionqa_wd,vk_cot --model smollm2 --judge anthropic:claude-sonnet-4-6
    opinbench estimate opinbench --model Qwen/Qwen2.5-7B-Instruct \\
        --prefill-tps 20000 --decode-tps 2500 --judge openai:gpt-4o-mini --moderator \\
        openai:omni-moderation-latest
    # check the counts against a finished run of the same tasks and --limit
    opinbench estimate vk_cot --limit 4 --model smollm2 --compare-run runs/vk/
    # prefill tokens a prefix cache saves (vLLM blocks of 16 tokens, no eviction)
    opinbench estimate opinionqa_steered,vk_cot_sampled --prefix-cache

TASKS is a comma-separated list of tasks and lm-eval groups (``opinbench``,
``vk_suite``, ...), or a YAML/JSON file with a ``tasks:`` list (a leaderboard).
Generated tokens are counted at ``max_gen_toks`` (an upper bound) and, with
``--compare-run``, at the run's measured mean per generation. ``--prefix-cache``
adds, per task, the prompt tokens that must be prefilled with no cache, with an
ideal prefix cache and with vLLM's automatic prefix caching, for the prompts of
``--model vllm`` and of ``--model opinbench-vllm`` (opinbench/estimate/prefix.py,
docs/vllm.md); the model time is then given with prefix caching too.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.estimate")


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", metavar="LEADERBOARD_OR_TASKS")
    p.add_argument("--model", default="smollm2",
                   help="the evaluated model whose tokenizer counts (packaged name, folder or hub id)")
    p.add_argument("--limit", type=int, help="at most N documents per task, as lm-eval --limit")
    p.add_argument("--no-chat-template", action="store_true",
                   help="count prompts without the model's chat template")
    p.add_argument("--judge", help="faithfulness judge PROVIDER:MODEL (priced from the table)")
    p.add_argument("--moderator", help="moderator PROVIDER:MODEL")
    p.add_argument("--no-control", action="store_true", help="leave out the judge control set")
    p.add_argument("--prices", type=Path, help="YAML overriding rows of opinbench/llm/prices.yaml")
    p.add_argument("--prefill-tps", type=float, help="measured prompt tokens/s of the model")
    p.add_argument("--decode-tps", type=float, help="measured generated tokens/s of the model")
    p.add_argument("--compare-run", type=Path,
                   help="lm-eval --log_samples output of the same tasks: compare its tokens")
    p.add_argument("--prefix-cache", action="store_true",
                   help="count the prefill tokens a prefix cache saves (vLLM blocks, ideal)")
    p.add_argument("--block-size", type=int, default=16,
                   help="vLLM KV block size in tokens (its GPU default: 16; CPU: 128, or 32)")
    p.add_argument("--kv-cache-blocks", type=int,
                   help="prefix cache capacity in blocks, least recently used evicted "
                        "(default: no eviction)")
    p.add_argument("--json", type=Path, help="also write the estimate as JSON")
    p.set_defaults(func=main)


def task_names(spec: str) -> list[str]:
    """Task names from a comma list or a YAML/JSON file with ``tasks:``.

    >>> task_names("opinionqa_wd, vk_cot")
    ['opinionqa_wd', 'vk_cot']
    """
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        import yaml

        data = yaml.safe_load(path.read_text())
        tasks = data.get("tasks") if isinstance(data, dict) else data
        if not isinstance(tasks, list) or not tasks:
            raise ConfigError(f"{path}: expected a `tasks:` list")
        return [str(t["name"] if isinstance(t, dict) else t) for t in tasks]
    names = [t.strip() for t in spec.split(",") if t.strip()]
    if not names:
        raise ConfigError("no task named")
    return names


def print_prefix_cache(counts: list, prefix: Any) -> None:
    """The prefill table: per task and backend, no cache / ideal / vLLM blocks / prefilled."""
    from opinbench.estimate.counts import PREFIX_BACKENDS

    evict = (f"{prefix.capacity_blocks} blocks, least recently used evicted"
             if prefix.capacity_blocks else "no eviction")
    print(f"\nprompt tokens to prefill with a prefix cache (vLLM APC: blocks of "
          f"{prefix.block_size} tokens, {evict}; saved: against the backend's no-cache count):")
    print(f"{'task':28s} {'--model':15s} {'requests':>9s} {'no cache':>12s} {'ideal':>12s} "
          f"{'saved':>6s} {'vLLM APC':>12s} {'saved':>6s} {'prefilled':>12s} {'APC blocks':>10s}")
    tot = {b: [0, 0, 0, 0, 0] for b in PREFIX_BACKENDS}
    for c in counts:
        for b, pc in c.prefix_cache.items():
            print(f"{c.task:28s} {b:15s} {pc.requests:9d} {pc.prompt_tokens:12d} "
                  f"{pc.ideal_tokens:12d} {pc.ideal_saved:6.1%} {pc.block_tokens:12d} "
                  f"{pc.block_saved:6.1%} {pc.prefilled_tokens:12d} {pc.distinct_blocks:10d}")
            for i, v in enumerate((pc.requests, pc.prompt_tokens, pc.ideal_tokens,
                                   pc.block_tokens, pc.prefilled_tokens)):
                tot[b][i] += v
    for b, (n, p, i, k, f) in tot.items():
        print(f"{'total':28s} {b:15s} {n:9d} {p:12d} {i:12d} {1 - i / max(1, p):6.1%} "
              f"{k:12d} {1 - k / max(1, p):6.1%} {f:12d}")
    longest = max((c.prefix_cache["vllm"].longest + c.max_gen_tokens // max(1, c.generations)
                   for c in counts if c.prefix_cache), default=0)
    print(f"longest prompt plus max_gen_toks: {longest} tokens (vLLM's max_model_len must hold it)")
    print("prefilled: what the backend prefills with prefix caching on. --model vllm asks for "
          "prompt_logprobs on every loglikelihood request, and vLLM does not read the prefix "
          "cache for those; --model opinbench-vllm does (docs/vllm.md).")


def main(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from opinbench.estimate.counts import PrefixOptions, count_tasks, logged_prompt_tokens
    from opinbench.estimate.prefix import PrefixCounter
    from opinbench.models import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(args.model))
    try:
        prefix = PrefixOptions(args.block_size, args.kv_cache_blocks) if args.prefix_cache else None
        if prefix:
            PrefixCounter(prefix.block_size, prefix.capacity_blocks)  # checks the numbers
    except ValueError as err:
        raise ConfigError(f"--block-size / --kv-cache-blocks: {err}") from None
    counts = count_tasks(task_names(args.tasks), tokenizer, limit=args.limit,
                         apply_chat_template=not args.no_chat_template, prefix_cache=prefix)
    measured = logged_prompt_tokens(args.compare_run, tokenizer) if args.compare_run else {}
    typical = {t: m["generated_tokens"] / m["requests"] for t, m in measured.items()
               if m["generated_tokens"] and m["requests"]}
    out: dict[str, Any] = {"model": args.model, "limit": args.limit, "tasks": []}
    tot = _print_counts(counts, typical, out)
    if prefix:
        print_prefix_cache(counts, prefix)
    upper = {c.task: (c.max_gen_tokens / c.generations) if c.generations else 0.0 for c in counts}
    _print_judges(args, counts, tokenizer, {t: typical.get(t, upper[t]) for t in upper}, out)
    _print_model_time(args, counts, tot["typ"] if typical else tot["max_gen_tokens"],
                      tot["prompt_tokens"], prefix, out)
    if measured:
        _print_compare(args, counts, measured, out)
    if args.json:
        from opinbench.io import write_json

        write_json(args.json, out)
    return 0


def _print_counts(
    counts: list[Any], typical: dict[str, float], out: dict[str, Any]
) -> dict[str, Any]:
    """The per-task table and its total (returned); each task's row into ``out``."""
    print(f"{'task':28s} {'docs':>7s} {'requests':>9s} {'prompt tok':>12s} {'max gen tok':>12s}"
          + (f" {'typ gen tok':>12s}" if typical else ""))
    tot = {"documents": 0, "requests": 0, "prompt_tokens": 0, "max_gen_tokens": 0, "typ": 0.0}
    for c in counts:
        typ = typical.get(c.task, 0.0) * c.generations
        print(f"{c.task:28s} {c.documents:7d} {c.requests:9d} {c.prompt_tokens:12d} "
              f"{c.max_gen_tokens:12d}" + (f" {typ:12.0f}" if typical else ""))
        row = {k: getattr(c, k) for k in ("task", "output_type", "documents", "requests",
                                          "prompt_tokens", "max_gen_tokens", "generations")}
        out["tasks"].append({**row, "typical_gen_tokens": typ if c.task in typical else None,
                             **({"prefix_cache": {b: pc.as_dict() for b, pc in
                                                  c.prefix_cache.items()}}
                                if c.prefix_cache else {})})
        for k in ("documents", "requests", "prompt_tokens", "max_gen_tokens"):
            tot[k] += getattr(c, k)
        tot["typ"] += typ
    print(f"{'total':28s} {tot['documents']:7d} {tot['requests']:9d} {tot['prompt_tokens']:12d} "
          f"{tot['max_gen_tokens']:12d}" + (f" {tot['typ']:12.0f}" if typical else ""))
    return tot


def _print_judges(args: argparse.Namespace, counts: list[Any], tokenizer: Any,
                  per_gen: dict[str, float], out: dict[str, Any]) -> None:
    """Judge calls, tokens and dollars of ``--judge`` / ``--moderator``."""
    from opinbench.estimate import cost
    from opinbench.estimate.prices import load_prices

    prices = load_prices(args.prices)
    loads = []
    for kind, model in (("faithfulness", args.judge), ("moderation", args.moderator)):
        if model:
            loads.append(cost.judge_load(kind, counts, tokenizer, model,
                                         gen_tokens_per_task=per_gen, control=not args.no_control))
    for load in loads:
        cost.price(load, prices)
        money = ("not in the price table (--prices)" if load.cost_live is None else
                 f"${load.cost_live:.2f} live, ${load.cost_batch:.2f} with --mode batch")
        print(f"{load.role} {load.model}: {load.calls} calls + {load.control_calls} control, "
              f"{load.input_tokens} input / {load.output_tokens} output tokens "
              f"(counted with {args.model}'s tokenizer): {money}")
    out["judges"] = [load.as_dict() for load in loads]


def _print_model_time(args: argparse.Namespace, counts: list[Any], gen: float, prompt: int,
                      prefix: Any, out: dict[str, Any]) -> None:
    """GPU-hours at the measured throughput (and with prefix caching, when counted)."""
    from opinbench.estimate import cost
    from opinbench.estimate.counts import PREFIX_BACKENDS

    if not (args.prefill_tps and args.decode_tps):
        print("model time: pass --prefill-tps and --decode-tps (measured, see bench/README.md)")
        return
    hours = cost.gpu_hours(prompt, gen, prefill_tps=args.prefill_tps, decode_tps=args.decode_tps)
    out["gpu_hours"] = hours
    print(f"model time: {hours:.3f} GPU-hours at {args.prefill_tps:g} prompt and "
          f"{args.decode_tps:g} generated tokens/s")
    if prefix:
        out["gpu_hours_prefix_cache"] = {}
        for backend in PREFIX_BACKENDS:
            prefill = sum(c.prefix_cache[backend].prefilled_tokens for c in counts)
            h = cost.gpu_hours(prefill, gen, prefill_tps=args.prefill_tps,
                               decode_tps=args.decode_tps)
            out["gpu_hours_prefix_cache"][backend] = h
            print(f"  with --model {backend} and prefix caching: {h:.3f} GPU-hours "
                  f"({prefill} tokens prefilled)")


def _print_compare(args: argparse.Namespace, counts: list[Any], measured: dict[str, Any],
                   out: dict[str, Any]) -> None:
    """The estimate against a finished run's logged prompts (``--compare-run``)."""
    out["compare_run"] = {}
    print(f"against {args.compare_run} (logged prompts re-tokenised):")
    for c in counts:
        m = measured.get(c.task)
        if not m:
            print(f"  {c.task}: not in the run")
            continue
        diff = (c.prompt_tokens - m["prompt_tokens"]) / max(1, m["prompt_tokens"])
        out["compare_run"][c.task] = {**m, "estimated_prompt_tokens": c.prompt_tokens,
                                      "relative_difference": diff}
        print(f"  {c.task:26s} prompt tokens {c.prompt_tokens} estimated, "
              f"{m['prompt_tokens']} logged ({diff:+.2%}); requests {c.requests} vs "
              f"{m['requests']}; generated {m['generated_tokens']} logged")
