"""Bounds of the first-token distribution tasks (``opinionqa_wd``, ``subpop_*_wd``), per document.

`doc_bounds` gives a document's uniform WD (the upper bound to beat) and its human
bootstrap WD (the lower bound, where counts are known); `gap_closed` aggregates
``(wd, wd_uniform, wd_human)`` triples into the share of the uniform-to-human gap the
model closes; `refusal_gap` compares the model's probability on the non-substantive options
with the group's non-substantive share (`human_nonsubstantive_share`, which the report's refusal
analysis reads too). The per-document metrics themselves are metric objects in
`opinbench.scoring.distribution`.

Documents are the plain dicts the ``*_wd`` tasks build (``ordinal``, ``distribution``,
``n``, ``n_ordinal``, ``attribute``, ``group``, ...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opinbench.metrics import clustered
from opinbench.metrics import distribution as M

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


def gap_closed(items: list[tuple[float, float, float]]) -> float:
    """Relative improvement over the uniform baseline, towards the human bound."""
    a = np.asarray(items, dtype=np.float64)
    return M.relative_improvement(a[:, 0].mean(), a[:, 1].mean(), a[:, 2].mean())


# Published with a standard error from a bootstrap over questions (docs/statistics.md).
gap_closed_stderr = clustered.clustered_bootstrap(gap_closed)
gap_closed = clustered.with_stderr(gap_closed_stderr)(gap_closed)


def human_nonsubstantive_share(n: float | None, n_nonsubstantive: float | None) -> float | None:
    """Share of a group's respondents who gave a non-substantive answer, None where the counts are unknown."""
    if n is None or n_nonsubstantive is None or n + n_nonsubstantive <= 0:
        return None
    return float(n_nonsubstantive / (n + n_nonsubstantive))


def refusal_gap(doc: dict[str, Any], probs: np.ndarray) -> float | None:
    """The model's probability on the non-substantive options ("Refused", "Not sure"), renormalised over
    every offered letter, minus the group's non-substantive share (`human_nonsubstantive_share`).

    None where it cannot be measured: the question offers no such option, the source gives no
    counts, or the letters got no probability. ``probs`` holds every offered letter's probability
    (or, for sampled answers, counts: only the ratio is read).
    """
    share = human_nonsubstantive_share(doc.get("n"), doc.get("n_nonsubstantive"))
    total = float(probs.sum())
    if share is None or len(doc["options"]) <= doc["n_ordinal"] or total <= 0:
        return None
    return float(probs[doc["n_ordinal"] :].sum() / total) - share
