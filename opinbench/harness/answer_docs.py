"""Documents of the answer tasks (``*_cot`` and ``*_direct``): records -> lm-eval docs.

One document is one gold answer of one subject: a (situation, value/right/duty)
in Value Kaleidoscope, a (question, subpopulation) in OpinionQA, an
(individual, question) in Wahl-o-Mat, smartvote and ANES. Both formats of a
data set share the documents and differ only in the prompt.

Every document carries the fields that the judges and `opinbench compare` read
(the sample contract): ``id, dataset, family, question, options, letters,
subject, subject_group, answer, context, split``, plus the prompt (``prompt``,
``system``), the scoring settings (``labels``, ``gold_label``, ``individual``,
``n_boot``, ``boot_seed``) and a few data-set fields (``attribute``/``group``
for OpinionQA).

**OpinionQA as answers.** The ``opinionqa_*`` answer tasks read the same
canonical records as ``opinionqa_wd`` (`opinbench.data.opinionqa.load_opinionqa`,
``groups="standard"``) and turn each (question, group) into an `AnswerRecord`
(`opinionqa_answer_records`): gold = the group's modal *ordinal* option,
options = every option (the non-substantive "Refused" included, as the prompt
shows it), subject = ``"ATTR: Group"``, split = the seeded question split of
the ``*_wd`` tasks (`opinbench.data.splits.question_splits`), so that one
question is on the same side for every group and every OpinionQA task. A distribution
whose top two ordinal options tie has no single modal answer; the pair is left
out and counted. Classes differ between questions, so the classification
metrics use option *positions* (letters) as the label set for OpinionQA.

**Selection** (task ``metadata``, or ``--metadata '{...}'``):

* ``split``: ``test`` (default), ``train`` or ``all``; lm-eval's split is
  always called ``test``.
* ``subject``: one subject (``"SPD"``, ``"pilot_2022:17"``, ``"POLPARTY: Democrat"``)
  or a list; Wahl-o-Mat also takes an individual ``"2021/deutschland:SPD"``.
* ``subject_group``: ``Left`` / ``Center`` / ``Right`` (or a list; ``none``
  selects subjects without a group).
* loader options, as the data registry lists them for each data set
  (`opinbench.data.registry`): ``elections`` (Wahl-o-Mat), ``answers``
  (smartvote: the candidate answer export, required), ``scheme`` and
  ``releases`` (ANES), ``groups`` (OpinionQA); and ``source`` / ``data_dir``.
* ``steering`` (OpinionQA): ``qa``, ``bio``, ``portray`` or ``unsteered``.
* ``split_seed`` and ``test_fraction``: the train/test split; ``seed``: the
  document order and the bootstrap. As in the distribution tasks; without
  ``split_seed`` the split follows ``seed`` (the answer tasks' one seed before).
* ``history``: show the individual this many of its *train* answers in the
  prompt (individual-level sets; default 0).
* ``system``: replace the system message ("You are a German voter.").
* ``n_boot``: bootstrap resamples of the ``*_stderr`` metrics (default 1000).

**Order.** Documents come in a seeded order that keeps related documents
together, so that ``--limit N`` takes whole units: whole situations (VK), whole
questions with all their groups (OpinionQA), whole individuals (the rest).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from opinbench.data import registry
from opinbench.data.records import LETTERS, AnswerRecord, DistributionRecord
from opinbench.errors import ConfigError
from opinbench.harness import settings
from opinbench.prompts.cot import render_record

log = logging.getLogger("opinbench.harness")

SPLITS = ("test", "train", "all")
DEFAULT_N_BOOT = 1000


# --------------------------------------------------------------------------- loading


def load_records(
    data: str,
    *,
    source: str | None = None,
    data_dir: str | None = None,
    split_seed: int | None = None,
    seed: int = 0,
    test_fraction: float | None = None,
    **options: Any,
) -> list[tuple[AnswerRecord, DistributionRecord | None]]:
    """Records of one data set as (AnswerRecord, DistributionRecord or None) pairs (cached).

    Of ``options`` (task metadata), the data set's loader options are used
    (`registry.DataSet.options`); a required one that is missing (smartvote's
    ``answers``) is a clear error.
    ``split_seed`` chooses the split; without it the split follows ``seed``, the
    one seed the answer tasks had before ``split_seed`` (kept for old ``--metadata``).
    """
    if data not in registry.names(answers=True):
        raise ConfigError(f"unknown answer data set {data!r}; known: {', '.join(registry.names(answers=True))}")
    options = registry.options_of(data, options)
    missing = registry.missing_options(data, options)
    if missing:
        key, what = next(iter(missing.items()))
        raise ConfigError(f"{data} needs {what}: pass --metadata '{{\"{key}\": \"/path/to/file\"}}'")
    return registry.answer_records(
        data, source, data_dir, cache=True,
        split_seed=int(seed if split_seed is None else split_seed), test_fraction=test_fraction, **options,
    )


# --------------------------------------------------------------------------- selection


def individual_of(record: AnswerRecord) -> str | None:
    """The individual a record belongs to (per-individual metrics), or None for VK/OpinionQA.

    A Wahl-o-Mat party is one individual per election (``"2021/deutschland:SPD"``).
    """
    if not registry.holds_individuals(record.dataset):
        return None
    return str((record.meta or {}).get("individual") or record.subject)


def _as_list(value: Any) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def select(
    pairs: Sequence[tuple[AnswerRecord, Any]],
    *,
    split: str = "test",
    subject: Any = None,
    subject_group: Any = None,
) -> list[tuple[AnswerRecord, Any]]:
    """Keep the records of the split, subject(s) and subject group(s) asked for.

    Raises:
        ConfigError: an unknown split, or a subject / group that selects nothing
            (with the names that exist), so a typo is not an empty run.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {SPLITS}")
    out = [p for p in pairs if split == "all" or p[0].split == split]
    subjects = _as_list(subject)
    if subjects:
        wanted = {s.casefold() for s in subjects}
        kept = [p for p in out if p[0].subject.casefold() in wanted or (individual_of(p[0]) or "").casefold() in wanted]
        if not kept:
            known = sorted({p[0].subject for p in out})
            raise ConfigError(
                f"subject {subjects} matches no record in the {split} split; "
                f"e.g. {', '.join(known[:12])}{' ...' if len(known) > 12 else ''} ({len(known)} subjects)"
            )
        out = kept
    groups = _as_list(subject_group)
    if groups:
        wanted = {g.casefold() for g in groups}
        kept = [p for p in out if str(p[0].subject_group).casefold() in wanted]
        if not kept:
            known = sorted({str(p[0].subject_group) for p in out})
            raise ConfigError(f"subject_group {groups} matches no record; groups here: {', '.join(known)}")
        out = kept
    return out


