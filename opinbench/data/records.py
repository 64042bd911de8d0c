"""Canonical records: the one shape every loader produces and every task consumes.

Two kinds of record exist, one per kind of human signal:

* `DistributionRecord`: one (question, subpopulation) with the subpopulation's
  answer distribution over the question's ordinal options (OpinionQA, SubPOP).
* `AnswerRecord`: one (subject, question) with one gold answer: a perspective in
  Value Kaleidoscope, a subpopulation's modal answer in OpinionQA, a party in
  Wahl-o-Mat, a candidate in smartvote, a respondent in ANES.

Records are frozen and hold only plain JSON types, so that `to_json()` is the
stable export format of `opinbench data export` (documented in docs/data.md), and
`from_json()` reads it back (the distribution tasks' documents extend it).

Loaders build records through `make_record`, which owns the id scheme
(`record_id`: the data set, then the parts that make the record unique).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from opinbench.errors import DataError

MAX_OPTIONS = 10
"""More options than this cannot be lettered A..J; such a question is refused."""

LETTERS = "ABCDEFGHIJ"

_R = TypeVar("_R")


def _from_json(cls: type[_R], data: Mapping[str, Any], tuples: tuple[str, ...]) -> _R:
    """``cls`` from its `to_json` form; keys that are not fields (a document's task settings) are ignored."""
    values = {f.name: data[f.name] for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
    for name in tuples:
        values[name] = tuple(values[name])
    return cls(**values)


def check_options(options: tuple[str, ...], *, file: str, key: str) -> None:
    """Refuse option lists that cannot be turned into a lettered prompt."""
    if not options:
        raise DataError("no options", file=file, key=key, field="options")
    if len(options) > MAX_OPTIONS:
        raise DataError(
            f"{len(options)} options, more than the {MAX_OPTIONS} that can be lettered A-J",
            file=file,
            key=key,
            field="options",
        )
    if any(not isinstance(o, str) or not o.strip() for o in options):
        raise DataError(f"empty option text in {list(options)!r}", file=file, key=key, field="options")
    if len(set(options)) != len(options):
        raise DataError(f"duplicate options in {list(options)!r}", file=file, key=key, field="options")


def _finite_number(value: Any) -> bool:
    """A real number (not a bool, not a numeric string) that is neither NaN nor infinite."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class DistributionRecord:
    """A subpopulation's answer distribution for one survey question.

    Attributes:
        id: unique and stable: ``"{dataset}:{question_key}:{attribute}:{group}"``.
        dataset: ``opinionqa``, ``subpop_train`` or ``subpop_eval``.
        question_key: the survey's variable name (e.g. ``SAFECRIME_W26``).
        question: question text as shown to the model.
        options: every answer the survey offered, in survey order, including
            non-substantive ones ("Refused", "Not sure") after the ordinal ones.
        ordinal: ordinal value of ``options[i]`` for ``i < len(ordinal)``;
            need not be sorted (``[1.0, 2.0, 1.5]`` puts option 3 in the middle).
        attribute: demographic attribute (``POLPARTY``), or ``OVERALL``.
        group: subpopulation within the attribute (``Democrat``), or ``Overall``.
        distribution: share of the group's respondents choosing each ordinal
            option (non-substantive answers excluded and the rest renormalised);
            same length as ``ordinal``, sums to 1.
        n: respondents behind ``distribution`` (substantive answers only), or
            ``None`` when the release gives proportions without counts.
        n_nonsubstantive: respondents who gave a non-substantive answer, if known.
        source: file the record was read from, relative to the data directory.
    """

    id: str
    dataset: str
    question_key: str
    question: str
    options: tuple[str, ...]
    ordinal: tuple[float, ...]
    attribute: str
    group: str
    distribution: tuple[float, ...]
    n: float | None
    n_nonsubstantive: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_options(self.options, file=self.source, key=self.question_key)
        if not 0 < len(self.ordinal) <= len(self.options):
            raise DataError(
                f"{len(self.ordinal)} ordinal values for {len(self.options)} options",
                file=self.source,
                key=self.question_key,
                field="ordinal",
            )
        if len(self.distribution) != len(self.ordinal):
            raise DataError(
                f"distribution has {len(self.distribution)} values, ordinal has {len(self.ordinal)}",
                file=self.source,
                key=self.question_key,
                field="distribution",
            )
        bad_ordinal = [v for v in self.ordinal if not _finite_number(v)]
        if bad_ordinal:
            # A NaN ordinal value would hide its option from every distance measured on the scale.
            raise DataError(
                f"ordinal values {list(self.ordinal)} are not all finite numbers",
                file=self.source,
                key=self.question_key,
                field="ordinal",
            )
        if any(not _finite_number(p) or p < 0 for p in self.distribution) or not math.isclose(
            sum(self.distribution), 1.0, abs_tol=1e-6
        ):
            raise DataError(
                f"distribution {list(self.distribution)} is not a probability vector",
                file=self.source,
                key=self.question_key,
                field="distribution",
            )

    @property
    def has_scale(self) -> bool:
        """False when all ordinal values are equal: no distance can be measured."""
        return len(set(self.ordinal)) > 1

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        d["ordinal"] = list(self.ordinal)
        d["distribution"] = list(self.distribution)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DistributionRecord:
        """The record back from `to_json` output, or from a document that extends it."""
        return _from_json(cls, data, ("options", "ordinal", "distribution"))


@dataclass(frozen=True)
class AnswerRecord:
    """One gold answer of one subject (perspective, group, party, candidate, respondent).

    Attributes:
        id: unique and stable within the dataset.
        dataset: ``vk``, ``opinionqa_steerable``, ``wom``, ``smartvote`` or ``anes``.
        subject: who answers: a value/right/duty, a subpopulation, a party, a
            candidate or a respondent id.
        subject_group: ideology group of the subject (``Left``, ``Center``,
            ``Right``) where the dataset defines one, else ``None``.
        question_key: stable key of the question (thesis id, ANES variable, ...).
        question: the question, thesis or situation text.
        options: the answer labels the model chooses among.
        answer: the gold label, one of ``options``.
        split: ``train`` or ``test`` (deterministic, seeded; see the loader).
        context: extra text the prompt shows (election, country, situation).
        weight: survey weight of the subject, where the survey has one.
        meta: anything else worth keeping (party comment, raw code, ...).
    """

    id: str
    dataset: str
    subject: str
    subject_group: str | None
    question_key: str
    question: str
    options: tuple[str, ...]
    answer: str
    split: str
    context: str | None = None
    weight: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        check_options(self.options, file=self.source, key=self.question_key)
        if self.answer not in self.options:
            raise DataError(
                f"answer {self.answer!r} is not one of {list(self.options)!r}",
                file=self.source,
                key=self.question_key,
                field="answer",
            )
        if self.split not in ("train", "test"):
            raise DataError(f"split {self.split!r} is not train/test", file=self.source, key=self.id, field="split")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        return d

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnswerRecord:
        """The record back from `to_json` output, or from a document that extends it."""
        return _from_json(cls, data, ("options",))


def record_id(dataset: str, *parts: object) -> str:
    """The id of every record: its data set, then the parts that make it unique, joined by ``:``.

    >>> record_id("wom", "2021/deutschland", 1, 3)
    'wom:2021/deutschland:1:3'
    """
    return ":".join(str(p) for p in (dataset, *parts))


def make_record(cls: type[_R], dataset: str, key: Sequence[object] | None = None, **fields: Any) -> _R:
    """A record of data set ``dataset`` with its id from `record_id` (the one constructor loaders use).

    ``key`` is what makes the record unique within the data set (a party and a
    thesis, a respondent and a question); a `DistributionRecord` is unique by its
    question and group, ``(question_key, attribute, group)``, its default key.

    >>> make_record(AnswerRecord, "vk", ("r7",), subject="s", subject_group=None, question_key="q",
    ...             question="Q", options=("Yes", "No"), answer="No", split="test").id
    'vk:r7'
    """
    if key is None:
        if cls is not DistributionRecord:
            raise TypeError("an answer record's id needs its key parts")
        key = (fields["question_key"], fields["attribute"], fields["group"])
    return cls(id=record_id(dataset, *key), dataset=dataset, **fields)  # type: ignore[call-arg]


def question_answer(dataset: str, key: Sequence[object], question: Any, *, subject: str, group: str | None,
                    answer: str, options: Sequence[str], split: str, context: str | None, meta: dict[str, Any],
                    source: str, weight: float | None = None) -> AnswerRecord:
    """A subject's answer to a question of a question bank (anything with ``key`` and ``text``):
    an ANES respondent's or a smartvote candidate's, the loaders that read question objects."""
    return make_record(AnswerRecord, dataset, key, subject=subject, subject_group=group, question_key=question.key,
                       question=question.text, options=tuple(options), answer=answer, split=split, context=context,
                       weight=weight, meta=meta, source=source)


def require_records(records: list[Any], *, source: object, skips: Any = None) -> list[Any]:
    """Refuse a load that produced no record: an empty benchmark would score as if it ran.

    ``skips`` (a `SkipLog`), when given, says in the message what was left out.
    """
    if not records:
        why = f" ({skips.summary()})" if skips is not None else ""
        raise DataError(f"no usable records{why}", file=str(source))
    return records
