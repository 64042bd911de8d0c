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

from opinbench.metrics import clustered
from opinbench.data import registry
from opinbench.errors import ConfigError
from opinbench.harness import settings
from opinbench.harness.distribution import build_docs, keep_split
from opinbench.metrics.distribution_tasks import DEFAULT_HUMAN_RESAMPLES
from opinbench.scoring.distribution import doc_values
from opinbench.metrics.keys import key_part
from opinbench.metrics.letters import DEFAULT_MASS_THRESHOLD, probabilities

_GROUP_FIELDS = ("id", "attribute", "group", "distribution", "n", "n_nonsubstantive")


def question_docs(records, *, seed: int = 0, human_resamples: int = DEFAULT_HUMAN_RESAMPLES) -> list[dict[str, Any]]:
    """Records of (question, group) pairs -> one unsteered document per question carrying every group.

    The document itself is the question's overall-population document, as in
    ``opinionqa_wd_unsteered`` (``attribute`` OVERALL, its ``distribution`` and ``n``), so the
    ``*_wd`` prompt and target hooks apply unchanged; where the records have no overall
    population for the question, ``distribution`` is the mean of the groups' and ``n`` None
    (only lm-eval's bookkeeping target uses it). The groups, without the overall
    population, are in ``groups``: those are ranked.
    """
    by_id = {r.id: r for r in records}
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
        groups[q].append(
            {
                "id": d["id"],
                "attribute": d["attribute"],
                "group": d["group"],
                "distribution": d["distribution"],
                "n": d["n"],
                "n_nonsubstantive": by_id[d["id"]].n_nonsubstantive,
            }
        )
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
    groups: str = "standard,overall",
    source: str | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    human_resamples: int = DEFAULT_HUMAN_RESAMPLES,
    mass_threshold: float = DEFAULT_MASS_THRESHOLD,
    split: str | None = None,
    split_seed: int = 0,
    test_fraction: float = 0.3,
    **_: Any,
) -> dict[str, Any]:
    """``custom_dataset`` hook: one document per question (see the module docstring and `question_docs`).

    ``split`` keeps the questions of one side of the seeded question split, as the ``*_wd`` tasks
    do, so that a leaderboard scoring both on ``split: test`` compares the unsteered and the
    steered model on the same questions (the steering gain).
    """
    import datasets

    records = keep_split(data, registry.load(data, source, data_dir, cache=True, groups=groups), split, split_seed,
                         test_fraction)
    docs = question_docs(records, seed=seed, human_resamples=human_resamples)
    if not docs:
        raise ConfigError(f"{data}: no question with an ordinal scale and a subpopulation for groups={groups!r}")
    for d in docs:
        d["mass_threshold"] = float(mass_threshold)
    return {"test": datasets.Dataset.from_list(docs)}


def group_doc(doc: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """The ``*_wd`` document of one (question, group) inside a question document."""
    return {**doc, **{k: group[k] for k in _GROUP_FIELDS if k in group}}


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
