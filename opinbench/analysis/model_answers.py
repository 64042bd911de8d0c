"""lm-eval sample rows of the ``*_wd`` tasks -> `ModelAnswer`: one (question, group) with the
model's distribution over every option next to the group's human distribution.

Two document shapes are read: the ``*_wd`` tasks' (one (question, group) per document,
`opinbench.harness.distribution`) and ``opinionqa_wd_default``'s (one question carrying
every group in ``groups``, `opinbench.harness.default_model`), which gives one
`ModelAnswer` per group from the one model distribution.

The model's probabilities come from the logged loglikelihoods through
`opinbench.metrics.letters`, and WD from `opinbench.metrics.distribution`, so the
numbers equal those the task reported for the same document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from opinbench.data.records import DistributionRecord
from opinbench.metrics import distribution as M
from opinbench.metrics.distribution_tasks import doc_bounds, human_nonsubstantive_share
from opinbench.metrics.letters import probabilities

UNSTEERED = "unsteered"

# (attribute, group): how the analyses name a human group.
Group = tuple[str, str]


@dataclass(frozen=True, kw_only=True)
class ModelAnswer(DistributionRecord):
    """The model's and one group's answer distributions for one question: the group's
    `DistributionRecord` (as the task's document carried it) with the model's answer.

    Attributes (besides the record's; ``human`` and ``record_id`` name its ``distribution`` and ``id``):
        model: the model's probability of each option (every option, normalised
            over the option letters).
        steering: ``qa``, ``bio``, ``portray`` (the model was steered to ``steered_to``)
            or ``unsteered``.
        steered_to: (attribute, group) the prompt steered to, None when unsteered.
        seed, human_resamples: what the task seeded the human bootstrap bound with,
            so that `bounds` repeats the task's ``wd_human``.
    """

    model: tuple[float, ...]
    steering: str
    steered_to: tuple[str, str] | None = None
    seed: int = 0
    human_resamples: int = 1000

    @property
    def human(self) -> tuple[float, ...]:
        """The group's distribution over the ordinal options."""
        return self.distribution

    @property
    def record_id(self) -> str:
        return self.id

    @property
    def model_ordinal(self) -> np.ndarray:
        """The model's distribution over the ordinal options, renormalised (uniform if it put none there)."""
        p = np.asarray(self.model[: len(self.ordinal)], dtype=np.float64)
        return p / p.sum() if p.sum() > 0 else np.full(len(self.ordinal), 1 / len(self.ordinal))

    @cached_property
    def wd(self) -> float:
        """Normalised WD between the model's and the group's distribution (as the task's ``wd``)."""
        return float(M.wasserstein(self.model_ordinal, self.human, self.ordinal)[0])

    def bounds(self) -> tuple[float, float | None]:
        """(uniform WD, human bootstrap WD or None), as the task's ``wd_uniform`` and ``wd_human``."""
        return doc_bounds(
            {"id": self.record_id, "ordinal": self.ordinal, "distribution": self.human, "n": self.n,
             "seed": self.seed, "human_resamples": self.human_resamples}
        )

    @property
    def refusal_mass(self) -> float:
        """The model's probability on the non-substantive options (0 when the question has none)."""
        return float(sum(self.model[len(self.ordinal) :]))

    @property
    def human_nonsubstantive_share(self) -> float | None:
        """Share of the group's respondents who gave a non-substantive answer, None where unknown."""
        return human_nonsubstantive_share(self.n, self.n_nonsubstantive)


def _lls(row: Mapping[str, Any]) -> list[float]:
    # filtered_resps: [[loglikelihood, is_greedy], ...] with the numbers as strings in the samples file
    return [float(r[0] if isinstance(r, (list, tuple)) else r) for r in row["filtered_resps"]]


def from_row(row: Mapping[str, Any]) -> list[ModelAnswer]:
    """The `ModelAnswer`s of one sample row (one, or one per group of an ``opinionqa_wd_default`` document)."""
    doc = row["doc"]
    probs = probabilities(doc, _lls(row))
    mass = probs.sum()
    model = tuple(float(p) for p in (probs / mass if mass > 0 else np.full(len(probs), 1 / len(probs))))
    common = dict(
        dataset=str(doc.get("dataset", "")),
        question_key=doc["question_key"],
        question=doc["question"],
        options=tuple(doc["options"]),
        ordinal=tuple(float(o) for o in doc["ordinal"]),
        model=model,
        seed=int(doc.get("seed", 0)),
        human_resamples=int(doc.get("human_resamples", 1000)),
    )
    if "groups" in doc:
        return [
            ModelAnswer(
                **common, id=g.get("id", ""), attribute=g["attribute"], group=g["group"], distribution=tuple(g["distribution"]),
                steering=UNSTEERED, n=g.get("n"), n_nonsubstantive=g.get("n_nonsubstantive"),
            )
            for g in doc["groups"]
        ]
    steering = doc.get("steering", UNSTEERED)
    return [
        ModelAnswer(
            **common, id=doc.get("id", ""), attribute=doc["attribute"], group=doc["group"],
            distribution=tuple(doc["distribution"]), steering=steering,
            steered_to=None if steering == UNSTEERED else (doc["attribute"], doc["group"]),
            n=doc.get("n"), n_nonsubstantive=doc.get("n_nonsubstantive"),
        )
    ]


def from_rows(rows: Iterable[Mapping[str, Any]]) -> list[ModelAnswer]:
    """`from_row` over rows of one task (rows of other filters than the first are the same documents and are skipped)."""
    out: list[ModelAnswer] = []
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = (row.get("doc_id"), row["doc"].get("id"))
        if key in seen:
            continue
        seen.add(key)
        out.extend(from_row(row))
    return out


def group_label(attribute: str, group: str) -> str:
    """``ATTR=Group`` as in the tasks' metric keys (commas kept: this is for display)."""
    return f"{attribute}={group}"
