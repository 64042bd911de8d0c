"""Scoring of the answer tasks (``*_cot`` and ``*_direct``): per-document values and
the corpus-level aggregations lm-eval calls on them (the task YAMLs name them).

`doc_metrics` turns one document's predictions (one per repeat; ``None`` =
invalid) into lm-eval per-document values. Metric keys (``<key>,none`` in the
results):

=============================== ============ ==========================================
key                             aggregation  what
=============================== ============ ==========================================
``acc``                         mean         accuracy (mean over repeats), analytic stderr
``invalid``                     mean         share of unparsable answers (CoT only)
``recall|<label>``              mean         per-class recall, Neutral/Either included
``balanced_acc``                custom       mean per-class recall (classes in gold)
``macro_f1``                    custom       macro-F1 over the label set
``*_stderr``                    custom       bootstrap stderr over documents (repeats kept together)
``acc_repeat_std``              custom       spread (sample std) of accuracy over repeats
``macro_f1_repeat_std``         custom       spread of macro-F1 over repeats
``acc_binary``                  mean         VK, gold Supports/Opposes only; Either counts wrong
``macro_f1_binary``             custom       VK, same documents, labels Supports/Opposes
``acc_binary_excl_either``      custom       VK binary, items answered Either dropped (Feng et al. 2024)
``macro_f1_individual``         custom       macro-F1 per individual, averaged over individuals
``macro_f1_individual|<group>`` custom       the same within an ideology group (Left/Center/Right)
``acc|<ATTR>``                  mean         OpinionQA, per demographic attribute
=============================== ============ ==========================================

The direct tasks add ``p_gold``, ``letter_mass`` and ``low_letter_mass`` (`direct_doc_metrics`).
lm-eval reports "N/A" as the stderr of a custom aggregation, hence the
separate bootstrap metrics, named ``<metric>_stderr`` so that lm-eval's table shows
them in the ± column of their metric (`lm_eval.utils.make_table` pairs ``X_stderr``
with ``X``). lm-eval also writes its own "N/A" under that key; `doc_metrics` returns
each ``X_stderr`` after its ``X``, so the bootstrap value, computed later, is the one kept.
With a single individual the stderr over individuals is undefined: "N/A", as lm-eval
writes it (docs/metrics.md's table says why), never NaN. Corpus metrics with repeats are computed
per repeat and averaged; the bootstrap resamples documents with all their
repeats. The per-document value of a custom metric is a small JSON dict
(`item`), so ``--log_samples`` keeps everything needed to recompute them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from opinbench.metrics import classification as C
from opinbench.metrics import clustered
from opinbench.metrics.keys import key_part
from opinbench.metrics.letters import is_finite, low_letter_mass, predicted_answer

VK_BINARY_LABELS = ("Supports", "Opposes")
VK_EITHER = "Either"


# --------------------------------------------------------------------------- per document


def pred_labels(doc: dict[str, Any], answers: Sequence[str | None]) -> list[str | None]:
    """Predicted option texts -> labels of the document's label set (letters for OpinionQA)."""
    if doc["dataset"] != "opinionqa":
        return list(answers)
    letter = dict(zip(doc["options"], doc["letters"]))
    return [None if a is None else letter[a] for a in answers]