# --------------------------------------------------------------------------- documents


def _rank(*parts: Any) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def _order(record: AnswerRecord, seed: int) -> tuple[bytes, ...]:
    if registry.holds_individuals(record.dataset):
        return (_rank(seed, individual_of(record)), _rank(seed, record.question_key))
    # VK: a situation with all its values; OpinionQA: a question with all its groups.
    return (_rank(seed, record.question_key), _rank(seed, record.subject))


def _histories(
    pairs: Sequence[tuple[AnswerRecord, Any]], n: int, seed: int
) -> dict[str, list[AnswerRecord]]:
    """Each individual's train records in a seeded order (the candidates for ``history``)."""
    if n <= 0:
        return {}
    by: dict[str, list[AnswerRecord]] = defaultdict(list)
    for r, _ in pairs:
        if r.split == "train" and individual_of(r) is not None:
            by[individual_of(r)].append(r)  # type: ignore[index]
    for recs in by.values():
        recs.sort(key=lambda r: _rank(seed, "history", r.question_key))
    return by


def _document(data: str, r: AnswerRecord, prompt: Any, fmt: str, *, seed: int, n_boot: int) -> dict[str, Any]:
    """One lm-eval document: the record, its prompt and its scoring settings (the sample contract)."""
    ds = registry.get(data)
    letters = list(prompt.letters)
    gold_letter = letters[r.options.index(r.answer)]
    meta = r.meta or {}
    return {
        "id": r.id,
        "dataset": data,
        "family": ds.family,
        "question_key": r.question_key,
        "question": r.question,
        "options": list(r.options),
        "letters": letters,
        "subject": r.subject,
        "subject_group": r.subject_group,
        "individual": individual_of(r),
        "answer": r.answer,
        "answer_letter": gold_letter,
        "context": r.context,
        "split": r.split,
        "attribute": meta.get("attribute") if ds.profile.breakdown else None,
        "group": meta.get("group") if ds.profile.breakdown else None,
        "format": fmt,
        "system": prompt.system or "",
        # lm-eval's `description` (the system turn). lm-eval joins it to the
        # prompt with nothing in between when there is no chat template; the
        # newline keeps the two apart there and is harmless in a system turn.
        "description": f"{prompt.system}\n" if prompt.system else "",
        "prompt": prompt.text,
        # Label set of the classification metrics: option texts, or option
        # positions where the questions have different options (`Profile.letter_labels`).
        "labels": list(LETTERS) if ds.profile.letter_labels else list(r.options),
        "gold_label": gold_letter if ds.profile.letter_labels else r.answer,
        "n_boot": int(n_boot),
        "boot_seed": int(seed),
    }


