"""Classification metrics over an explicit label set, with invalid answers counted.

Every function takes the gold labels, the predicted labels and the label set.
A prediction that is ``None`` (an answer that could not be parsed) or not in the
label set (e.g. "Either" in the binary VK setting) is *off-label*: it is always
wrong, it counts as a miss (false negative) of the gold class, and it is a false
positive of no class. This is what scikit-learn does with ``labels=`` given and
the off-label prediction mapped to a label outside that list.

Conventions (stated because macro-F1 is easy to get subtly wrong):

* ``balanced_accuracy``: mean recall over the labels that occur in the gold
  data (scikit-learn's ``balanced_accuracy_score``).
* ``macro_f1``: mean F1 over the labels that occur in the gold data or the
  predictions. A label that occurs in neither has an undefined F1 (0/0) and is
  left out of the mean; a label that is only predicted has F1 = 0. This equals
  ``f1_score(..., labels=L, average="macro", zero_division=np.nan)`` after
  dropping undefined classes, and matters for per-individual scores, where an
  individual may never have answered "Neutral".
* With repeated samples, each repeat is scored on its own and the metrics are
  averaged over repeats (their spread is reported separately).

All functions work on confusion counts of shape ``(..., K, K + 1)`` (rows: gold
label, columns: predicted label, last column: off-label), so the bootstrap
computes thousands of resampled confusion matrices at once.

>>> macro_f1(["Yes", "No", "No"], ["Yes", "No", None], ["Yes", "No"])
0.8333333333333333
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "bootstrap_stderr_repeats",
    "confusion",
    "encode",
    "f1_per_class",
    "invalid_rate",
    "macro_f1",
    "majority_label",
    "per_individual_macro_f1",
    "recall_per_class",
    "scores",
]


def encode(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Labels -> indices into ``labels``; off-label and ``None`` predictions -> ``len(labels)``.

    Raises:
        ValueError: a gold label is not in ``labels`` (the label set is wrong),
            or ``labels`` has duplicates, or the lengths differ.
    """
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in {list(labels)!r}")
    pred = list(pred)
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    try:
        g = np.fromiter((index[x] for x in gold), dtype=np.int64, count=len(gold))
    except KeyError as err:
        raise ValueError(f"gold label {err.args[0]!r} is not in the label set {list(labels)!r}") from None
    k = len(labels)
    p = np.fromiter((index.get(x, k) if x is not None else k for x in pred), dtype=np.int64, count=len(pred))
    return g, p


def confusion(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]) -> np.ndarray:
    """Counts ``C[i, j]`` of gold ``labels[i]`` predicted as ``labels[j]``; ``j = K``: off-label."""
    g, p = encode(gold, pred, labels)
    return _confusion_codes(g, p, len(labels))


