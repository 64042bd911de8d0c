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
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def load_tasks(tasks: Sequence[str], include_path: Path | None = None,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{task name: lm-eval Task}``, groups expanded to their tasks (lm-eval's `TaskManager`);
    ``metadata`` is lm-eval's ``--metadata`` (task settings such as a leaderboard's ``split``)."""
    from lm_eval.tasks import TaskManager

    from opinbench.paths import tasks_dir

    tm = TaskManager(include_path=str(include_path or tasks_dir()), metadata=metadata or None)
    return dict(tm.load(list(tasks))["tasks"])


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


def n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def count_tasks(
    tasks: Sequence[str],
    tokenizer: Any,
    *,
    limit: int | None = None,
    apply_chat_template: bool = True,
    include_path: Path | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[TaskCount]:
    """Build the requests of ``tasks`` (task or group names) and count their tokens
    (``metadata``: lm-eval's ``--metadata``, as the run will be given it)."""
    counts = []
    for name, task in load_tasks(tasks, include_path, metadata).items():
        task.build_all_requests(
            limit=limit,
            apply_chat_template=apply_chat_template,
            fewshot_as_multiturn=apply_chat_template,  # lm-eval's default with a chat template
            chat_template=chat_template_fn(tokenizer) if apply_chat_template else None,
            tokenizer_name=getattr(tokenizer, "name_or_path", ""),
        )
        c = TaskCount(name, task.OUTPUT_TYPE)
        c.documents = len({inst.doc_id for inst in task.instances})
        for inst in task.instances:
            repeats = int(getattr(inst, "repeats", 1) or 1)
            if inst.request_type == "generate_until":
                context, gen_kwargs = inst.args[0], inst.args[1]
                c.requests += repeats
                c.prompt_tokens += repeats * n_tokens(tokenizer, context)
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
                c.prompt_tokens += n_tokens(tokenizer, context + continuation)
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
