"""Question difficulty strata: consensus, mixed and divided questions, by the entropy of the human answers.

SimBench finds that what helps a model on questions where respondents agree (consensus) can
hurt it where they split (divided), so one mean WD hides it. A (question, group) document is put
in a stratum by the normalised entropy of its group's distribution over the ordinal options
(`opinbench.metrics.distribution.normalised_entropy`: 0 = everyone gave one answer, 1 = answers
spread evenly), cut at the tertiles of that entropy over the whole data set:

* ``consensus``: entropy < the first cut point,
* ``mixed``: first cut point <= entropy < second cut point,
* ``divided``: entropy >= the second cut point.

The cut points are fixed with the data, not computed per run: a ``--limit``-ed run, a split or a
task over fewer groups puts a document in the same stratum as the full data set does, so strata
compare across runs and models. They are shipped in
``opinbench/data/resources/entropy_strata.json``, computed by ``python scripts/entropy_strata.py``
(every (question, group) record with a scale of the data set, groups ``every``: all groups and
the overall population), and stated in the task READMEs. A data set without shipped cut points
gets no stratum (its documents carry no ``wd|entropy=...`` key).

>>> stratum(0.2, (0.5, 0.8)), stratum(0.5, (0.5, 0.8)), stratum(0.9, (0.5, 0.8))
('consensus', 'mixed', 'divided')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from opinbench.metrics.distribution import normalised_entropy

STRATA = ("consensus", "mixed", "divided")
RESOURCE = "resources/entropy_strata.json"
# The metric-key attribute of the strata: ``wd|entropy=consensus`` (data attributes are upper case).
ATTRIBUTE = "entropy"


def tertile_cuts(entropies: Sequence[float]) -> tuple[float, float]:
    """The 1/3 and 2/3 quantiles (numpy's default, linear interpolation) of the finite entropies.

    >>> tertile_cuts([0.0, 0.3, 0.6, 0.9])
    (0.3, 0.6)
    """
    x = np.asarray(entropies, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite entropy to cut into tertiles")
    low, high = np.quantile(x, [1 / 3, 2 / 3])
    return float(low), float(high)


def stratum(entropy: float, cuts: tuple[float, float]) -> str | None:
    """The stratum of one normalised entropy (None for NaN: a question without a scale)."""
    if not np.isfinite(entropy):
        return None
    return STRATA[int(entropy >= cuts[0]) + int(entropy >= cuts[1])]


@lru_cache(maxsize=1)
def shipped() -> dict[str, Any]:
    """The shipped resource: data set -> ``{"cuts": [low, high], ...how they were computed}``."""
    return json.loads(resources.files("opinbench.data").joinpath(RESOURCE).read_text(encoding="utf-8"))["datasets"]


def cuts_for(dataset: str) -> tuple[float, float] | None:
    """The shipped cut points of ``dataset``, None where none are shipped."""
    entry = shipped().get(dataset)
    return None if entry is None else (float(entry["cuts"][0]), float(entry["cuts"][1]))


def doc_stratum(doc: dict[str, Any]) -> str | None:
    """The stratum of a ``*_wd`` document (``dataset``, ``distribution``, ``ordinal``), None without cut points."""
    cuts = cuts_for(str(doc.get("dataset", "")))
    if cuts is None:
        return None
    return stratum(float(normalised_entropy(doc["distribution"], doc["ordinal"])[0]), cuts)


def data_set_cuts(records: Sequence[Any]) -> dict[str, Any]:
    """Cut points of one data set from its records (`DistributionRecord`s), and what they were computed on.

    Records without a scale are left out, as the ``*_wd`` tasks leave them out.
    """
    rows = [r for r in records if r.has_scale]
    if not rows:
        raise ValueError("no record with a scale")
    width = max(len(r.ordinal) for r in rows)
    from opinbench.metrics.distribution import pad

    h = normalised_entropy(pad([r.distribution for r in rows], width, 0.0), pad([r.ordinal for r in rows], width))
    cuts = tertile_cuts(h)
    return {"cuts": list(cuts), "records": len(rows), "questions": len({r.question_key for r in rows}),
            "share": {s: float(np.mean([stratum(e, cuts) == s for e in h])) for s in STRATA}}