def _confusion_codes(g: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(g * (k + 1) + p, minlength=k * (k + 1)).reshape(k, k + 1).astype(np.float64)


# --------------------------------------------------------------------------- from confusion counts


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.sum(~np.isnan(x), axis=axis)
    s = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


def scores(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, per-class recall/precision/F1, balanced accuracy and macro-F1 from
    confusion counts of shape ``(..., K, K + 1)`` (leading axes are batches)."""
    conf = np.asarray(conf, dtype=np.float64)
    k = conf.shape[-2]
    if conf.shape[-1] != k + 1:
        raise ValueError(f"confusion counts must have shape (..., K, K+1), got {conf.shape}")
    tp = np.diagonal(conf[..., :k], axis1=-2, axis2=-1)
    support = conf.sum(axis=-1)  # gold count per class
    predicted = conf[..., :k].sum(axis=-2)  # predictions per class
    total = support.sum(axis=-1)
    recall = _safe_div(tp, support)
    precision = _safe_div(tp, predicted)
    f1 = _safe_div(2 * tp, support + predicted)  # 2tp / (2tp + fp + fn)
    return {
        "n": total,
        "accuracy": _safe_div(tp.sum(axis=-1), total),
        "invalid_rate": _safe_div(conf[..., k].sum(axis=-1), total),
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "balanced_accuracy": _nanmean(recall),
        "macro_f1": _nanmean(f1),
    }


# --------------------------------------------------------------------------- label-level API


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Share of predictions equal to the gold label (``None`` is wrong); NaN when empty."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        return float("nan")
    return float(np.mean([p is not None and p == g for g, p in zip(gold, pred)]))


def invalid_rate(pred: Sequence[Any]) -> float:
    """Share of ``None`` predictions; NaN when empty."""
    return float(np.mean([p is None for p in pred])) if len(pred) else float("nan")


def recall_per_class(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]) -> dict[Any, float]:
    """Recall of every label (NaN where the label never occurs in the gold data)."""
    r = scores(confusion(gold, pred, labels))["recall"]
    return {label: float(v) for label, v in zip(labels, r)}


def f1_per_class(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]) -> dict[Any, float]:
    """F1 of every label (NaN where it occurs neither in gold nor in predictions)."""
    f = scores(confusion(gold, pred, labels))["f1"]
    return {label: float(v) for label, v in zip(labels, f)}


def balanced_accuracy(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]) -> float:
    """Mean per-class recall over the labels present in ``gold``.

    >>> balanced_accuracy(["a", "a", "a", "b"], ["a", "a", "a", "a"], ["a", "b"])
    0.5
    """
    return float(scores(confusion(gold, pred, labels))["balanced_accuracy"])


def macro_f1(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any]) -> float:
    """Unweighted mean F1 over the labels present in gold or predictions (module docstring)."""
    return float(scores(confusion(gold, pred, labels))["macro_f1"])


def majority_label(gold: Sequence[Any], labels: Sequence[Any]) -> Any:
    """The most frequent gold label (the first in ``labels`` order on ties)."""
    counts = {label: 0 for label in labels}
    for g in gold:
        counts[g] += 1
    return max(labels, key=lambda label: counts[label])


def per_individual_macro_f1(
    gold: Sequence[Any],
    pred: Sequence[Any],
    individuals: Sequence[Hashable],
    labels: Sequence[Any],
) -> dict[Hashable, float]:
    """Macro-F1 of each individual over its own items."""
    by: dict[Hashable, list[int]] = defaultdict(list)
    for i, ind in enumerate(individuals):
        by[ind].append(i)
    g, p = encode(gold, pred, labels)
    k = len(labels)
    return {ind: float(scores(_confusion_codes(g[idx], p[idx], k))["macro_f1"]) for ind, idx in by.items()}


# --------------------------------------------------------------------------- repeats and bootstrap


def repeat_confusions(g: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts per repeat: ``g`` (N,) gold codes, ``p`` (N, R) prediction codes -> (R, K, K+1)."""
    p = np.asarray(p).reshape(len(g), -1)
    return np.stack([_confusion_codes(g, p[:, r], k) for r in range(p.shape[1])])


def bootstrap_confusions(
    g: np.ndarray, p: np.ndarray, k: int, *, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """Confusion counts per repeat for ``n_boot`` resamples of the documents: (B, R, K, K+1).

    Documents are resampled with replacement, each with all of its repeats (they
    are not independent). Resampling N documents is a multinomial draw over the
    distinct (gold, predictions) patterns, so the cost grows with the number of
    patterns, not with N x B.
    """
    p = np.asarray(p).reshape(len(g), -1)
    n, r = p.shape
    cells = g[:, None] * (k + 1) + p  # (N, R)
    patterns, counts = np.unique(cells, axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n, counts / n, size=n_boot).astype(np.float64)  # (B, T)
    out = np.zeros((n_boot, r, k * (k + 1)))
    for rep in range(r):
        col = patterns[:, rep]
        for c in np.unique(col):
            out[:, rep, c] = w[:, col == c].sum(axis=1)
    return out.reshape(n_boot, r, k, k + 1)


def bootstrap_stderr_repeats(
    g: np.ndarray, p: np.ndarray, k: int, metric: str, *, n_boot: int = 1000, seed: int = 0
) -> float:
    """Bootstrap standard error (over documents) of a corpus metric averaged over repeats."""
    if len(g) < 2 or n_boot < 2:
        return float("nan")
    values = _nanmean(scores(bootstrap_confusions(g, p, k, n_boot=n_boot, seed=seed))[metric], axis=-1)
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def bootstrap_stderr_mean(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error of the mean of ``values`` (NaNs dropped first)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size < 2 or n_boot < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(np.std(means, ddof=1))
