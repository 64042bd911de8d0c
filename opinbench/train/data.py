"""Training documents: the same canonical records, split and prompts as the tasks that score them.

Training data is read **through the lm-eval task** the checkpoint is trained
for (``opinionqa_wd``, ``wom_cot``, ...): its ``custom_dataset`` hook builds the
documents from the canonical records with ``--metadata '{"split": "train"}'``,
and its own ``fewshot_context`` renders each prompt, through lm-eval's
``HFLM.apply_chat_template`` when the model is a chat model. So a training
prompt is, byte for byte, the context lm-eval scores at evaluation time (with
``--apply_chat_template`` for chat models), and continuations are tokenised by
lm-eval's own ``_encode_pair`` (which moves a template's trailing newline into
the continuation).

**Splits come from the records.** Distribution tasks split by question for the
whole data set (`opinbench.data.splits.question_splits`); answer records carry
their per-individual split. Both sides are settings of every task
(``split_seed`` and ``test_fraction``), which `split_metadata` passes
identically to the training and the evaluation command.

**Leakage guard.** Before anything is trained, the documents of the task the
checkpoint will be scored on are loaded with ``split: test`` and every training
document is checked against them (`check_leakage`): a training document leaks
when its question is a test question *for the same unit* (the individual or
subject for answer data; the whole data set for distribution data, or when
either side has no unit). Any leak stops the run with `LeakageError`, naming
the questions, unless ``drop_test_questions`` asks to drop them (only allowed
when training and evaluation read different tasks).

**Data hash.** `data_hash` is the sha256 of the rendered training examples
(ids, prompts, targets), so it changes when the records, the split, the
template or the chat template change; it is stored with the checkpoint and
checked before resuming.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opinbench.data import registry
from opinbench.errors import ConfigError
from opinbench.harness.tasks import eval_docs as task_docs
from opinbench.harness.tasks import load_task

log = logging.getLogger("opinbench.train")

__all__ = [
    "LeakageError",
    "PromptRenderer",
    "TrainingDocs",
    "check_leakage",
    "data_hash",
    "load_docs",
    "load_task",
    "select_individuals",
    "split_metadata",
    "subsample",
]


class LeakageError(ConfigError):
    """Training would see questions that the checkpoint is scored on."""


def split_metadata(split: str, *, split_seed: int, test_fraction: float) -> dict[str, Any]:
    """The task ``--metadata`` keys that choose one side of the split (the same keys in every task)."""
    return {"split": split, "split_seed": int(split_seed), "test_fraction": float(test_fraction)}


# --------------------------------------------------------------------------- lm-eval tasks


class PromptRenderer:
    """Renders task prompts and tokenises continuations exactly as lm-eval's ``hf`` model does.

    It wraps an ``HFLM`` around the (base) model and its tokenizer, only to call
    lm-eval's own ``apply_chat_template`` and ``_encode_pair``.
    """

    def __init__(self, model: Any, tokenizer: Any, *, apply_chat_template: bool) -> None:
        from lm_eval.models.huggingface import HFLM

        self.tokenizer = tokenizer
        self.apply_chat_template = bool(apply_chat_template)
        # HFLM warns that a model object (not a name) disables options we do not use.
        hf_log = logging.getLogger("lm_eval.models.huggingface")
        level = hf_log.level
        hf_log.setLevel(logging.ERROR)
        try:
            self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
        finally:
            hf_log.setLevel(level)

    def context(self, task: Any, doc: dict[str, Any]) -> str:
        if self.apply_chat_template:
            return task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=self.lm.apply_chat_template)
        return task.fewshot_context(doc, 0)

    def choices(self, task: Any, doc: dict[str, Any]) -> list[str]:
        """The continuations lm-eval scores for a multiple-choice document (delimiter included)."""
        delim = task.config.target_delimiter
        return [delim + c for c in task.doc_to_choice(doc)]

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return self.lm._encode_pair(context, continuation)

    def encode(self, text: str) -> list[int]:
        return self.lm.tok_encode(text)


# --------------------------------------------------------------------------- selection and guard


def unit_of(doc: dict[str, Any]) -> str | None:
    """Who a document's split belongs to: the individual or subject of answer data, None for distributions.

    Value Kaleidoscope (family ``vk``) splits by situation (``question_key``) for all values alike,
    so it has no unit.
    """
    if "distribution" in doc or registry.family_of(doc.get("dataset")) == "vk":
        return None
    return doc.get("individual") or doc.get("subject")


def _test_index(test_docs: Iterable[dict[str, Any]]) -> dict[str, set[str | None]]:
    index: dict[str, set[str | None]] = defaultdict(set)
    for d in test_docs:
        index[d["question_key"]].add(unit_of(d))
    return index


def leaks(doc: dict[str, Any], index: dict[str, set[str | None]]) -> bool:
    units = index.get(doc["question_key"])
    if not units:
        return False
    unit = unit_of(doc)
    return unit is None or None in units or unit in units


def check_leakage(
    train_docs: Sequence[dict[str, Any]],
    test_docs: Sequence[dict[str, Any]],
    *,
    eval_task: str,
    drop: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Training documents with no test question of ``eval_task``; raises `LeakageError` on any leak.

    Returns the kept documents and how many were dropped (only with ``drop``).
    """
    index = _test_index(test_docs)
    bad = [d for d in train_docs if leaks(d, index)]
    if bad and not drop:
        examples = sorted({(unit_of(d) or "", d["question_key"]) for d in bad})
        shown = ", ".join(f"{q}" + (f" ({u})" if u else "") for u, q in examples[:5])
        raise LeakageError(
            f"{len(bad)} of {len(train_docs)} training documents ({len(examples)} questions, e.g. {shown}) "
            f"are in the test split of {eval_task}, which the checkpoint will be scored on. Train on "
            "train_split: train with the same split_seed/test_fraction as the evaluation, or, when training "
            "and evaluation data differ, set drop_test_questions: true to leave them out."
        )
    kept = [d for d in train_docs if not leaks(d, index)]
    if bad:
        log.warning("left out %d training documents whose question is in the test split of %s", len(bad), eval_task)
    return kept, len(bad)


