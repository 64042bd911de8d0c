"""Count what a run would feed a model: documents, requests, prompt and generated tokens.

The prompts are the real ones: lm-eval builds every task's requests exactly as
``opinbench eval`` would (`lm_eval.api.task.Task.build_all_requests`, the model's
chat template applied as lm-eval's ``HFLM.apply_chat_template`` does), and the
model's own tokenizer counts them the way lm-eval's hf model encodes them
(``add_special_tokens=False``; a chat template carries its special tokens as text):

* ``loglikelihood`` requests: context + continuation, one forward pass each;
* ``generate_until`` requests: the context, once per repeat (lm-eval clones a
  request ``repeats`` times), and up to ``max_gen_toks`` generated tokens each.

`logged_prompt_tokens` counts the same quantity from a finished run's
``--log_samples`` files, to check the estimate against what really ran.

With ``prefix_cache`` (`PrefixOptions`), each task also gets the prefill tokens a
prefix cache saves (`opinbench.estimate.prefix`) on two sets of token sequences:
``vllm``, the requests lm-eval's vllm backend sends (a ``loglikelihood`` request as
lm-eval's ``TemplateLM._encode_pair`` encodes it: the context's trailing whitespace
moved to the continuation, the context encoded alone, the continuation the rest of
the whole encoded pair; a generation once per repeat), and ``opinbench-vllm``, the
prompts `opinbench.harness.vllm_model` sends for the same requests (each distinct
scoring prefix once; a greedy generation once for all its repeats).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.estimate.prefix import Order, PrefixCacheCount, PrefixCounter

log = logging.getLogger(__name__)


@dataclass
class TaskCount:
    """One task's load.

    Attributes:
        task: lm-eval task name.
        output_type: ``loglikelihood``, ``multiple_choice`` or ``generate_until``.
        documents: distinct documents.
        requests: model calls (generation repeats included).
        prompt_tokens: tokens fed as prompts over all requests.
        max_gen_tokens: upper bound of generated tokens (``max_gen_toks`` per generation).
        generations: generated completions (documents x repeats); 0 for loglikelihood tasks.
        judge_docs: per generation, ``(family, question, options)`` for the judge estimate.
    """

    task: str
    output_type: str
    documents: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    max_gen_tokens: int = 0
    generations: int = 0
    judge_docs: list[tuple[str, str, list[str]]] = field(default_factory=list, repr=False)
    prefix_cache: dict[str, PrefixCacheCount] = field(default_factory=dict)


@dataclass(frozen=True)
class PrefixOptions:
    """How `count_tasks` counts prefix caching (`opinbench.estimate.prefix`)."""

    block_size: int = 16
    capacity_blocks: int | None = None


# The backends whose prompts `count_tasks` counts under a prefix cache, and the order
# each sends them in (`PrefixCounter.finish`).
PREFIX_BACKENDS: dict[str, Order] = {"vllm": "lm-eval", "opinbench-vllm": "tokens"}


def load_tasks(tasks: Sequence[str], include_path: Path | None = None,
               metadata: dict[str, Any] | None = None,
               gen_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{task name: lm-eval Task}``, groups expanded to their tasks (`opinbench.harness.tasks`);
    ``metadata`` is lm-eval's ``--metadata`` (task settings such as a leaderboard's ``split``),
    ``gen_kwargs`` its ``--gen_kwargs``, laid over the generation tasks' settings as
    ``lm_eval.simple_evaluate`` does (a leaderboard's ``max_gen_toks``).

    A name that is not opinbench's may be one of lm-eval's own tasks: those are indexed
    (some seconds) only when opinbench's folder lacks a name."""
    from opinbench.harness.tasks import load_tasks as load

    loaded = load(tasks, metadata, include_path=include_path, lm_eval_tasks=True)
    for task in loaded.values():
        if gen_kwargs and task.get_config("output_type") == "generate_until":
            task.set_config(key="generation_kwargs", value=dict(gen_kwargs), update=True)
    return loaded


