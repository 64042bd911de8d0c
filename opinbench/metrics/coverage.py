"""Coverage of nominal 95 % intervals on a correlated null: does the clustered standard error tell the truth?

The null copies ``opinionqa_wd``'s structure: each question g has n_g documents (its
groups), and a document's value is ``mu + u_g + e_gi`` with a question effect
``u_g ~ N(0, question_sd)`` shared by the question's groups and group noise
``e_gi ~ N(0, noise_sd)``. The interval ``mean +- 1.96 se`` should contain ``mu`` 95 % of
the time. The naive ``se`` (lm-eval's ``mean_stderr``: documents as independent) and the
CR1 clustered one (`opinbench.metrics.clustered.cluster_mean_stderr`, the published one)
are computed side by side on the same draws. ``scripts/stats_coverage.py`` tabulates it
for docs/statistics.md; ``tests/test_statistics.py`` holds it to 93-97 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Coverage:
    """Share of simulated intervals containing the truth, per standard error, and the mean ratio of the SEs."""

    clustered: float
    naive: float
    se_ratio: float
    n_sims: int
    n_clusters: int
    n_docs: int


def simulate(
    sizes: Sequence[int], *, n_sims: int = 2000, question_sd: float = 0.05, noise_sd: float = 0.05, seed: int = 0
) -> Coverage:
    """Coverage of ``mean +- 1.96 se`` over ``n_sims`` draws of the null with cluster ``sizes``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    g, n = sizes.size, int(sizes.sum())
    codes = np.repeat(np.arange(g), sizes)
    rng = np.random.default_rng(seed)
    hits_c = hits_n = 0
    ratios = []
    for start in range(0, n_sims, 250):
        b = min(250, n_sims - start)
        x = rng.normal(0, question_sd, size=(b, g))[:, codes] + rng.normal(0, noise_sd, size=(b, n))
        mean = x.mean(axis=1)
        naive = x.std(axis=1, ddof=1) / np.sqrt(n)
        resid = x - mean[:, None]
        sums = np.zeros((b, g))
        np.add.at(sums.T, codes, resid.T)
        cr1 = np.sqrt(g / (g - 1) * (sums**2).sum(axis=1)) / n
        hits_c += int(np.sum(np.abs(mean) <= Z95 * cr1))
        hits_n += int(np.sum(np.abs(mean) <= Z95 * naive))
        ratios.append(cr1 / naive)
    return Coverage(hits_c / n_sims, hits_n / n_sims, float(np.mean(np.concatenate(ratios))), n_sims, g, n)
