"""Held-out scores of a checkpoint against its base model, in process (``opinbench train wd``).

The evaluation task, its ``--metadata`` (the test side of the training split),
the base model and the chat-template setting are read from the checkpoint's
``opinbench_train.json``, so the documents are the ones ``eval_command`` would
score. Both models score the same documents with the batched first-token
scorer of training (`opinbench.train.letters`, checked against lm-eval's own
loglikelihoods in the tests), and every document goes through the task's own
``process_results``; so ``wd``, ``kl``, ``onehot`` (or ``acc``, ``p_gold``
for ``*_direct`` tasks) are the task's numbers.

Reported per metric: the mean with its standard error for base and checkpoint,
and the paired difference (checkpoint - base) with two standard errors: over
documents (what lm-eval reports) and clustered by question (the groups of one
question are not independent, so this one is the honest one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opinbench.errors import ConfigError
from opinbench.io import write_jsonl
from opinbench.metrics.clustered import cluster_mean_stderr

# The metrics compared (`opinbench.scoring` objects), in the order the table shows them.
METRICS = ("wd", "kl", "onehot", "letter_mass", "acc", "p_gold")


def _stderr(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def summarize(base: list[dict[str, Any]], tuned: list[dict[str, Any]], clusters: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"n_docs": len(base), "n_clusters": len(set(clusters))}
    for m in METRICS:
        if not base or m not in base[0]:
            continue
        b = np.array([float(r[m]) for r in base])
        t = np.array([float(r[m]) for r in tuned])
        d = t - b
        out[m] = {
            "base": float(b.mean()), "base_stderr": _stderr(b),
            "checkpoint": float(t.mean()), "checkpoint_stderr": _stderr(t),
            "diff": float(d.mean()), "diff_stderr": _stderr(d),
            "diff_stderr_clustered": cluster_mean_stderr(d, clusters),
        }
    return out


def heldout(
    checkpoint: str | Path,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    task: str | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``checkpoint`` and its base model on the first ``limit`` held-out documents of its eval task."""
    from peft import PeftModel

    from opinbench.train import letters as L
    from opinbench.train.checkpoint import read_metadata
    from opinbench.train.common import load_model, load_tokenizer
    from opinbench.train.data import PromptRenderer, load_task

    meta = read_metadata(checkpoint)
    base_path = meta["base_model"]["path"]
    task_name = task or meta["data"]["eval_task"]
    metadata = meta["data"]["eval_metadata"]
    chat = bool(meta["apply_chat_template"])
    tok = load_tokenizer(base_path)
    model = load_model(base_path, "float32")
    model.eval()
    renderer = PromptRenderer(model, tok, apply_chat_template=chat)
    t = load_task(task_name, metadata)
    if t.config.output_type != "multiple_choice":
        raise ConfigError(f"{task_name} is not a first-token task; run its lm_eval command instead")
    docs = list(t.eval_docs)
    if limit:
        docs = docs[:limit]
    examples = [L.build_example(renderer, t, d, objective="kl") for d in docs]
    base_lp = L.score(model, examples, pad_id=tok.pad_token_id, batch_size=batch_size, progress=progress,
                      desc="base model")
    tuned_model = PeftModel.from_pretrained(model, str(checkpoint))
    tuned_model.eval()
    tuned_lp = L.score(tuned_model, examples, pad_id=tok.pad_token_id, batch_size=batch_size, progress=progress,
                       desc="checkpoint")
    base_rows, tuned_rows = [], []
    for d, b, f in zip(docs, base_lp, tuned_lp):
        base_rows.append(t.process_results(d, [(x, False) for x in b]))
        tuned_rows.append(t.process_results(d, [(x, False) for x in f]))
    clusters = [str(d.get("question_key")) for d in docs]
    result = {
        "checkpoint": str(checkpoint),
        "base_model": base_path,
        "task": task_name,
        "metadata": metadata,
        "apply_chat_template": chat,
        "limit": limit,
    } | summarize(base_rows, tuned_rows, clusters)
    if out:
        # Atomic, strict JSON (`opinbench.io`): a log-likelihood of -inf (an impossible
        # option) or a NaN metric becomes null, and the row's "non_finite" says what it was.
        write_jsonl(out, ({
            "id": d["id"], "question_key": d.get("question_key"),
            "base": {k: v for k, v in b.items() if k in METRICS},
            "checkpoint": {k: v for k, v in f.items() if k in METRICS},
            "base_loglikelihoods": bl, "checkpoint_loglikelihoods": fl,
        } for d, b, f, bl, fl in zip(docs, base_rows, tuned_rows, base_lp, tuned_lp)), non_finite="null")
    return result
