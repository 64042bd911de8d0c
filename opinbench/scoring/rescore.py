"""Logged lm-eval samples re-scored: one task's per-document values, recomputed, and what they aggregate to.

`rescore_rows` reads the rows of one samples file (`opinbench.runs.read_rows`), finds the
task's kind from its first document (`opinbench.scoring.kinds.kind_of`), and re-scores each
document with the kind's ``rescore`` — the functions the live task ran — so that nothing a
run logged as a metric value is ever trusted. `RescoredTask.estimate` aggregates one metric
key (breakdowns included) with its `opinbench.scoring.metric.Metric`, standard error
clustered on each document's sampling unit where the metric says so.

A document is keyed by its ``id`` (lm-eval's ``doc_id`` where it has none); lm-eval logs a
document once per filter, and the first row is the one kept (`RescoredTask.row_counts`
says how many rows each document had).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opinbench.errors import DataError
from opinbench.runs import SampleRow
from opinbench.scoring.kinds import TaskKind, kind_of
from opinbench.scoring.metric import Estimate, resolve


@dataclass
class ScoredDoc:
    """One document: its id, lm-eval ``doc_id``, document, first logged row, sampling unit and values."""

    key: str
    doc_id: Any
    doc: dict[str, Any]
    row: dict[str, Any]
    cluster: str
    values: dict[str, Any]


@dataclass
class RescoredTask:
    """One task's documents, in logged order, with their re-scored values."""

    task: str
    kind: TaskKind
    docs: dict[str, ScoredDoc] = field(default_factory=dict)
    row_counts: Counter[str] = field(default_factory=Counter)

    def ordered(self) -> list[ScoredDoc]:
        """The documents in logged order: the order lm-eval aggregated them in (one process), which
        seeded bootstrap errors depend on."""
        return list(self.docs.values())

    def values(self, key: str) -> tuple[list[Any], list[str]]:
        """The per-document values of ``key`` (documents without one left out) and their clusters."""
        pairs = [(d.values[key], d.cluster) for d in self.ordered() if key in d.values]
        return [v for v, _ in pairs], [c for _, c in pairs]

    def estimate(self, key: str) -> Estimate:
        """``key`` (a metric or one of its breakdowns) aggregated over the documents that have it.

        Raises:
            ConfigError: an unknown metric key.
        """
        values, clusters = self.values(key)
        return resolve(key)[0].estimate(values, clusters)

    def breakdown(self, metric: str) -> dict[str, Estimate]:
        """Every ``metric|PART`` key the documents carry, aggregated: PART -> estimate (sorted)."""
        parts = sorted({k.split("|", 1)[1] for d in self.docs.values() for k in d.values
                        if k.startswith(f"{metric}|")})
        return {p: self.estimate(f"{metric}|{p}") for p in parts}

    def group_by(self, label: Callable[[ScoredDoc], str]) -> dict[str, RescoredTask]:
        """The documents split by ``label`` (sorted labels), each part a task of its own to aggregate."""
        out: dict[str, RescoredTask] = {}
        for d in self.ordered():
            out.setdefault(label(d), RescoredTask(self.task, self.kind)).docs[d.key] = d
        return dict(sorted(out.items()))


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a non-finite document logged twice is still the same document)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _check_repeat(first: ScoredDoc, row: SampleRow, values: dict[str, Any]) -> None:
    """A repeated row must re-score to the first row's values, with the same prompt."""
    data = row.data
    differ = [k for k, v in values.items() if not _same(first.values.get(k), v)]
    if differ or first.row.get("prompt_hash") != data.get("prompt_hash"):
        what = differ[0] if differ else "prompt_hash"
        old, new = (first.values.get(what), values[what]) if differ else (first.row.get(what), data.get(what))
        raise DataError(
            f"document {first.key} is logged twice with different values ({what}: {old!r} vs {new!r}); "
            "a samples file holds each document once",
            file=row.file, key=row.key,
        )


def rescore_rows(
    task: str, rows: Iterable[SampleRow], *, with_bounds: bool = True, check_repeats: bool = False
) -> RescoredTask | None:
    """Re-score one task's logged rows; None when its documents are not of a kind that can be re-scored.

    ``with_bounds=False`` leaves out the human bootstrap bounds of distribution documents (they
    cost ``human_resamples`` resamples each and do not depend on the model). ``check_repeats``
    re-scores every further row of a document too (lm-eval logs one per filter) and refuses
    one whose values or prompt differ: two runs spliced into one file (``opinbench regress``).

    Raises:
        DataError: a row that is not an lm-eval samples row, a document that cannot be
            scored, or (``check_repeats``) one logged twice with different values, naming
            the file and line.
    """
    out: RescoredTask | None = None
    for row in rows:
        data = row.data if isinstance(row.data, dict) else {}
        doc = data.get("doc")
        if not isinstance(doc, dict):
            raise DataError("not an lm-eval samples row (no doc)", file=row.file, key=row.key)
        if out is None:
            kind = kind_of(doc, data)
            if kind is None or kind.rescore is None:
                return None
            out = RescoredTask(task, kind)
        key = str(doc.get("id", data.get("doc_id")))
        out.row_counts[key] += 1
        if key in out.docs and not check_repeats:  # logged once per filter; the first is enough
            continue
        try:
            values = out.kind.rescore(doc, data, with_bounds)  # type: ignore[misc]
        except (KeyError, ValueError, TypeError, IndexError) as err:
            raise DataError(f"cannot score this document: {err!r}", file=row.file, key=row.key) from None
        if key in out.docs:
            _check_repeat(out.docs[key], row, values)
            continue
        out.docs[key] = ScoredDoc(key, data.get("doc_id"), doc, data, out.kind.cluster(doc), values)
    return out
