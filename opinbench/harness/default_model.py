"""lm-eval glue for ``opinionqa_wd_default``: the unsteered model scored against every group.

Santurkar et al.'s representativeness of the *default* model asks how close the
model's unsteered answer distribution is to each subpopulation's. The unsteered
prompt is the same for every group, so one document here is one *question*
(unsteered prompt, one forward pass) that carries every group's distribution
(``groups``: ``attribute``, ``group``, ``distribution``, ``n``,
``n_nonsubstantive``); `process_results` scores the one model distribution
against each of them with the same code as the ``*_wd`` tasks
(`opinbench.scoring.distribution.doc_values`).

Why a task and not a computation in ``opinbench report`` from an unsteered run
plus the data on disk: the per-group scores then land in lm-eval's own results
JSON (``wd|ATTR=Group``), the samples file holds everything the report needs
(the human distributions, non-substantive counts and the model's
loglikelihoods), and the report reads runs only, never the data directory, so
it scores exactly the data the model saw.

Documents come in the order of the ``*_wd`` tasks (`build_docs`: seeded by
question key, whole questions together), so ``--limit Q`` here runs the same
questions as ``--limit Q x groups`` there.

Metrics per document (mean over documents = mean over questions):

* ``wd``: mean WD over the groups of the question; ``wd|ATTR``: mean over the
  attribute's groups; ``wd|ATTR=Group``: WD to that group (representativeness
  is 1 - these);
* ``letter_mass``: probability on any option letter;
* ``refusal_mass``: share of the letters' probability on non-substantive
  options ("Refused", "Not sure"), which the ordinal-only WD leaves out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from opinbench.harness.distribution import GROUP_FIELDS
from opinbench.metrics import clustered
from opinbench.metrics.keys import key_part
from opinbench.metrics.letters import probabilities
from opinbench.scoring.distribution import doc_values


def group_doc(doc: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """The ``*_wd`` document of one (question, group) inside a question document."""
    return {**doc, **{k: group[k] for k in GROUP_FIELDS if k in group}}


@clustered.by_sampling_unit
def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    probs = probabilities(doc, results)
    out: dict[str, Any] = {}
    by_attribute: dict[str, list[float]] = defaultdict(list)
    for g in doc["groups"]:
        wd = doc_values(group_doc(doc, g), probs, with_bounds=False)["wd"]
        by_attribute[key_part(g["attribute"])].append(wd)
        out[f"wd|{key_part(g['attribute'])}={key_part(g['group'])}"] = wd
    for attribute, values in by_attribute.items():
        out[f"wd|{attribute}"] = float(np.mean(values))
    out["wd"] = float(np.mean([v for vs in by_attribute.values() for v in vs]))
    mass = float(probs.sum())
    out["letter_mass"] = mass
    out["refusal_mass"] = float(probs[doc["n_ordinal"] :].sum() / mass) if mass > 0 else float("nan")
    return out