def build_docs(
    data: str,
    pairs: Sequence[tuple[AnswerRecord, DistributionRecord | None]],
    fmt: str,
    *,
    selected: Sequence[tuple[AnswerRecord, DistributionRecord | None]] | None = None,
    seed: int = 0,
    steering: str = "qa",
    history: int = 0,
    system: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
) -> list[dict[str, Any]]:
    """lm-eval documents for the ``selected`` records (default: all ``pairs``).

    ``pairs`` are all records of the data set (the ``history`` shown to an
    individual comes from its train records among them). The prompt is the one
    of the data set's profile (`opinbench.prompts.cot.render_record`).
    """
    chosen = list(pairs if selected is None else selected)
    chosen.sort(key=lambda p: _order(p[0], seed))
    if history and not registry.get(data).individuals:
        raise ConfigError(
            f"history is for the individual-level data sets ({', '.join(registry.names(individuals=True))}), not {data}"
        )
    histories = _histories(pairs, int(history), seed)
    docs = []
    for r, dist in chosen:
        ind = individual_of(r)
        own = histories.get(ind, []) if ind is not None else []
        shown = [(h.question, h.answer) for h in own if h.question_key != r.question_key][: int(history)]
        prompt = render_record(data, r, dist, fmt, steering=steering, system=system, history=shown)
        docs.append(_document(data, r, prompt, fmt, seed=seed, n_boot=n_boot))
    return docs


@settings.validated
def load_dataset(
    data: str = "vk",
    format: str = "cot",  # noqa: A002 - the metadata key users write
    split: str = "test",
    subject: Any = None,
    subject_group: Any = None,
    source: str | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    split_seed: int | None = None,
    test_fraction: float | None = None,
    steering: str = "qa",
    history: int = 0,
    system: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    **metadata: Any,  # the data set's loader options; lm-eval also passes model_args and the rest
) -> dict[str, Any]:
    """``custom_dataset`` hook of the answer tasks: ``{"test": datasets.Dataset}``.

    Settings come from the task YAML's ``metadata`` and can be overridden with
    ``--metadata '{"subject": "SPD", "elections": "2021/deutschland"}'``; see the
    module docstring for the keys.
    """
    import datasets

    pairs = load_records(
        data,
        source=source,
        data_dir=data_dir,
        split_seed=split_seed,
        seed=int(seed),
        test_fraction=test_fraction,
        **metadata,
    )
    if not pairs:
        raise ConfigError(f"{data}: the source holds no records")
    selected = select(pairs, split=split, subject=subject, subject_group=subject_group)
    if not selected:
        raise ConfigError(f"{data}: no record in split {split!r}")
    docs = build_docs(
        data,
        pairs,
        format,
        selected=selected,
        seed=int(seed),
        steering=steering,
        history=int(history or 0),
        system=system,
        n_boot=int(n_boot),
    )
    log.info("%s_%s: %d documents (split=%s)", data, format, len(docs), split)
    return {"test": datasets.Dataset.from_list(docs)}
