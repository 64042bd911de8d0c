"""lm-eval glue for the sampled-distribution tasks (``*_wd_sampled``).

Chat APIs give no prompt logprobs, so the first-token distribution cannot be
read. These tasks estimate it instead: the same documents and prompts as the
``*_wd`` tasks, N sampled answers per document (lm-eval ``repeats``, temperature
1), each parsed into an option by `opinbench.answers.extract_doc_answer`, and the
histogram over the ordinal options scored by the same WD code.

This is a different estimator, and the metric names say so (``wd_sampled``,
...). An N-sample histogram is noisy and biased away from the model's true
distribution; ``wd_sampling_noise`` estimates that noise per document (mean WD
between resamples of N answers drawn from the histogram and the histogram itself,
the analogue of the human bootstrap bound), so that a reader can tell a real
gap from sampling error. Answers that name a non-ordinal option ("Refused") are
counted in ``refusal_rate``; unparsable ones in ``invalid_rate``; a document
without any ordinal answer is left out of the WD means and counted in
``no_valid_sample``. The diagnostics of the ``*_wd`` tasks
(`opinbench.scoring.distribution.DIAGNOSTICS`) are scored on the histogram by the same
metric objects, as ``jsd_sampled``, ``rank_tau_sampled`` (``rank_tau_undefined_sampled``),
``refusal_gap_sampled`` and ``refusal_gap_abs_sampled`` (the refused share of the valid
answers against the group's non-substantive share), with ``wd_sampled|entropy=<stratum>``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from opinbench.metrics import clustered
from opinbench.answers import extract_doc_answer
from opinbench.metrics import distribution as M
from opinbench.metrics import strata
from opinbench.metrics.distribution_tasks import doc_bounds
from opinbench.metrics.keys import key_part
from opinbench.scoring.distribution import DIAGNOSTICS, View

SAMPLING_NOISE_RESAMPLES = 200


def histogram(generations: list[str], doc: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    """(counts over the ordinal options, refusals, invalid answers)."""
    k = doc["n_ordinal"]
    counts = np.zeros(k)
    refused = invalid = 0
    for text in generations:
        ex = extract_doc_answer(doc, text)
        if not ex.valid:
            invalid += 1
            continue
        i = doc["options"].index(ex.answer)
        if i < k:
            counts[i] += 1
        else:
            refused += 1
    return counts, refused, invalid


@clustered.by_sampling_unit
def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    generations = results[0] if results and isinstance(results[0], list) else list(results)
    counts, refused, invalid = histogram(generations, doc)
    n = len(generations)
    wd_uniform, wd_human = doc_bounds(doc)
    out: dict[str, Any] = {
        "invalid_rate": invalid / n if n else 1.0,
        "refusal_rate": refused / n if n else 0.0,
        "no_valid_sample": float(counts.sum() == 0),
        "wd_uniform": wd_uniform,
    }
    if wd_human is not None:
        out["wd_human"] = wd_human
    if counts.sum() == 0:
        return out
    ordinal = np.asarray(doc["ordinal"], dtype=np.float64)[None, :]
    human = np.asarray(doc["distribution"], dtype=np.float64)[None, :]
    model = counts[None, :] / counts.sum()
    wd = float(M.wasserstein(model, human, ordinal)[0])
    seed = int(hashlib.sha256(doc["id"].encode()).hexdigest()[:8], 16)  # reproducible per document
    out |= {
        "wd_sampled": wd,
        "kl_sampled": float(M.kl_divergence(human, model, ordinal)[0]),
        "onehot_sampled": float(M.onehot_agreement(human, model, ordinal)[0]),
        "wd_sampling_noise": float(
            M.human_bootstrap_wd(model, [counts.sum()], ordinal, n_resamples=SAMPLING_NOISE_RESAMPLES, seed=seed)[0]
        ),
        "n_valid_samples": float(counts.sum()),
        f"wd_sampled|{key_part(doc['attribute'])}": wd,
        f"wd_sampled|{key_part(doc['attribute'])}={key_part(doc['group'])}": wd,
    }
    return out | diagnostics(doc, counts, refused, wd)


def diagnostics(doc: dict[str, Any], counts: np.ndarray, refused: int, wd: float) -> dict[str, Any]:
    """The ``*_wd`` diagnostics of the histogram, under ``<key>_sampled``, and ``wd_sampled|entropy=<stratum>``.

    The histogram becomes the view the ``*_wd`` metric objects score: the ordinal counts, and the
    refusals on the first non-substantive option (only their share of the answers is read).
    """
    rest = np.zeros(len(doc["options"]) - doc["n_ordinal"])
    if rest.size:
        rest[0] = refused
    view = View(doc, np.concatenate([counts, rest]), with_bounds=False)
    out = {f"{m.key}_sampled": value for m in DIAGNOSTICS if (value := m.per_doc(view)) is not None}  # type: ignore[misc]
    level = strata.doc_stratum(doc)
    if level is not None:
        out[f"wd_sampled|{strata.ATTRIBUTE}={level}"] = wd
    return out
