"""lm-eval glue for the first-token distribution tasks (``opinionqa_wd``, ``subpop_*_wd``).

One document is one (question, subpopulation). The task is lm-eval's
``multiple_choice`` with the option letters as choices, each twice: with a
leading space (``" A"``, what follows ``Answer:`` in running text) and without
(``"A"``, what a chat model emits first). lm-eval groups requests that share
context + continuation[:-1], so all of them cost one forward pass per document
(see ../shared/LM_EVAL_NOTES.md). A letter's probability is the sum of its two
spellings, so the score does not depend on what the tokenizer does with a
leading space; both spellings are disjoint next-token events.

`process_results` turns the loglikelihoods into the model's distribution over
the ordinal options (renormalised over their letters) and scores it against the
group's distribution. Per-document metrics:

* ``wd``: normalised 1-D Wasserstein distance (lower is better),
* ``kl``: forward KL(human || model), ``onehot``: argmax agreement,
* ``wd_uniform``: WD of the uniform distribution (upper bound to beat),
* ``wd_human``: human bootstrap WD (lower bound; only where counts are known),
* ``letter_mass``: probability the model put on any option letter at all, and
  ``low_letter_mass``: 1 where that mass is under ``mass_threshold``; a template
  or tokenizer mismatch shows here first,
* ``wd_gap_closed``: share of the uniform-to-human gap the model closes,
* ``wd|ATTR`` and ``wd|ATTR=Group``: the per-attribute and per-group breakdown
  (lm-eval keys cannot hold commas, so commas in group names are dropped).
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import numpy as np

from opinbench.data import registry
from opinbench.data.records import LETTERS, DistributionRecord
from opinbench.data.splits import question_splits
from opinbench.errors import ConfigError, SkipLog
from opinbench.harness import quiet_logs
from opinbench.metrics import distribution as M
from opinbench.prompts.render import render_distribution_prompt
from opinbench.prompts.steering import check_steering, steering_for

log = logging.getLogger("opinbench.harness")

DEFAULT_MASS_THRESHOLD = 0.1
DEFAULT_HUMAN_RESAMPLES = 1000

quiet_logs.install()


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
        n_q = len({r.question_key for r in records if not r.has_scale})
        log.warning("%d (question, group) pairs of %d questions without a scale were left out of WD", sum(skips.notes.values()), n_q)
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


def doc_bounds(doc: dict[str, Any]) -> tuple[float, float | None]:
    """(uniform WD, human bootstrap WD or None) of one document.

    The human bound uses the document's own generator (seeded by the task seed
    and the record id), so it equals what `opinbench bounds` reports for the pair.
    """
    ordinal = np.asarray(doc["ordinal"], dtype=np.float64)[None, :]
    human = np.asarray(doc["distribution"], dtype=np.float64)[None, :]
    uniform = float(M.uniform_wd(human, ordinal)[0])
    if doc.get("n") is None:
        return uniform, None
    h = M.human_bootstrap_wd(
        human, [doc["n"]], ordinal,
        n_resamples=int(doc.get("human_resamples", DEFAULT_HUMAN_RESAMPLES)), seed=int(doc.get("seed", 0)), keys=[doc["id"]],
    )[0]
    return uniform, (None if math.isnan(h) else float(h))


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
    **metadata: Any,  # the data set's loader options (groups); lm-eval also passes model_args and the rest
) -> dict[str, Any]:
    """``custom_dataset`` hook: ``{"test": datasets.Dataset}`` for one task.

    Settings come from the task YAML's ``metadata`` and can be overridden with
    ``--metadata '{"groups": "all", "source": "/path/to/release"}'``. ``split``
    (``train``/``test``, default all questions) keeps one side of the seeded
    question split (``split_seed``, ``test_fraction``) that `opinbench train`
    uses, to score held-out questions; ``seed`` orders the documents and seeds
    the human bootstrap bound.
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
    if split not in (None, "", "all"):
        if split not in ("train", "test"):
            raise ConfigError(f"split must be train, test or all, got {split!r}")
        splits = question_splits(data, {r.question_key for r in records}, seed=split_seed, test_fraction=test_fraction)
        records = [r for r in records if splits[r.question_key] == split]
    docs = build_docs(records, steering=steering, seed=seed, human_resamples=human_resamples)
    for d in docs:
        d["mass_threshold"] = float(mass_threshold)
    if not docs:
        raise ConfigError(f"{data}: no question with an ordinal scale for groups={groups!r}")
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


def letter_probabilities(loglikelihoods: list[float], n_letters: int) -> np.ndarray:
    """P(letter) = P(" X") + P("X") for each option letter."""
    ll = np.asarray(loglikelihoods, dtype=np.float64)
    if ll.size != 2 * n_letters:
        raise ValueError(f"expected {2 * n_letters} loglikelihoods, got {ll.size}")
    return np.exp(ll[:n_letters]) + np.exp(ll[n_letters:])


def metric_key_part(text: str) -> str:
    return text.replace(",", "")


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    lls = [r[0] if isinstance(r, (tuple, list)) else r for r in results]
    probs = letter_probabilities(lls, len(doc["letters"]))
    k = doc["n_ordinal"]
    mass = float(probs.sum())
    ordinal = np.asarray(doc["ordinal"], dtype=np.float64)[None, :]
    human = np.asarray(doc["distribution"], dtype=np.float64)[None, :]
    model = probs[None, :k]
    if model.sum() <= 0:  # every letter underflowed: treat as uniform, visible in letter_mass
        model = np.ones_like(model)
    wd = float(M.wasserstein(model, human, ordinal)[0])
    threshold = float(doc.get("mass_threshold", DEFAULT_MASS_THRESHOLD))
    wd_uniform, wd_human = doc_bounds(doc)
    out: dict[str, Any] = {
        "wd": wd,
        "kl": float(M.kl_divergence(human, model, ordinal)[0]),
        "onehot": float(M.onehot_agreement(human, model, ordinal)[0]),
        "wd_uniform": wd_uniform,
        "letter_mass": mass,
        "low_letter_mass": float(mass < threshold),
        f"wd|{metric_key_part(doc['attribute'])}": wd,
        f"wd|{metric_key_part(doc['attribute'])}={metric_key_part(doc['group'])}": wd,
    }
    if wd_human is not None:
        out["wd_human"] = wd_human
        out["wd_gap_closed"] = (wd, wd_uniform, wd_human)
    return out


# --------------------------------------------------------------------------- aggregations


def gap_closed(items: list[tuple[float, float, float]]) -> float:
    """Relative improvement over the uniform baseline, towards the human bound."""
    a = np.asarray(items, dtype=np.float64)
    return M.relative_improvement(a[:, 0].mean(), a[:, 1].mean(), a[:, 2].mean())


def share_low_mass(items: list[float]) -> float:
    """Share of documents with little probability on the option letters; warns when high."""
    share = float(np.mean(items)) if items else float("nan")
    if share > 0:
        log.warning(
            "%.1f%% of documents put less than mass_threshold (default %.2f) probability on the "
            "option letters: check the prompt template, --apply_chat_template and the tokenizer",
            100 * share,
            DEFAULT_MASS_THRESHOLD,
        )
    return share