def chat_template_fn(tokenizer: Any) -> Any:
    """lm-eval's ``HFLM.apply_chat_template``, for a bare tokenizer."""

    def apply(history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return tokenizer.apply_chat_template(
            history,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )

    return apply


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def n_tokens(tokenizer: Any, text: str) -> int:
    return len(encode(tokenizer, text))


def encode_pair(tokenizer: Any, context: str, continuation: str,
                encode_context: Callable[[str], list[int]] | None = None,
                ) -> tuple[list[int], list[int]]:
    """lm-eval's ``TemplateLM._encode_pair`` for a causal model (context, continuation)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode(tokenizer, context + continuation)
    context_enc = (encode_context or (lambda t: encode(tokenizer, t)))(context)
    return context_enc, whole[len(context_enc):]


def is_greedy(gen_kwargs: dict[str, Any]) -> bool:
    """Whether lm-eval decodes greedily with these ``generation_kwargs``: as
    ``lm_eval.models.utils.normalize_gen_kwargs`` reads them, ``do_sample`` false or a
    temperature of 0 (its default when none is given).

    >>> is_greedy({"do_sample": False, "temperature": 1.0}), is_greedy({"temperature": 0.7})
    (True, False)
    >>> is_greedy({"do_sample": True})
    True
    """
    return not gen_kwargs.get("do_sample", True) or float(gen_kwargs.get("temperature", 0.0)) == 0.0


def _count_instances(c: TaskCount, instances: Sequence[Any], tokenizer: Any,
                     counters: dict[str, PrefixCounter]) -> None:
    """Add a task's requests (lm-eval ``Instance`` objects) to ``c`` and to the prefix ``counters``."""
    # A document's choices share its context: encode it once, not once per choice.
    encode_context = functools.lru_cache(maxsize=64)(lambda text: encode(tokenizer, text))
    for inst in instances:
        repeats = int(getattr(inst, "repeats", 1) or 1)
        if inst.request_type == "generate_until":
            context, gen_kwargs = inst.args[0], inst.args[1]
            ids = encode(tokenizer, context)
            c.requests += repeats
            c.prompt_tokens += repeats * len(ids)
            if counters:
                counters["vllm"].add(ids, repeats)
                counters["opinbench-vllm"].add(ids, 1 if is_greedy(gen_kwargs) else repeats)
            c.max_gen_tokens += repeats * int(gen_kwargs.get("max_gen_toks", 256))
            c.generations += repeats
            doc = inst.doc if isinstance(inst.doc, dict) else {}
            if doc.get("family") and doc.get("options"):
                c.judge_docs.extend(
                    [(str(doc["family"]), str(doc.get("question", "")), list(doc["options"]))]
                    * repeats
                )
        else:
            context, continuation = inst.args[0], inst.args[1]
            c.requests += 1
            if not counters:
                c.prompt_tokens += n_tokens(tokenizer, context + continuation)
                continue
            context_enc, continuation_enc = encode_pair(tokenizer, context, continuation,
                                                        encode_context)
            ids = context_enc + continuation_enc
            c.prompt_tokens += len(ids)
            counters["vllm"].add(ids)
            # opinbench-vllm scores each continuation token from the next-token
            # logprobs of the prefix before it, each distinct prefix once.
            for j in range(len(continuation_enc)):
                counters["opinbench-vllm"].add(context_enc + continuation_enc[:j], once=True)


def count_tasks(
    tasks: Sequence[str],
    tokenizer: Any,
    *,
    limit: int | None = None,
    apply_chat_template: bool = True,
    include_path: Path | None = None,
    metadata: dict[str, Any] | None = None,
    prefix_cache: PrefixOptions | None = None,
    samples: dict[str, list[int]] | None = None,
    gen_kwargs: dict[str, Any] | None = None,
) -> list[TaskCount]:
    """Build the requests of ``tasks`` (task or group names) and count their tokens
    (``metadata``, ``samples``, ``gen_kwargs``: lm-eval's ``--metadata``, ``--samples`` and
    ``--gen_kwargs``, as the run will be given them)."""
    if limit is not None and samples:
        raise ConfigError("--limit and a fixed subset of documents (samples) exclude each other, as in lm-eval")
    counts = []
    for name, task in load_tasks(tasks, include_path, metadata, gen_kwargs).items():
        task.build_all_requests(
            limit=limit,
            samples=(samples or {}).get(name),
            apply_chat_template=apply_chat_template,
            fewshot_as_multiturn=apply_chat_template,  # lm-eval's default with a chat template
            chat_template=chat_template_fn(tokenizer) if apply_chat_template else None,
            tokenizer_name=getattr(tokenizer, "name_or_path", ""),
        )
        c = TaskCount(name, task.OUTPUT_TYPE)
        c.documents = len({inst.doc_id for inst in task.instances})
        counters = {b: PrefixCounter(prefix_cache.block_size, prefix_cache.capacity_blocks)
                    for b in PREFIX_BACKENDS} if prefix_cache else {}
        _count_instances(c, task.instances, tokenizer, counters)
        # lm-eval's vllm backend asks for prompt_logprobs on every loglikelihood request,
        # and vLLM does not read the prefix cache for those (skip_reading_prefix_cache).
        reads = {"vllm": task.OUTPUT_TYPE == "generate_until", "opinbench-vllm": True}
        c.prefix_cache = {b: counters[b].finish(PREFIX_BACKENDS[b], reads_cache=reads[b])
                          for b in counters}
        counts.append(c)
        log.info("%s: %d documents, %d requests, %d prompt tokens", name, c.documents,
                 c.requests, c.prompt_tokens)
    return counts


def logged_prompt_tokens(run_dir: Path, tokenizer: Any) -> dict[str, dict[str, int]]:
    """Per task of a finished run: ``{documents, requests, prompt_tokens, generated_tokens}``,
    its logged samples' prompts (and generations) re-tokenised as `count_tasks` counts them."""
    from opinbench.runs import find_runs

    out: dict[str, dict[str, int]] = {}
    for run in find_runs(run_dir):
        for task in run.samples_files:
            rows = [r.data for r in run.rows(task)]
            t = out.setdefault(task, {"documents": 0, "requests": 0, "prompt_tokens": 0,
                                      "generated_tokens": 0})
            for row in rows:
                t["documents"] += 1
                for arg in (row.get("arguments") or {}).values():
                    if isinstance(arg.get("arg_1"), dict):  # generate_until: (context, gen_kwargs)
                        resps = row.get("resps") or [[]]
                        n = max(1, len(resps[0]))
                        t["requests"] += n
                        t["prompt_tokens"] += n * n_tokens(tokenizer, arg["arg_0"])
                        t["generated_tokens"] += sum(n_tokens(tokenizer, str(g)) for g in resps[0])
                    else:
                        t["requests"] += 1
                        t["prompt_tokens"] += n_tokens(tokenizer, arg["arg_0"] + arg["arg_1"])
    return out
