#!/usr/bin/env python
"""The tables of docs/statistics.md: coverage of 95 % intervals on a correlated null, and the
intra-class correlations that choose the stance tasks' sampling unit.

    OPINBENCH_DATA_DIR=/path/to/data python scripts/stats_coverage.py [--sims 4000]

Coverage (`opinbench.metrics.coverage`) uses the real cluster sizes of ``opinionqa_wd``
(groups per question, questions in the task's seeded order: all of them, and the first 20
and 10, i.e. ``--limit 340`` and ``--limit 170``). The ICC table reads the gold labels of
the Wahl-o-Mat and ANES test splits (smartvote needs a candidate answer export,
which the shared data lacks): a one-way ANOVA ICC of each label's indicator by question
and by individual, and the standard error of its mean clustered each way (and two-way,
`opinbench.metrics.clustered.twoway_mean_stderr`) relative to the naive one.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from opinbench.data import registry
from opinbench.harness.distribution import build_docs
from opinbench.metrics import coverage
from opinbench.metrics.clustered import cluster_mean_stderr, twoway_mean_stderr


def icc(y: np.ndarray, groups: list[str]) -> float:
    """One-way ANOVA intra-class correlation (unbalanced groups: n0 of Searle)."""
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    k, n, total = codes.max() + 1, np.bincount(codes), y.size
    means = np.bincount(codes, y) / n
    msb = np.sum(n * (means - y.mean()) ** 2) / (k - 1)
    msw = np.sum((y - means[codes]) ** 2) / (total - k)
    n0 = (total - np.sum(n**2) / total) / (k - 1)
    between = max((msb - msw) / n0, 0.0)
    return float(between / (between + msw))


def coverage_table(sims: int) -> list[str]:
    docs = build_docs(registry.load("opinionqa", None, None, cache=True))
    order = list(dict.fromkeys(d["question_key"] for d in docs))
    per_q = Counter(d["question_key"] for d in docs)
    lines = ["| cluster sizes | questions | documents | clustered (CR1) | naive | SE ratio |", "|---|---|---|---|---|---|"]
    for name, qs in (("all of opinionqa_wd", order), ("--limit 340", order[:20]), ("--limit 170", order[:10])):
        c = coverage.simulate([per_q[q] for q in qs], n_sims=sims)
        lines.append(f"| {name} | {c.n_clusters} | {c.n_docs} | {c.clustered:.3f} | {c.naive:.3f} | {c.se_ratio:.2f} |")
    return lines


def icc_table() -> list[str]:
    lines = ["| data set | test documents | individuals | questions | gold label | ICC question | ICC individual "
             "| SE ratio: question | individual | two-way |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("wom", "anes"):
        recs = [r for r, _ in registry.answer_records(name, cache=True) if r.split == "test"]
        ind = [str((r.meta or {}).get("individual") or r.subject) for r in recs]
        q = [r.question_key for r in recs]
        for label in sorted({r.answer for r in recs}):
            y = np.array([r.answer == label for r in recs], dtype=np.float64)
            naive = y.std(ddof=1) / np.sqrt(y.size)
            lines.append(
                f"| {name} | {len(recs)} | {len(set(ind))} | {len(set(q))} | {label} | {icc(y, q):.3f} | {icc(y, ind):.3f} "
                f"| {cluster_mean_stderr(y, q) / naive:.2f} | {cluster_mean_stderr(y, ind) / naive:.2f} "
                f"| {twoway_mean_stderr(y, q, ind) / naive:.2f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=4000, help="simulated draws per row (default 4000)")
    args = ap.parse_args(argv)
    print("\n".join(coverage_table(args.sims)))
    print()
    print("\n".join(icc_table()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
