"""Task kinds: how a logged lm-eval samples row is recognised, re-scored and clustered.

Every consumer of logged samples (``regress``, leaderboard validation, ``compare``,
``report``) asks `kind_of` what a task is and the kind's `TaskKind.rescore` for a
document's per-document values, which are exactly what the live task's
``process_results`` returned for it: the same functions run in both places.

==================== ======================================================= =========
kind                 recognised by                                           rescored
==================== ======================================================= =========
``distribution``     ``ordinal``, ``distribution``, ``n_ordinal``; letters   yes
``default_model``    ``groups`` (one question carrying every group)          no
``sampled``          a distribution document answered by generations         no
``answer``           ``gold_label``, ``labels``, ``options``, ``letters``    yes
==================== ======================================================= =========

`TaskKind.cluster` names a document's sampling unit, the unit every standard error
resamples (``docs/statistics.md``, `opinbench.metrics.clustered.sampling_unit`): the survey
question (``question_key``), whose documents (one per group, or per repeat) share its
wording and options; for the individual-level stance data sets the (question, individual)
pair, clustered two ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opinbench.metrics.clustered import sampling_unit
from opinbench.metrics.letters import logged_loglikelihoods, probabilities
from opinbench.runs import generations
from opinbench.scoring.answer import cot_doc_values, direct_doc_values
from opinbench.scoring.distribution import doc_values as distribution_doc_values
from opinbench.scoring.metric import ANSWER, DEFAULT_MODEL, DISTRIBUTION, SAMPLED


@dataclass(frozen=True)
class TaskKind:
    """One kind of task (see the module docstring).

    ``rescore(doc, row, with_bounds)`` returns the document's per-document values from its
    logged row; None where this kind's logged samples are not re-scored.
    """

    name: str
    description: str
    rescore: Callable[[dict[str, Any], dict[str, Any], bool], dict[str, Any]] | None

    def cluster(self, doc: dict[str, Any]) -> Any:
        """The document's sampling unit (`opinbench.metrics.clustered.sampling_unit`)."""
        return sampling_unit(doc)


def _is_generation(row: dict[str, Any]) -> bool:
    resps = row.get("resps")
    return bool(resps) and generations(resps) is not None


def _rescore_distribution(doc: dict[str, Any], row: dict[str, Any], with_bounds: bool) -> dict[str, Any]:
    return distribution_doc_values(doc, probabilities(doc, logged_loglikelihoods(row)), with_bounds=with_bounds)


def _rescore_answer(doc: dict[str, Any], row: dict[str, Any], with_bounds: bool) -> dict[str, Any]:
    if _is_generation(row):  # *_cot: every repeat parsed as the task parsed it
        return cot_doc_values(doc, generations(row["resps"]) or [])
    return direct_doc_values(doc, probabilities(doc, logged_loglikelihoods(row)))


KINDS: dict[str, TaskKind] = {
    DISTRIBUTION: TaskKind(DISTRIBUTION, "first-token distribution vs a group's distribution (*_wd)",
                           _rescore_distribution),
    DEFAULT_MODEL: TaskKind(DEFAULT_MODEL, "one unsteered question scored against every group "
                            "(opinionqa_wd_default)", None),
    SAMPLED: TaskKind(SAMPLED, "distribution estimated from sampled answers (*_wd_sampled)", None),
    ANSWER: TaskKind(ANSWER, "one gold answer per document (*_cot, *_direct)", _rescore_answer),
}


def kind_of(doc: Any, row: dict[str, Any] | None = None) -> TaskKind | None:
    """The kind of a logged document (and its row, which tells generations from loglikelihoods),
    or None for a document that is not an opinbench task's."""
    if not isinstance(doc, dict):
        return None
    if "groups" in doc and "ordinal" in doc:
        return KINDS[DEFAULT_MODEL]
    if all(k in doc for k in ("ordinal", "distribution", "n_ordinal")):
        return KINDS[SAMPLED] if row is not None and _is_generation(row) else KINDS[DISTRIBUTION]
    if all(k in doc for k in ("gold_label", "labels", "options", "letters")):
        return KINDS[ANSWER]
    return None


def answers_of(values: dict[str, Any]) -> dict[str, Any]:
    """An answer document's ``{gold, pred, labels, individual, ...}`` item from its re-scored values
    (the per-document value of its custom-aggregated metrics, `opinbench.metrics.answer_tasks.item`)."""
    return values["macro_f1"]


__all__ = ["KINDS", "TaskKind", "answers_of", "kind_of"]
