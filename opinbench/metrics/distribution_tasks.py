"""Per-document scoring of the first-token distribution tasks (``opinionqa_wd``, ``subpop_*_wd``).

One document is one (question, subpopulation). `doc_metrics` turns the model's
option-letter probabilities (`opinbench.metrics.letters`) into its
distribution over the ordinal options (renormalised over their letters) and
scores it against the group's distribution with `opinbench.metrics.distribution`:

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
* ``wd|ATTR`` and ``wd|ATTR=Group``: the per-attribute and per-group breakdown
  (commas in group names dropped: `opinbench.metrics.keys.key_part`),
* ``jsd``: Jensen-Shannon divergence in bits between the two distributions over the ordinal options,
* ``rank_tau``: Kendall's tau-b between the model's and the group's option probabilities, only
  where neither is constant; ``rank_tau_undefined``: 1 where one is (its mean is the share of
  documents left out of ``rank_tau``),
* ``refusal_gap``: the model's probability on the non-substantive options ("Refused", "Not sure";
  renormalised over every offered letter) minus the share of the group's respondents who gave
  such an answer, and ``refusal_gap_abs`` its absolute value; only where the source gives the
  non-substantive counts (``n``, ``n_nonsubstantive``) and the question offers such an option,
* ``wd|entropy=consensus|mixed|divided``: WD again, under the key of the document's difficulty
  stratum (`opinbench.metrics.strata`; none where the data set has no shipped cut points).

Documents are the plain dicts the ``*_wd`` tasks build (``ordinal``, ``distribution``,
``n``, ``n_ordinal``, ``attribute``, ``group``, ...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opinbench.metrics import distribution as M
from opinbench.metrics import strata
from opinbench.metrics.keys import key_part
from opinbench.metrics.letters import is_finite, low_letter_mass

# Resamples of the human bootstrap bound unless a document says otherwise.
DEFAULT_HUMAN_RESAMPLES = 1000


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


def doc_metrics(doc: dict[str, Any], probs: np.ndarray) -> dict[str, Any]:
    """Per-document lm-eval values from the option-letter probabilities (see the module docstring)."""
    if not is_finite(probs):
        return {"nonfinite": 1.0}
    k = doc["n_ordinal"]
    mass = float(probs.sum())
    ordinal = np.asarray(doc["ordinal"], dtype=np.float64)[None, :]
    human = np.asarray(doc["distribution"], dtype=np.float64)[None, :]
    model = probs[None, :k]
    if model.sum() <= 0:  # every letter underflowed: treat as uniform, visible in letter_mass
        model = np.ones_like(model)
    wd = float(M.wasserstein(model, human, ordinal)[0])
    wd_uniform, wd_human = doc_bounds(doc)
    out: dict[str, Any] = {
        "wd": wd,
        "kl": float(M.kl_divergence(human, model, ordinal)[0]),
        "onehot": float(M.onehot_agreement(human, model, ordinal)[0]),
        "wd_uniform": wd_uniform,
        "letter_mass": mass,
        "low_letter_mass": low_letter_mass(doc, mass),
        "nonfinite": 0.0,
        f"wd|{key_part(doc['attribute'])}": wd,
        f"wd|{key_part(doc['attribute'])}={key_part(doc['group'])}": wd,
    }
    if wd_human is not None:
        out["wd_human"] = wd_human
        out["wd_gap_closed"] = (wd, wd_uniform, wd_human)
    return out | diagnostics(doc, model[0], wd, refusal_mass(doc, probs))


def human_nonsubstantive_share(n: float | None, n_nonsubstantive: float | None) -> float | None:
    """Share of a group's respondents who gave a non-substantive answer, None where the counts are unknown."""
    if n is None or n_nonsubstantive is None or n + n_nonsubstantive <= 0:
        return None
    return float(n_nonsubstantive / (n + n_nonsubstantive))


def refusal_mass(doc: dict[str, Any], probs: np.ndarray) -> float | None:
    """The model's probability on the non-substantive options, renormalised over every offered letter;
    None where the question offers no such option or the letters got no probability."""
    total = float(probs.sum())
    if len(doc["options"]) <= doc["n_ordinal"] or total <= 0:
        return None
    return float(probs[doc["n_ordinal"] :].sum() / total)


def diagnostics(doc: dict[str, Any], model: np.ndarray, wd: float, model_refusal: float | None) -> dict[str, float]:
    """``jsd``, ``rank_tau`` (or ``rank_tau_undefined``), ``refusal_gap``/``_abs`` and the entropy stratum's WD.

    ``model`` is the model's distribution over the ordinal options and ``model_refusal`` its share of
    non-substantive answers (None: not measurable); the ``*_wd_sampled`` tasks pass their histogram.
    """
    ordinal, human = doc["ordinal"], doc["distribution"]
    tau = float(M.kendall_tau_b(model, human, ordinal)[0])
    out = {"jsd": float(M.jensen_shannon(model, human, ordinal)[0]), "rank_tau_undefined": float(math.isnan(tau))}
    if not math.isnan(tau):
        out["rank_tau"] = tau
    share = human_nonsubstantive_share(doc.get("n"), doc.get("n_nonsubstantive"))
    if share is not None and model_refusal is not None:
        out["refusal_gap"] = model_refusal - share
        out["refusal_gap_abs"] = abs(model_refusal - share)
    level = strata.doc_stratum(doc)
    if level is not None:
        out[f"wd|{strata.ATTRIBUTE}={level}"] = wd
    return out


def gap_closed(items: list[tuple[float, float, float]]) -> float:
    """Relative improvement over the uniform baseline, towards the human bound."""
    a = np.asarray(items, dtype=np.float64)
    return M.relative_improvement(a[:, 0].mean(), a[:, 1].mean(), a[:, 2].mean())