def item(
    doc: dict[str, Any],
    preds: Sequence[str | None],
    labels: Sequence[str] | None = None,
    why: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """The per-document value of a custom-aggregated metric.

    ``why`` (CoT): per repeat, the extractor's reason for an invalid answer (None
    where it parsed); logged with the samples as ``why`` beside ``pred``.
    """
    out = {
        "gold": doc["gold_label"],
        "pred": list(preds),
        "labels": list(labels if labels is not None else doc["labels"]),
        "individual": doc.get("individual"),
        "n_boot": int(doc.get("n_boot", 1000)),
        "seed": int(doc.get("boot_seed", 0)),
    }
    if why is not None:
        out["why"] = list(why)
    return out


def doc_metrics(
    doc: dict[str, Any],
    answers: Sequence[str | None],
    *,
    with_invalid: bool = True,
    why: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Per-document lm-eval values from the predicted option texts, one per repeat
    (``why``: the reasons of the invalid ones, see `item`)."""
    if not answers:
        raise ValueError(f"document {doc.get('id')}: no prediction")
    preds = pred_labels(doc, answers)
    gold = doc["gold_label"]
    correct = [p is not None and p == gold for p in preds]
    acc = float(np.mean(correct))
    it = item(doc, preds, why=why)
    out: dict[str, Any] = {"acc": acc}
    if with_invalid:
        out["invalid"] = float(np.mean([p is None for p in preds]))
    out[f"recall|{key_part(gold)}"] = acc
    for key in ("balanced_acc", "macro_f1", "acc_repeat_std", "macro_f1_repeat_std"):
        out[key] = it
    if doc["dataset"] == "vk" and gold in VK_BINARY_LABELS:
        bit = item(doc, preds, VK_BINARY_LABELS)
        out["acc_binary"] = acc
        out["macro_f1_binary"] = bit
        out["acc_binary_excl_either"] = bit
    if doc.get("individual") is not None:
        out["macro_f1_individual"] = it
        if doc.get("subject_group"):
            out[f"macro_f1_individual|{key_part(doc['subject_group'])}"] = it
    if doc["dataset"] == "opinionqa" and doc.get("attribute"):
        out[f"acc|{key_part(doc['attribute'])}"] = acc
    return out


def direct_doc_metrics(doc: dict[str, Any], probs: np.ndarray) -> dict[str, Any]:
    """Per-document values of a direct task from its option-letter probabilities.

    The answer is the most probable letter's option (`opinbench.metrics.letters`),
    scored as `doc_metrics` scores one answer (no ``invalid``, no repeats), plus
    ``p_gold`` (probability of the gold letter, renormalised over the letters),
    ``letter_mass`` (probability on any letter at all) and ``low_letter_mass``
    (1 where that mass is under the document's ``mass_threshold``), and
    ``nonfinite`` (1 where a loglikelihood was NaN or infinite: the answer is then
    invalid, scored wrong as an unparsable CoT answer is, and the probability
    values are left out).
    """
    finite = is_finite(probs)
    out = doc_metrics(doc, [predicted_answer(doc, probs) if finite else None], with_invalid=False)
    for key in ("acc_repeat_std", "macro_f1_repeat_std"):  # one answer per document: no repeats
        del out[key]
    out["nonfinite"] = float(not finite)
    if not finite:
        return out
    mass = float(probs.sum())
    gold = doc["letters"].index(doc["answer_letter"])
    out["p_gold"] = float(probs[gold] / mass) if mass > 0 else 1.0 / len(probs)
    out["letter_mass"] = mass
    out["low_letter_mass"] = low_letter_mass(doc, mass)
    return out


def self_consistency(preds: Sequence[Any]) -> Any:
    """The most frequent valid answer over repeats (ties: the first given), None if all are invalid.

    >>> self_consistency(["Yes", None, "No", "No"]), self_consistency(["Yes", "No"]), self_consistency([None])
    ('No', 'Yes', None)
    """
    valid = [p for p in preds if p is not None]
    if not valid:
        return None
    return max(valid, key=lambda p: (valid.count(p), -valid.index(p)))


# --------------------------------------------------------------------------- aggregations


def _codes(items: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """Gold codes (N,), prediction codes (N, R), K, and settings from the first item."""
    if not items:
        raise ValueError("no documents to aggregate")
    labels = items[0]["labels"]
    repeats = {len(it["pred"]) for it in items}
    if len(repeats) != 1:
        raise ValueError(f"documents have different numbers of repeats: {sorted(repeats)}")
    if any(it["labels"] != labels for it in items):
        raise ValueError("documents with different label sets cannot be aggregated together")
    r = repeats.pop()
    gold = [it["gold"] for it in items]
    flat = [p for it in items for p in it["pred"]]
    g, p = C.encode([x for x in gold for _ in range(r)], flat, labels)
    return g[::r], p.reshape(len(items), r), len(labels), items[0]


def _per_repeat(items: Sequence[dict[str, Any]], metric: str) -> np.ndarray:
    g, p, k, _ = _codes(items)
    return C.scores(C.repeat_confusions(g, p, k))[metric]


def _mean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def macro_f1(items: Sequence[dict[str, Any]]) -> float:
    """Macro-F1 over the label set, averaged over repeats."""
    return _mean(_per_repeat(items, "macro_f1"))


def balanced_acc(items: Sequence[dict[str, Any]]) -> float:
    """Balanced accuracy (mean per-class recall), averaged over repeats."""
    return _mean(_per_repeat(items, "balanced_accuracy"))


def weighted_confusions(g: np.ndarray, p: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Confusion counts per repeat for each row of document ``weights`` (B, N): (B, R, K, K+1)."""
    p = np.asarray(p).reshape(len(g), -1)
    cells = g[:, None] * (k + 1) + p  # (N, R)
    out = np.zeros((weights.shape[0], cells.shape[1], k * (k + 1)))
    for rep in range(cells.shape[1]):
        for c in np.unique(cells[:, rep]):
            out[:, rep, c] = weights[:, cells[:, rep] == c].sum(axis=1)
    return out.reshape(weights.shape[0], cells.shape[1], k, k + 1)


def _draws(items: Sequence[dict[str, Any]]) -> list[np.ndarray] | None:
    """`clustered.cluster_draw_factors` of items that carry their sampling unit; None with < 2 clusters."""
    clusters = clustered.clusters_of(items)
    if clusters is None or clustered.n_clusters(clusters) < 2:
        return None
    first = items[0]
    return clustered.cluster_draw_factors(clusters, int(first["n_boot"]), int(first["seed"]))


def _boot(items: Sequence[dict[str, Any]], metric: str) -> float:
    """Cluster-bootstrap standard error of a corpus metric averaged over repeats (NaN: undefined)."""
    factors = _draws(items)
    if factors is None:
        return float("nan")
    g, p, k, _ = _codes(items)
    values = _nanmean_rows(C.scores(weighted_confusions(g, p, k, np.prod(factors, axis=0)))[metric])
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN, NaN where a row has none (no warning)."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=-1)
    return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=-1) / np.maximum(n, 1), np.nan)


def macro_f1_stderr_boot(items: Sequence[dict[str, Any]]) -> float:
    """Standard error of `macro_f1` by a bootstrap over the documents' sampling units
    (`opinbench.metrics.clustered.sampling_unit`: questions; question x individual
    two-way for the individual-level data sets), each document with its repeats."""
    return _boot(items, "macro_f1")


def balanced_acc_stderr_boot(items: Sequence[dict[str, Any]]) -> float:
    """Cluster-bootstrap standard error of `balanced_acc` (as `macro_f1_stderr_boot`)."""
    return _boot(items, "balanced_accuracy")


macro_f1 = clustered.with_stderr(macro_f1_stderr_boot)(macro_f1)
balanced_acc = clustered.with_stderr(balanced_acc_stderr_boot)(balanced_acc)


def _std(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.std(x, ddof=1)) if x.size > 1 else 0.0


def acc_repeat_std(items: Sequence[dict[str, Any]]) -> float:
    """Spread of accuracy over repeats (sample std; 0 with one repeat)."""
    return _std(_per_repeat(items, "accuracy"))


def macro_f1_repeat_std(items: Sequence[dict[str, Any]]) -> float:
    """Spread of macro-F1 over repeats (sample std; 0 with one repeat)."""
    return _std(_per_repeat(items, "macro_f1"))


def acc_binary_excl_either(items: Sequence[dict[str, Any]]) -> float:
    """Accuracy over binary-gold predictions that are not "Either" (Feng et al., 2024).

    Invalid answers stay in (and count as wrong); only "Either" answers are dropped.
    """
    right = total = 0
    for it in items:
        for p in it["pred"]:
            if p == VK_EITHER:
                continue
            total += 1
            right += p == it["gold"]
    return right / total if total else float("nan")


acc_binary_excl_either_stderr = clustered.clustered_bootstrap(acc_binary_excl_either)
acc_binary_excl_either = clustered.with_stderr(acc_binary_excl_either_stderr)(acc_binary_excl_either)


def individual_scores(items: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Macro-F1 of each individual (averaged over repeats)."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for it in items:
        by[str(it["individual"])].append(it)
    return {ind: macro_f1(its) for ind, its in by.items()}


def macro_f1_individual(items: Sequence[dict[str, Any]]) -> float:
    """Macro-F1 per individual, averaged over individuals (each individual weighs the same)."""
    return _mean(np.array(list(individual_scores(items).values())))


def macro_f1_individual_stderr_boot(items: Sequence[dict[str, Any]]) -> float:
    """Cluster-bootstrap standard error of `macro_f1_individual` (NaN: undefined, e.g. one individual).

    The pigeonhole bootstrap of `clustered.cluster_draw_factors` over (question, individual):
    an individual's F1 is computed over its items weighted by how often their questions
    were drawn, and the mean over individuals weights each by how often it was drawn.
    Items without an individual pair are resampled by their one-way unit.
    """
    factors = _draws(items)
    if factors is None or len(individual_scores(items)) < 2:
        return float("nan")
    g, p, k, _ = _codes(items)
    ind = np.asarray([str(it["individual"]) for it in items])
    order = np.argsort(ind, kind="stable")
    starts = np.flatnonzero(np.r_[True, ind[order][1:] != ind[order][:-1]])
    q_w = factors[0][:, order]
    i_w = (factors[1] if len(factors) > 1 else factors[0])[:, order][:, starts]  # (B, I): the individual's draw count
    cells = (g[:, None] * (k + 1) + np.asarray(p).reshape(len(g), -1))[order]  # (N, R)
    conf = np.zeros((q_w.shape[0], starts.size, cells.shape[1], k * (k + 1)))
    for rep in range(cells.shape[1]):
        for c in np.unique(cells[:, rep]):
            conf[:, :, rep, c] = np.add.reduceat(q_w * (cells[:, rep] == c), starts, axis=1)
    f1 = _nanmean_rows(C.scores(conf.reshape(*conf.shape[:3], k, k + 1))["macro_f1"])  # (B, I)
    if len(factors) == 1:  # one-way units: an individual counts once if any of its items was drawn
        i_w = (np.add.reduceat(q_w, starts, axis=1) > 0).astype(np.float64)
    w = np.where(np.isnan(f1), 0.0, i_w)
    values = np.where(w.sum(axis=1) > 0, (w * np.nan_to_num(f1)).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-300), np.nan)
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


macro_f1_individual = clustered.with_stderr(macro_f1_individual_stderr_boot)(macro_f1_individual)


# --------------------------------------------------------------------------- baselines


def baseline_answers(docs: Sequence[dict[str, Any]], kind: str, *, seed: int = 0) -> list[str]:
    """Answers of a reference predictor, to score with the same code as a model.

    ``random``: an option drawn uniformly for each document; ``majority``: the
    most frequent gold answer among ``docs`` (option text; for OpinionQA, the
    most frequent gold *letter*).
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        return [d["options"][int(rng.integers(len(d["options"])))] for d in docs]
    if kind == "majority":
        counts: dict[str, int] = defaultdict(int)
        for d in docs:
            counts[d["gold_label"]] += 1
        top = max(counts, key=lambda k: counts[k])
        out = []
        for d in docs:
            if d["dataset"] == "opinionqa":
                i = d["letters"].index(top) if top in d["letters"] else 0
                out.append(d["options"][i])
            else:
                out.append(top)
        return out
    raise ValueError(f"unknown baseline {kind!r}; choose random or majority")

