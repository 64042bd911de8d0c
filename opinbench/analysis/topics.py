"""Consistency across topics (Santurkar et al., 2023).

Per coarse topic, the mean WD of the model to each group over the topic's questions
(a question with several topics counts in each); the group the model is closest to
in each topic; and consistency: the share of topics whose closest group is the
group the model is closest to over all questions. Computed among a set of groups
(e.g. one attribute's, as in the paper, or all of them).

The headline is Santurkar et al.'s C_m (`c_m`, their ``consistency`` notebook): the
mean over POLIDEOLOGY, EDUCATION and INCOME of each attribute's consistency among its own
groups. A consistency among all groups pooled is another figure ("pooled consistency").

Questions are matched to the taxonomy by `opinbench.data.topics.topic_key`;
those with no topic are counted (`TopicWD.unmatched`), never silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opinbench.analysis.model_answers import ModelAnswer

Group = tuple[str, str]


@dataclass(frozen=True)
class TopicWD:
    """``wd[topic][group]`` = mean WD; ``overall[group]`` = mean WD over all matched questions;
    ``unmatched``: question keys with no topic."""

    wd: dict[str, dict[Group, float]]
    overall: dict[Group, float]
    unmatched: tuple[str, ...]


def per_topic_wd(answers: Iterable[ModelAnswer], topics_of: Callable[[ModelAnswer], Sequence[str]]) -> TopicWD:
    """Mean WD per (topic, group). ``topics_of(answer)`` gives the answer's topics (empty: unmatched)."""
    values: dict[str, dict[Group, list[float]]] = defaultdict(lambda: defaultdict(list))
    overall: dict[Group, list[float]] = defaultdict(list)
    unmatched: dict[str, None] = {}
    for a in answers:
        if not np.isfinite(a.wd):
            continue
        topics = topics_of(a)
        if not topics:
            unmatched[a.question_key] = None
            continue
        g = (a.attribute, a.group)
        overall[g].append(a.wd)
        for t in dict.fromkeys(topics):
            values[t][g].append(a.wd)
    return TopicWD(
        {t: {g: float(np.mean(v)) for g, v in by_g.items()} for t, by_g in sorted(values.items())},
        {g: float(np.mean(v)) for g, v in overall.items()},
        tuple(unmatched),
    )


@dataclass(frozen=True)
class Consistency:
    """``closest_overall``: the group with the lowest mean WD overall; ``closest[topic]``:
    per topic; ``share``: the share of topics whose closest group is ``closest_overall``."""

    closest_overall: Group
    closest: dict[str, Group]
    share: float


def _argmin(scores: Mapping[Group, float]) -> Group:
    return min(scores.items(), key=lambda kv: (kv[1], kv[0]))[0]


def consistency(topic_wd: TopicWD, groups: Iterable[Group] | None = None) -> Consistency | None:
    """Consistency among ``groups`` (default all); None when no topic has one of them."""
    wanted = set(groups) if groups is not None else set(topic_wd.overall)
    overall = {g: v for g, v in topic_wd.overall.items() if g in wanted}
    if not overall:
        return None
    best = _argmin(overall)
    closest = {}
    for topic, scores in topic_wd.wd.items():
        sub = {g: v for g, v in scores.items() if g in wanted}
        if sub:
            closest[topic] = _argmin(sub)
    if not closest:
        return None
    share = sum(g == best for g in closest.values()) / len(closest)
    return Consistency(best, closest, float(share))


# The attributes C_m averages over (Santurkar et al. 2023, section 4 and their notebook).
C_M_ATTRIBUTES = ("POLIDEOLOGY", "EDUCATION", "INCOME")


@dataclass(frozen=True)
class CM:
    """``value``: C_m, the mean of ``by_attribute`` (each attribute's consistency among its own groups)
    over the `C_M_ATTRIBUTES` the run has; ``missing``: those it lacks."""

    value: float
    by_attribute: dict[str, Consistency]
    missing: tuple[str, ...]


def c_m(topic_wd: TopicWD, attributes: Sequence[str] = C_M_ATTRIBUTES) -> CM | None:
    """Santurkar et al.'s C_m; None when the run has none of ``attributes``.

    >>> t = TopicWD({"a": {("INCOME", "low"): 0.1, ("INCOME", "high"): 0.2},
    ...              "b": {("INCOME", "low"): 0.3, ("INCOME", "high"): 0.2}},
    ...             {("INCOME", "low"): 0.2, ("INCOME", "high"): 0.2}, ())
    >>> c_m(t).value, c_m(t).missing
    (0.5, ('POLIDEOLOGY', 'EDUCATION'))
    """
    groups = list(topic_wd.overall)
    by = {a: c for a in attributes if (c := consistency(topic_wd, [g for g in groups if g[0] == a])) is not None}
    if not by:
        return None
    return CM(float(np.mean([c.share for c in by.values()])), by, tuple(a for a in attributes if a not in by))
