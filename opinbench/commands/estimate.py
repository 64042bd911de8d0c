"""opinbench estimate: documents, tokens, judge cost and GPU-hours of a run, before running it.

LEADERBOARD_OR_TASKS is a leaderboard (a name such as smoke, or its definition
file, leaderboards/smoke.yaml), a comma-separated list of tasks and lm-eval groups
(opinbench, vk_suite, ...), or a YAML/JSON file with a tasks: list. A leaderboard
is counted as its worker runs it: with its metadata, its fixed documents
(samples) and its max_gen_toks, and its pinned judges are priced unless
--judge or --moderator name others. A task or group name wins over a leaderboard
of the same name (opinbench); give that leaderboard's file instead.

Generated tokens are counted at max_gen_toks (an upper bound) and, with
--compare-run, at the run's measured mean per generation. --prefix-cache adds,
per task, the prompt tokens that must be prefilled with no cache, with an ideal
prefix cache and with vLLM's automatic prefix caching, for the prompts of
--model vllm and of --model opinbench-vllm (opinbench/estimate/prefix.py,
docs/vllm.md); the model time is then given with prefix caching too.

Examples:
  opinbench estimate smoke --model smollm2
  opinbench estimate opinionqa_wd,vk_cot --model smollm2 --judge anthropic:claude-sonnet-4-6
  opinbench estimate opinbench --model Qwen/Qwen2.5-7B-Instruct --prefill-tps 20000 \\
      --decode-tps 2500 --judge openai:gpt-4o-mini --moderator openai:omni-moderation-latest
  # check the counts against a finished run of the same tasks and --limit
  opinbench estimate vk_cot --limit 4 --model smollm2 --compare-run runs/vk/
  # prefill tokens a prefix cache saves (vLLM blocks of 16 tokens, no eviction)
  opinbench estimate opinionqa_steered,vk_cot_sampled --prefix-cache
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.estimate")


def register(sub: Any, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tasks", metavar="LEADERBOARD_OR_TASKS",
                   help="a leaderboard (smoke, leaderboards/smoke.yaml) or tasks and groups, comma-separated")
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


@dataclass
class Plan:
    """What a run evaluates: its tasks and lm-eval's ``--metadata``, ``--samples`` and
    ``--gen_kwargs``; from a leaderboard, also its pinned judges (``{kind: {provider, model,
    settings}}``) and the definition file (``source``)."""

    tasks: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[int]] | None = None
    gen_kwargs: dict[str, Any] | None = None
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None


def from_definition(name_or_path: str | Path) -> Plan:
    """The plan of a leaderboard definition, as its worker runs it (`opinbench.leaderboard.worker`)."""
    from opinbench.leaderboard.definition import load_definition

    d = load_definition(name_or_path)
    max_gen = d.settings.get("max_gen_toks")
    return Plan(d.task_names, d.metadata, d.samples, {"max_gen_toks": int(max_gen)} if max_gen else None,
                dict(d.judges), d.source)


def _listed(path: Path) -> Plan:
    """A YAML/JSON file: a leaderboard definition (``tasks:`` a mapping), else a ``tasks:`` list."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not readable YAML/JSON ({err})") from None
    tasks = data.get("tasks") if isinstance(data, dict) else data
    if isinstance(tasks, dict):
        return from_definition(path)
    if not isinstance(tasks, list) or not tasks:
        raise ConfigError(f"{path}: expected a leaderboard definition or a `tasks:` list")
    return Plan([str(t["name"] if isinstance(t, dict) else t) for t in tasks])


def _is_leaderboard(name: str) -> bool:
    """A shipped leaderboard's name that is no task or group of opinbench's."""
    from opinbench.harness.tasks import index
    from opinbench.leaderboard.definition import leaderboards_dir

    return (leaderboards_dir() / f"{name}.yaml").is_file() and name not in index().all_tasks


def plan(spec: str) -> Plan:
    """The plan of LEADERBOARD_OR_TASKS (see the module docstring).

    >>> plan("opinionqa_wd, vk_cot").tasks
    ['opinionqa_wd', 'vk_cot']
    """
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        return _listed(path)
    names = [t.strip() for t in spec.split(",") if t.strip()]
    if not names:
        raise ConfigError("no task named")
    if len(names) == 1 and _is_leaderboard(names[0]):
        return from_definition(names[0])
    return Plan(names)


def task_names(spec: str) -> list[str]:
    """The tasks of LEADERBOARD_OR_TASKS (`plan`)."""
    return plan(spec).tasks


def describe(p: Plan) -> str:
    """One line saying what a leaderboard's plan counts (empty for a plain task list)."""
    if not p.source:
        return ""
    parts = [f"leaderboard {p.source}: tasks {', '.join(p.tasks)}"]
    if p.metadata:
        parts.append(f"metadata {json.dumps(p.metadata, sort_keys=True)}")
    if p.samples:
        parts.append("documents " + "; ".join(f"{t} {v}" for t, v in p.samples.items()))
    if p.gen_kwargs:
        parts.append(", ".join(f"{k} {v}" for k, v in p.gen_kwargs.items()))
    if p.judges:
        parts.append("judges " + ", ".join(f"{k} {j['provider']}:{j['model']}" for k, j in p.judges.items()))
    return "; ".join(parts)


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


def _pinned(p: Plan, kind: str) -> str | None:
    spec = p.judges.get(kind)
    return f"{spec['provider']}:{spec['model']}" if spec else None


