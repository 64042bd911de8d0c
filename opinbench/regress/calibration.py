"""Synthetic comparisons that measure `opinbench.regress.check.regress`: false alarms and power.

A synthetic "model" is compared with a second draw of itself (no true change), or with
a draw carrying a known drop:

* distribution task: Q questions x G groups. Each side's distribution for a document
  is the model's (close to the group's) perturbed by noise in logit space that is
  *shared by the groups of a question* (sd ``question_sd``) plus per-document noise
  (sd ``doc_sd``): documents of one question are correlated, as in real runs. The
  drop moves the candidate toward uniform: ``(1 - eps) p + eps / K``.
* answer task: N documents in questions of ``docs_per_situation`` documents, with
  per-document difficulty; each side answers right with that probability moved, in logit
  space, by a shift drawn per side and *per question* (sd ``answer_question_sd``): whole
  questions get easier or harder together between two runs, as a changed reading of a
  question moves all its groups (a sampling model, so two runs differ). Wrong answers pick
  another label. The drop flips ``k`` of the candidate's answers to another label.

Both nulls are correlated within questions: a test that took documents as independent
(McNemar over documents, which `regress` used for accuracy before) raises false alarms
on them; `tests/test_regress_calibration.py` shows it.

`simulate` returns one `check.regress` report per comparison; ``scripts/regress_calibration.py``
tabulates them (docs/regress.md). The false-alarm unit test uses small settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from opinbench.metrics import distribution as M
from opinbench.regress import check
from opinbench.regress.values import ANSWER, DISTRIBUTION, RunValues, TaskValues

LABELS = ["Supports", "Opposes", "Either"]


@dataclass(frozen=True)
class Setting:
    n_questions: int = 17
    n_groups: int = 4
    n_answer_docs: int = 60
    docs_per_situation: int = 2
    question_sd: float = 0.1
    doc_sd: float = 0.05
    model_sd: float = 0.1
    p_right_mean: float = 0.7
    answer_question_sd: float = 1.0


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class World:
    """The fixed truth both sides are drawn from."""

    human: np.ndarray  # (Q, G, K)
    model_logits: np.ndarray  # (Q, G, K)
    gold: np.ndarray  # (N,)
    p_right: np.ndarray  # (N,)
    setting: Setting


def make_world(setting: Setting, rng: np.random.Generator) -> World:
    q, g, k = setting.n_questions, setting.n_groups, 4
    base = rng.dirichlet(np.ones(k) * 2, size=q)
    human = np.stack([rng.dirichlet(base[i] * 30 + 0.1, size=g) for i in range(q)])
    model_logits = np.log(human + 0.02) + rng.normal(0, setting.model_sd, size=(q, g, k))
    n = setting.n_answer_docs
    gold = rng.integers(0, 3, size=n)
    p_right = np.clip(rng.beta(setting.p_right_mean * 6, (1 - setting.p_right_mean) * 6, size=n), 0.0, 1.0)
    return World(human, model_logits, gold, p_right, setting)


def _distribution_side(world: World, rng: np.random.Generator, eps: float) -> TaskValues:
    s = world.setting
    q, g, k = world.human.shape
    noise = rng.normal(0, s.question_sd, size=(q, 1, k)) + rng.normal(0, s.doc_sd, size=(q, g, k))
    p = _softmax(world.model_logits + noise)
    p = (1 - eps) * p + eps / k
    ordinal = np.tile(np.arange(1.0, k + 1), (q * g, 1))
    h = world.human.reshape(q * g, k)
    pm = p.reshape(q * g, k)
    wd = M.wasserstein(pm, h, ordinal)
    kl = M.kl_divergence(h, pm, ordinal)
    tv = TaskValues("synthetic_wd", DISTRIBUTION, 1.0)
    for i in range(q * g):
        tv.docs[f"d{i}"] = {"question": f"q{i // g}", "wd": float(wd[i]), "kl": float(kl[i])}
    return tv


def _answer_side(world: World, rng: np.random.Generator, flip: float) -> TaskValues:
    n = world.gold.size
    per = world.setting.docs_per_situation
    shift = rng.normal(0, world.setting.answer_question_sd, size=(n + per - 1) // per)[np.arange(n) // per]
    p = np.clip(world.p_right, 1e-6, 1 - 1e-6)
    right = rng.random(n) < 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    other = (world.gold + 1 + rng.integers(0, 2, size=n)) % 3
    pred = np.where(right, world.gold, other)
    if flip > 0:
        flipped = rng.permutation(n)[: int(round(flip * n))]
        pred[flipped] = (pred[flipped] + 1 + rng.integers(0, 2, size=flipped.size)) % 3
    tv = TaskValues("synthetic_direct", ANSWER, 1.0)
    for i in range(n):
        tv.docs[f"a{i}"] = {
            "question": f"s{i // per}", "gold": LABELS[world.gold[i]], "pred": [LABELS[pred[i]]], "labels": LABELS,
        }
    return tv


def draw(world: World, rng: np.random.Generator, *, eps: float = 0.0, flip: float = 0.0) -> RunValues:
    side = RunValues("synthetic")
    side.tasks = {"synthetic_wd": _distribution_side(world, rng, eps), "synthetic_direct": _answer_side(world, rng, flip)}
    return side


def simulate(
    setting: Setting,
    n: int,
    *,
    eps: float = 0.0,
    flip: float = 0.0,
    seed: int = 0,
    tolerances: dict[str, float] | None = None,
    n_resamples: int = 2_000,
    n_boot: int = 500,
) -> list[dict[str, Any]]:
    """``n`` comparisons (a new world each time) of a baseline with a candidate carrying the drop."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        world = make_world(setting, rng)
        base, cand = draw(world, rng), draw(world, rng, eps=eps, flip=flip)
        out.append(check.regress(
            base, cand, tolerances=tolerances, min_questions=1, allow_underpowered=True, seed=i, n_resamples=n_resamples, n_boot=n_boot,
        ))
    return out


def any_significant(report: dict[str, Any], alpha: float = check.DEFAULT_ALPHA) -> bool:
    """Some metric's Holm-adjusted p is under alpha (either direction): a family-wise false alarm under H0."""
    return any(r["pvalue_holm"] is not None and r["pvalue_holm"] < alpha for r in report["rows"])
