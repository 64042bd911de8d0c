"""lm-eval glue for the first-token distribution tasks (``opinionqa_wd``, ``subpop_*_wd``).

One document is one (question, subpopulation). The task is lm-eval's
``multiple_choice`` with the option letters as choices, each twice: with a
leading space (``" A"``, what follows ``Answer:`` in running text) and without
(``"A"``, what a chat model emits first). lm-eval groups requests that share
context + continuation[:-1], so all of them cost one forward pass per document
(see ../shared/LM_EVAL_NOTES.md). A letter's probability is the sum of its two
spellings, so the score does not depend on what the tokenizer does with a
leading space; both spellings are disjoint next-token events.

`process_results` turns the loglikelihoods into the letters' probabilities
(`opinbench.metrics.letters`) and scores them against the group's distribution
(`opinbench.scoring.distribution`, whose metric objects list the per-document metrics:
``wd``, ``kl``, ``onehot``, ``wd_uniform``, ``wd_human``, ``letter_mass``,
``low_letter_mass``, ``wd_gap_closed``, ``wd|ATTR`` and ``wd|ATTR=Group``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from typing import Any

import numpy as np

from opinbench.data import registry
from opinbench.data.records import LETTERS, DistributionRecord
from opinbench.data.splits import question_splits
from opinbench.errors import ConfigError, SkipLog
from opinbench.harness import settings
from opinbench.metrics import clustered
from opinbench.metrics.distribution_tasks import DEFAULT_HUMAN_RESAMPLES
from opinbench.metrics.letters import DEFAULT_MASS_THRESHOLD, probabilities
from opinbench.prompts.render import render_distribution_prompt
from opinbench.prompts.steering import check_steering, steering_for
from opinbench.scoring.distribution import doc_values

log = logging.getLogger("opinbench.harness")


# --------------------------------------------------------------------------- dataset


def _order_key(record: DistributionRecord, seed: int) -> bytes:
    # Documents come in a seeded order of questions, each question with all of
    # its groups together, so that `--limit N` samples whole questions.
    return hashlib.sha256(f"{seed}\x1f{record.question_key}".encode()).digest()


def build_docs(
    records: list[DistributionRecord] | tuple[DistributionRecord, ...],
    *,
    steering: str = "qa",
    seed: int = 0,
    human_resamples: int = DEFAULT_HUMAN_RESAMPLES,
) -> list[dict[str, Any]]:
    """Records -> lm-eval documents: the record's JSON (`DistributionRecord.to_json`) and the task settings.

    Prompts and bounds are computed when lm-eval uses a document (`doc_to_text`,
    `doc_bounds`), so that a ``--limit``-ed run does not pay for the whole data set.
    """
    skips = SkipLog()
    usable = []
    for r in records:
        if r.has_scale:
            usable.append(r)
        else:
            skips.note(f"question without a scale (all ordinal values equal) left out of WD: {r.question_key}")
    if skips.notes:
        # Said of the whole data set, before --limit picks documents: "68 pairs left out" read as
        # if 68 of a 340-document run had been dropped.
        n_q = len({r.question_key for r in records if not r.has_scale})
        log.warning(
            "%d of the data set's %d questions have no scale (all ordinal values equal), so their %d "
            "(question, group) pairs are not documents of this task; it has %d documents before any --limit",
            n_q, len({r.question_key for r in records}), sum(skips.notes.values()), len(usable),
        )
    usable.sort(key=lambda r: _order_key(r, seed))
    return [
        r.to_json()
        | {
            "steering": steering_for(r, steering),
            "letters": list(LETTERS[: len(r.options)]),
            "n_ordinal": len(r.ordinal),
            "seed": seed,
            "human_resamples": human_resamples,
        }
        for r in usable
    ]


def keep_split(data: str, records: list[Any], split: str | None, split_seed: int, test_fraction: float) -> list[Any]:
    """The records of one side (``train``/``test``) of the seeded question split; all for None/"all"."""
    if split in (None, "", "all"):
        return records
    if split not in ("train", "test"):
        raise ConfigError(f"split must be train, test or all, got {split!r}")
    splits = question_splits(data, {r.question_key for r in records}, seed=split_seed, test_fraction=test_fraction)
    return [r for r in records if splits[r.question_key] == split]


# What a question document (`question_docs`) keeps of each group's pair document.
GROUP_FIELDS = ("id", "attribute", "group", "distribution", "n", "n_nonsubstantive")


def question_docs(records, *, seed: int = 0, human_resamples: int = DEFAULT_HUMAN_RESAMPLES) -> list[dict[str, Any]]:
    """Records of (question, group) pairs -> one unsteered document per question carrying every group.

    The documents of ``opinionqa_wd_default`` (``documents: questions``; scored by
    `opinbench.harness.default_model`). The document itself is the question's overall-population
    document, as in ``opinionqa_wd_unsteered`` (``attribute`` OVERALL, its ``distribution`` and ``n``), so the
    ``*_wd`` prompt and target hooks apply unchanged; where the records have no overall
    population for the question, ``distribution`` is the mean of the groups' and ``n`` None
    (only lm-eval's bookkeeping target uses it). The groups, without the overall
    population, are in ``groups``: those are ranked.
    """
    pair_docs = build_docs(records, steering="unsteered", seed=seed, human_resamples=human_resamples)
    out: list[dict[str, Any]] = []
    overall: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in pair_docs:
        q = d["question_key"]
        if q not in groups and q not in overall:
            out.append({"question_key": q, "_first": d})
        if d["attribute"] == "OVERALL":
            overall[q] = d
            continue
        groups[q].append({k: d[k] for k in GROUP_FIELDS})
    docs = []
    for entry in out:
        q = entry["question_key"]
        if not groups[q]:
            continue
        base = overall.get(q)
        if base is None:
            first = entry["_first"]
            mean = np.mean([g["distribution"] for g in groups[q]], axis=0)
            base = {**first, "id": f"{first['dataset']}:{q}:OVERALL:Overall", "attribute": "OVERALL",
                    "group": "Overall", "distribution": [float(x) for x in mean / mean.sum()], "n": None}
        docs.append({**base, "steering": "unsteered", "groups": groups[q]})
    return docs


@settings.validated
def load_dataset(
    data: str = "opinionqa",
    steering: str = "qa",
    source: str | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    human_resamples: int = DEFAULT_HUMAN_RESAMPLES,
    mass_threshold: float = DEFAULT_MASS_THRESHOLD,
    split: str | None = None,
    split_seed: int = 0,
    test_fraction: float = 0.3,
    documents: str = "pairs",
    **metadata: Any,  # the data set's loader options (groups); lm-eval also passes model_args and the rest
) -> dict[str, Any]:
    """``custom_dataset`` hook: ``{"test": datasets.Dataset}`` for one task.

    Settings come from the task YAML's ``metadata`` and can be overridden with
    ``--metadata '{"groups": "all", "source": "/path/to/release"}'``. ``split``
    (``train``/``test``, default all questions) keeps one side of the seeded
    question split (``split_seed``, ``test_fraction``) that `opinbench train`
    uses, to score held-out questions; ``seed`` orders the documents and seeds
    the human bootstrap bound. ``documents``: ``pairs``, one document per (question, group), or
    ``questions``, one unsteered document per question carrying every group (`question_docs`,
    ``opinionqa_wd_default``).
    """
    import datasets

    check_steering(steering)
    ds = registry.get(data)
    if ds.kind != "distribution":
        raise ConfigError(f"{data!r} is not a distribution data set")
    options = registry.options_of(data, metadata)
    records = registry.load(data, source, data_dir, cache=True, **options)
    groups = options.get("groups", ds.options.get("groups"))
    if not records:
        raise ConfigError(f"{data}: no records for groups={groups!r} in {source or registry.data_dir(data_dir)}")
    records = keep_split(data, records, split, split_seed, test_fraction)
    if documents == "questions":
        if steering != "unsteered":
            raise ConfigError(f"documents: questions scores the unsteered model; set steering: unsteered, not {steering!r}")
        docs = question_docs(records, seed=seed, human_resamples=human_resamples)
    elif documents == "pairs":
        docs = build_docs(records, steering=steering, seed=seed, human_resamples=human_resamples)
    else:
        raise ConfigError(f"documents must be pairs or questions, got {documents!r}")
    for d in docs:
        d["mass_threshold"] = float(mass_threshold)
    if not docs:
        raise ConfigError(f"{data}: no question with an ordinal scale{' and a subpopulation' if documents == 'questions' else ''}"
                          f" for groups={groups!r}")
    return {"test": datasets.Dataset.from_list(docs)}


# --------------------------------------------------------------------------- prompt hooks


def doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt, rendered when lm-eval asks for it (only for the documents it runs)."""
    return render_distribution_prompt(DistributionRecord.from_json(doc), doc["steering"]).text


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """Every option letter twice: ``" A"`` ... then ``"A"`` ... (see module docstring)."""
    return [f" {letter}" for letter in doc["letters"]] + list(doc["letters"])


def doc_to_target(doc: dict[str, Any]) -> int:
    """The group's modal option (only used by lm-eval's bookkeeping)."""
    return int(np.argmax(doc["distribution"]))


# --------------------------------------------------------------------------- scoring


@clustered.by_sampling_unit
def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    return doc_values(doc, probabilities(doc, results))