def print_counts(counts: list, typical: dict[str, float], out: dict[str, Any]) -> dict[str, Any]:
    """The per-task table (also into ``out["tasks"]``); returns the totals."""
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


def judge_loads(args: argparse.Namespace, p: Plan, counts: list, tokenizer: Any,
                per_gen: dict[str, float]) -> list:
    """The judges' loads, priced: ``--judge``/``--moderator``, else the leaderboard's pinned ones
    (a pinned ``no_control`` setting respected)."""
    from opinbench.estimate import cost
    from opinbench.estimate.prices import load_prices

    prices = load_prices(args.prices)
    loads = []
    for kind, given in (("faithfulness", args.judge), ("moderation", args.moderator)):
        model = given or _pinned(p, kind)
        if model:
            pinned = {} if given else dict(p.judges[kind].get("settings") or {})
            loads.append(cost.judge_load(kind, counts, tokenizer, model, gen_tokens_per_task=per_gen,
                                         control=not (args.no_control or pinned.get("no_control"))))
    for load in loads:
        cost.price(load, prices)
        row = prices.row(load.model)
        money = ("not in the price table (--prices)" if load.cost_live is None else
                 f"${load.cost_live:.2f} live, ${load.cost_batch:.2f} with --mode batch"
                 + (f" (priced as {row})" if row != load.model else ""))
        print(f"{load.role} {load.model}: {load.calls} calls + {load.control_calls} control, "
              f"{load.input_tokens} input / {load.output_tokens} output tokens "
              f"(counted with {args.model}'s tokenizer): {money}")
    return loads


def print_model_time(args: argparse.Namespace, counts: list, gen: float, prompt_tokens: int,
                     prefix: Any, out: dict[str, Any]) -> None:
    """GPU-hours at the measured throughput (with prefix caching too, under --prefix-cache)."""
    from opinbench.estimate import cost
    from opinbench.estimate.counts import PREFIX_BACKENDS

    if not (args.prefill_tps and args.decode_tps):
        print("model time: pass --prefill-tps and --decode-tps (measured, see bench/README.md)")
        return
    hours = cost.gpu_hours(prompt_tokens, gen, prefill_tps=args.prefill_tps, decode_tps=args.decode_tps)
    out["gpu_hours"] = hours
    print(f"model time: {hours:.3f} GPU-hours at {args.prefill_tps:g} prompt and "
          f"{args.decode_tps:g} generated tokens/s")
    if prefix:
        out["gpu_hours_prefix_cache"] = {}
        for backend in PREFIX_BACKENDS:
            prefill = sum(c.prefix_cache[backend].prefilled_tokens for c in counts)
            h = cost.gpu_hours(prefill, gen, prefill_tps=args.prefill_tps, decode_tps=args.decode_tps)
            out["gpu_hours_prefix_cache"][backend] = h
            print(f"  with --model {backend} and prefix caching: {h:.3f} GPU-hours "
                  f"({prefill} tokens prefilled)")


def print_comparison(run_dir: Path, counts: list, measured: dict[str, Any], out: dict[str, Any]) -> None:
    """The estimate against a finished run's logged prompts."""
    out["compare_run"] = {}
    print(f"against {run_dir} (logged prompts re-tokenised):")
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


def main(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from opinbench.estimate.counts import PrefixOptions, count_tasks, logged_prompt_tokens
    from opinbench.estimate.prefix import PrefixCounter
    from opinbench.models import resolve

    p = plan(args.tasks)
    try:
        prefix = PrefixOptions(args.block_size, args.kv_cache_blocks) if args.prefix_cache else None
        if prefix:
            PrefixCounter(prefix.block_size, prefix.capacity_blocks)  # checks the numbers
    except ValueError as err:
        raise ConfigError(f"--block-size / --kv-cache-blocks: {err}") from None
    tokenizer = AutoTokenizer.from_pretrained(resolve(args.model))
    if describe(p):
        print(describe(p))
    counts = count_tasks(p.tasks, tokenizer, limit=args.limit, apply_chat_template=not args.no_chat_template,
                         prefix_cache=prefix, metadata=p.metadata, samples=p.samples, gen_kwargs=p.gen_kwargs)
    measured = logged_prompt_tokens(args.compare_run, tokenizer) if args.compare_run else {}
    typical = {t: m["generated_tokens"] / m["requests"] for t, m in measured.items()
               if m["generated_tokens"] and m["requests"]}
    upper = {c.task: (c.max_gen_tokens / c.generations) if c.generations else 0.0 for c in counts}
    out: dict[str, Any] = {"model": args.model, "limit": args.limit, "tasks": []}
    if p.source:
        out["leaderboard"] = {"source": p.source, "metadata": p.metadata, "samples": p.samples,
                              "gen_kwargs": p.gen_kwargs}
    tot = print_counts(counts, typical, out)
    if prefix:
        print_prefix_cache(counts, prefix)
    per_gen = {t: typical.get(t, upper[t]) for t in upper}
    out["judges"] = [load.as_dict() for load in judge_loads(args, p, counts, tokenizer, per_gen)]
    print_model_time(args, counts, tot["typ"] if typical else tot["max_gen_tokens"], tot["prompt_tokens"],
                     prefix, out)
    if measured:
        print_comparison(args.compare_run, counts, measured, out)
    if args.json:
        from opinbench.io import write_json

        write_json(args.json, out)
    return 0
