"""The reproduction audit of a self-reported entry: a worker re-runs a seeded random sample of
its documents with the named model and compares what the model says now with what was logged.

Validation can only check that a run agrees with itself; a forger who edits the logged outputs,
then the per-document values and the totals to match, passes it. The audit asks the model
again. The documents are drawn from the ``audit_seed`` the store drew at submission (unknown to
the submitter beforehand) and the entry id (`draw`): ``k`` per task. Log-likelihood answers must
agree within ``LL_ABS + LL_REL * |ll|`` nats (float32 kernels on other hardware differ in the
last digits; an edit that moves a score does not), greedy generations exactly (`compare`).
The outcome, stored with the entry, is "reproduced n/n" or "not reproduced" with the documents
that differ; only a reproduced self-reported entry is ranked.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opinbench.runs import find_runs

K = 5  # documents per task (`Definition.audit_documents`, the YAML's ``audit: {documents: k}``)
LL_ABS, LL_REL = 1e-2, 1e-3


def draw(seed: int, entry_id: int, doc_ids: dict[str, Iterable[int]], k: int = K) -> dict[str, list[int]]:
    """``k`` document indices per task (all of them when a task has fewer), from ``seed`` and the entry id.

    >>> draw(7, 3, {"t": range(10)}, 3) == draw(7, 3, {"t": range(10)}, 3) != draw(7, 4, {"t": range(10)}, 3)
    True
    """
    out = {}
    for task, ids in sorted(doc_ids.items()):
        rng = random.Random(hashlib.sha256(f"{seed}:{entry_id}:{task}".encode()).digest())
        pool = sorted(set(ids))
        out[task] = sorted(rng.sample(pool, min(k, len(pool))))
    return out


def logged_rows(run_dir: str | Path) -> dict[str, dict[int, dict[str, Any]]]:
    """``{task: {doc_id: the first logged row}}`` of a run folder."""
    (run,) = find_runs(run_dir)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for task in run.samples_files:
        rows: dict[int, dict[str, Any]] = {}
        for row in run.rows(task):
            data = row.data if isinstance(row.data, dict) else {}
            if isinstance(data.get("doc_id"), int):
                rows.setdefault(data["doc_id"], data)
        out[task] = rows
    return out


def _close(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and math.isfinite(y) and abs(x - y) <= LL_ABS + LL_REL * abs(y)


def _same_response(logged: Any, now: Any) -> str | None:
    """None when one request's logged response is reproduced, else what differs. A log-likelihood
    response is ``[ll, is_greedy]``, a generation a string."""
    if isinstance(now, str) or isinstance(logged, str):
        return None if logged == now else f"generation {str(logged)[:40]!r} logged, {str(now)[:40]!r} now"
    if isinstance(now, (list, tuple)) and isinstance(logged, (list, tuple)) and now and logged:
        if _close(logged[0], now[0]):
            return None
        return f"log-likelihood {logged[0]!r} logged, {now[0]!r} now"
    return f"response {json.dumps(logged, default=str)[:40]} logged, {json.dumps(now, default=str)[:40]} now"


def compare(logged: dict[str, dict[int, dict[str, Any]]], rerun: dict[str, dict[int, dict[str, Any]]],
            drawn: dict[str, list[int]]) -> dict[str, Any]:
    """The audit outcome: ``reproduced`` (bool), ``checked``, ``matched``, ``differences`` (by document)."""
    differences: list[str] = []
    checked = matched = 0
    for task, ids in sorted(drawn.items()):
        for doc_id in ids:
            checked += 1
            old, new = logged.get(task, {}).get(doc_id), rerun.get(task, {}).get(doc_id)
            if old is None or new is None:
                differences.append(f"{task} doc_id {doc_id}: not in the {'logged run' if old is None else 're-run'}")
                continue
            old_resps, new_resps = old.get("resps") or [], new.get("resps") or []
            why = None if len(old_resps) == len(new_resps) else (
                f"{len(old_resps)} requests logged, {len(new_resps)} now")
            for a, b in zip(old_resps, new_resps):
                why = why or _same_response(a[0] if isinstance(a, list) and a else a,
                                            b[0] if isinstance(b, list) and b else b)
            if why:
                differences.append(f"{task} doc_id {doc_id}: {why}")
            else:
                matched += 1
    return {"reproduced": checked > 0 and matched == checked, "checked": checked, "matched": matched,
            "differences": differences[:20], "tolerance": f"log-likelihoods within {LL_ABS} + {LL_REL}*|ll| nats; "
            "greedy generations identical", "documents": drawn}


def label(audit: dict[str, Any] | None, self_reported: bool) -> str:
    """What an entry shows about its audit.

    >>> label({"reproduced": True, "checked": 6, "matched": 6}, True), label(None, True), label(None, False)
    ('reproduced 6/6', 'not audited', '')
    """
    if not self_reported:
        return ""
    if not audit:
        return "not audited"
    if audit.get("reproduced"):
        return f"reproduced {audit['matched']}/{audit['checked']}"
    return f"not reproduced ({audit.get('matched', 0)}/{audit.get('checked', 0)})"
