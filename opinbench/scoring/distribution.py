"""The first-token distribution tasks' metrics (``opinionqa_wd``, ``subpop_*_wd``) and their scoring.

One document is one (question, subpopulation). `doc_values` turns the model's
option-letter probabilities (`opinbench.metrics.letters`) into a `View`: the model's
distribution over the ordinal options (renormalised over their letters) beside the
group's, and asks each registered distribution metric for its value (``per_doc``):

* ``wd``: normalised 1-D Wasserstein distance (lower is better),
* ``kl``: forward KL(human || model), ``onehot``: argmax agreement,
* ``wd_uniform``: WD of the uniform distribution (upper bound to beat),
* ``wd_human``: human bootstrap WD (lower bound; only where counts are known),
* ``letter_mass``: probability the model put on any option letter at all, and
  ``low_letter_mass``: 1 where that mass is under ``mass_threshold``,
* ``nonfinite``: 1 where a letter's loglikelihood was NaN or infinite; such a
  document gets no other value (it is left out of every mean, never scored),
* ``wd_gap_closed``: (wd, wd_uniform, wd_human), aggregated by `gap_closed`
  into the share of the uniform-to-human gap the model closes,
* ``wd|ATTR`` and ``wd|ATTR=Group``: the per-attribute and per-group breakdown of the
  metrics marked ``breakdown`` (commas in group names dropped:
  `opinbench.metrics.keys.key_part`), and ``wd|entropy=consensus|mixed|divided``: by the
  difficulty stratum of the document (`opinbench.metrics.strata`; none where the data set
  has no shipped cut points),
* the diagnostics beyond one distance (issue 22): ``jsd`` (Jensen-Shannon divergence in
  bits), ``rank_tau`` (Kendall's tau-b of the option probabilities, where neither
  distribution is constant) with ``rank_tau_undefined`` (1 where one is: its mean is the
  share left out), ``refusal_gap`` (model's non-substantive probability minus the group's
  non-substantive share, where the source gives the counts) and ``refusal_gap_abs``.

The live task (`opinbench.harness.distribution.process_results`) and every re-scoring of
logged samples (`opinbench.scoring.rescore`) call the same `doc_values`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from opinbench.metrics import distribution as M
from opinbench.metrics import strata
from opinbench.metrics.distribution_tasks import doc_bounds, refusal_gap
from opinbench.metrics.keys import key_part
from opinbench.metrics.letters import is_finite, low_letter_mass
from opinbench.scoring.metric import (
    ANSWER, DEFAULT_MODEL, DERIVED, DISTRIBUTION, SAMPLED, SIGN_FLIP, STDERR_CLUSTERED, Metric, of_kind, register,
)


@dataclass
class View:
    """What a distribution metric sees of one scored document.

    ``with_bounds=False`` leaves the human bootstrap bound out (it does not depend on the
    model and costs ``human_resamples`` resamples per document).
    """

    doc: dict[str, Any]
    probs: np.ndarray  # P(letter) for every offered letter
    with_bounds: bool = True

    @cached_property
    def ordinal(self) -> np.ndarray:
        return np.asarray(self.doc["ordinal"], dtype=np.float64)[None, :]

    @cached_property
    def human(self) -> np.ndarray:
        return np.asarray(self.doc["distribution"], dtype=np.float64)[None, :]

    @cached_property
    def model(self) -> np.ndarray:
        """The model's probabilities on the ordinal options' letters (uniform if all underflowed)."""
        model = self.probs[None, : self.doc["n_ordinal"]]
        # every letter underflowed: treat as uniform, visible in letter_mass
        return np.ones_like(model) if model.sum() <= 0 else model

    @cached_property
    def mass(self) -> float:
        return float(self.probs.sum())

    @cached_property
    def wd(self) -> float:
        return float(M.wasserstein(self.model, self.human, self.ordinal)[0])

    @cached_property
    def bounds(self) -> tuple[float, float | None]:
        if not self.with_bounds:
            return doc_bounds({**self.doc, "n": None})
        return doc_bounds(self.doc)


def _gap(v: View) -> tuple[float, float, float] | None:
    uniform, human = v.bounds
    return None if human is None else (v.wd, uniform, human)


WD = Metric(
    "wd", "Wasserstein distance", False, (DISTRIBUTION, DEFAULT_MODEL), per_doc=lambda v: v.wd, tolerance=0.005, test=SIGN_FLIP,
    breakdown=True, description="normalised 1-D Wasserstein distance between the model's and the group's "
    "distributions over the ordinal options",
)
KL = Metric(
    "kl", "KL divergence", False, (DISTRIBUTION,),
    per_doc=lambda v: float(M.kl_divergence(v.human, v.model, v.ordinal)[0]), tolerance=0.02, test=SIGN_FLIP,
    description="forward KL(human || model) over the ordinal options",
)
ONEHOT = Metric(
    "onehot", "modal-answer agreement", True, (DISTRIBUTION,),
    per_doc=lambda v: float(M.onehot_agreement(v.human, v.model, v.ordinal)[0]),
    description="1 where the model's most probable option is the group's most frequent one",
)
WD_UNIFORM = Metric(
    "wd_uniform", "WD of the uniform distribution", False, (DISTRIBUTION, SAMPLED), per_doc=lambda v: v.bounds[0],
    description="WD of answering uniformly: the upper bound to beat",
)
LETTER_MASS = Metric(
    "letter_mass", "letter mass", True, (DISTRIBUTION, ANSWER, DEFAULT_MODEL), per_doc=lambda v: v.mass,
    description="probability the model put on any option letter at all",
)
LOW_LETTER_MASS = Metric(
    "low_letter_mass", "share with low letter mass", False, (DISTRIBUTION, ANSWER),
    aggregation="opinbench.metrics.letters.share_low_mass", tolerance=None, per_doc=lambda v: low_letter_mass(v.doc, v.mass),
    description="share of documents whose letter mass is under mass_threshold",
)
NONFINITE = Metric(
    "nonfinite", "share with non-finite loglikelihoods", False, (DISTRIBUTION, ANSWER),
    aggregation="opinbench.metrics.letters.share_nonfinite", per_doc=lambda v: 0.0, tolerance=0.0, test=SIGN_FLIP,
    description="share of documents a NaN or infinite loglikelihood left unscored",
)
WD_HUMAN = Metric(
    "wd_human", "human bootstrap WD", False, (DISTRIBUTION, SAMPLED), per_doc=lambda v: v.bounds[1],
    description="WD of the group's own bootstrap resamples: the lower bound (where counts are known)",
)
WD_GAP_CLOSED = Metric(
    "wd_gap_closed", "share of the uniform-to-human gap closed", True, (DISTRIBUTION,),
    aggregation="opinbench.metrics.distribution_tasks.gap_closed",
    stderr="opinbench.metrics.distribution_tasks.gap_closed_stderr", per_doc=_gap,
    description="relative improvement over the uniform baseline, towards the human bound",
)

register(WD, KL, ONEHOT, WD_UNIFORM, LETTER_MASS, LOW_LETTER_MASS, NONFINITE, WD_HUMAN, WD_GAP_CLOSED)


def _tau(v: View) -> float:
    return float(M.kendall_tau_b(v.model, v.human, v.ordinal)[0])


def _refusal_gap_abs(v: View) -> float | None:
    gap = refusal_gap(v.doc, v.probs)
    return None if gap is None else abs(gap)


# Diagnostics beyond one distance (issue 22); standard errors as wd's.
JSD = Metric(
    "jsd", "Jensen-Shannon divergence", False, (DISTRIBUTION,), stderr=WD.stderr,
    per_doc=lambda v: float(M.jensen_shannon(v.model, v.human, v.ordinal)[0]),
    description="Jensen-Shannon divergence in bits between the model's and the group's distributions",
)
RANK_TAU = Metric(
    "rank_tau", "rank order (Kendall tau-b)", True, (DISTRIBUTION,), stderr=WD.stderr,
    per_doc=lambda v: None if math.isnan(t := _tau(v)) else t,
    description="Kendall's tau-b between the model's and the group's option probabilities, where neither is constant",
)
RANK_TAU_UNDEFINED = Metric(
    "rank_tau_undefined", "share without a rank order", False, (DISTRIBUTION,), stderr=WD.stderr,
    per_doc=lambda v: float(math.isnan(_tau(v))),
    description="share of documents left out of rank_tau because a distribution is constant",
)
REFUSAL_GAP = Metric(
    "refusal_gap", "refusal gap (model − humans)", False, (DISTRIBUTION,), stderr=WD.stderr,
    per_doc=lambda v: refusal_gap(v.doc, v.probs),
    description="the model's probability on the non-substantive options minus the group's non-substantive "
    "share (signed; where the source gives the counts)",
)
REFUSAL_GAP_ABS = Metric(
    "refusal_gap_abs", "refusal gap |model − humans|", False, (DISTRIBUTION,), stderr=WD.stderr,
    per_doc=_refusal_gap_abs, description="the absolute refusal gap",
)
DIAGNOSTICS = (JSD, RANK_TAU, RANK_TAU_UNDEFINED, REFUSAL_GAP, REFUSAL_GAP_ABS)
register(*DIAGNOSTICS)
# No task publishes it: the leaderboard computes it from a steered task and opinionqa_wd_default
# (`opinbench.leaderboard.diagnostics`, `opinbench.analysis.steerability.steering_gain`).
STEERING_GAIN = Metric(
    "steering_gain", "steering gain (unsteered WD − steered WD)", True, (DERIVED,), stderr=STDERR_CLUSTERED,
    description="per group, the unsteered default model's mean WD minus the steered model's, averaged over groups",
)
register(STEERING_GAIN)


def doc_values(doc: dict[str, Any], probs: np.ndarray, *, with_bounds: bool = True) -> dict[str, Any]:
    """Per-document lm-eval values from the option-letter probabilities (see the module docstring)."""
    if not is_finite(probs):
        return {NONFINITE.key: 1.0}
    view = View(doc, probs, with_bounds)
    out: dict[str, Any] = {}
    breakdowns: dict[str, Any] = {}
    attribute, group = key_part(doc["attribute"]), key_part(doc["group"])
    level = strata.doc_stratum(doc)
    parts = [attribute, f"{attribute}={group}"] + ([f"{strata.ATTRIBUTE}={level}"] if level else [])
    for m in of_kind(DISTRIBUTION):
        if m.per_doc is None:
            continue
        value = m.per_doc(view)
        if value is None:
            continue
        out[m.key] = value
        if m.breakdown:
            breakdowns |= {f"{m.key}|{p}": value for p in parts}
    return out | breakdowns