def select_individuals(docs: Sequence[dict[str, Any]], names: Sequence[str] | None) -> list[dict[str, Any]]:
    """Documents of the named individuals/subjects (case-insensitive), with a clear error for a typo."""
    if not names:
        return list(docs)
    wanted = {str(n).casefold() for n in names}
    kept = [
        d for d in docs
        if str(d.get("individual") or "").casefold() in wanted or str(d.get("subject") or "").casefold() in wanted
    ]
    if not kept:
        known = sorted({str(d.get("individual") or d.get("subject")) for d in docs})
        raise ConfigError(
            f"individuals {list(names)} match no training document; e.g. {', '.join(known[:10])}"
            f"{' ...' if len(known) > 10 else ''} ({len(known)} in all)"
        )
    missing = wanted - {str(d.get("individual") or "").casefold() for d in kept} - {
        str(d.get("subject") or "").casefold() for d in kept
    }
    if missing:
        raise ConfigError(f"individuals {sorted(missing)} match no training document")
    return kept


def subsample(docs: Sequence[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset of ``n`` documents, in their original order."""
    if n is None or n >= len(docs):
        return list(docs)
    keep = set(random.Random(seed).sample(range(len(docs)), n))
    return [d for i, d in enumerate(docs) if i in keep]


def individual_name(doc: dict[str, Any]) -> str:
    return str(doc.get("individual") or doc.get("subject"))


# --------------------------------------------------------------------------- loading


@dataclass
class TrainingDocs:
    """The training documents of one run and where they came from."""

    train_task: str
    eval_task: str
    docs: list[dict[str, Any]]
    task: Any  # the lm-eval Task that renders the prompts
    metadata: dict[str, Any]  # task metadata of the training documents
    eval_metadata: dict[str, Any]  # --metadata of the evaluation (split: test)
    n_test_docs: int
    n_dropped_leaking: int = 0
    notes: dict[str, int] = field(default_factory=dict)


def load_docs(config: Any) -> TrainingDocs:
    """Training documents for ``config`` (a `TrainConfig`), leakage-checked; see the module docstring."""
    train_task = config.resolved_train_task
    eval_task = config.resolved_eval_task
    base = dict(config.task_metadata)
    meta = base | split_metadata(config.train_split, split_seed=config.split_seed, test_fraction=config.test_fraction)
    eval_meta = base | split_metadata("test", split_seed=config.split_seed, test_fraction=config.test_fraction)
    task = load_task(train_task, meta)
    docs = task_docs(task)
    eval_docs = docs if (eval_task == train_task and meta == eval_meta) else None
    if eval_docs is None:
        eval_docs = task_docs(load_task(eval_task, eval_meta))
    drop = bool(config.drop_test_questions) and train_task != eval_task
    if config.drop_test_questions and train_task == eval_task:
        raise ConfigError(
            "drop_test_questions applies when training and evaluation read different tasks; with one task, "
            "train on its train split (train_split: train)"
        )
    docs, dropped = check_leakage(docs, eval_docs, eval_task=eval_task, drop=drop)
    docs = select_individuals(docs, config.individuals)
    if not docs:
        raise ConfigError(f"{train_task}: no training documents left")
    return TrainingDocs(train_task, eval_task, docs, task, meta, eval_meta, len(eval_docs), dropped)


# --------------------------------------------------------------------------- hashing


def data_hash(examples: Iterable[Any]) -> str:
    """sha256 of the training examples as canonical JSON (order-independent)."""
    rows = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False, default=str) for e in examples)
    h = hashlib.sha256()
    for r in rows:
        h.update(r.encode("utf-8"))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()
