"""The sampled-distribution estimator (*_wd_sampled) for generation-only backends."""

from __future__ import annotations

import numpy as np
import pytest

from opinbench.harness import sampled as S
from opinbench.metrics import distribution as M
from tests.test_harness_distribution import run_lm_eval, tiny_release  # noqa: F401  (fixture)
from tests.helpers.tiny_models import build_model

DOC = {
    "id": "opinionqa:Q1:SEX:Male",
    "options": ["Very safe", "Somewhat safe", "Not safe", "Refused"],
    "letters": ["A", "B", "C", "D"],
    "n_ordinal": 3,
    "ordinal": [1.0, 2.0, 3.0],
    "distribution": [0.2, 0.5, 0.3],
    "attribute": "SEX",
    "group": "Male",
    "n": 50.0,
}


def test_histogram_parses_letters_texts_and_counts_refusals_and_invalid():
    gens = ["A", " b", "B. Somewhat safe", "Not safe", "D", "Refused", "I cannot say", ""]
    counts, refused, invalid = S.histogram(gens, DOC)
    assert counts.tolist() == [1, 2, 1]
    assert (refused, invalid) == (2, 2)


def test_process_results_scores_the_histogram_with_the_same_wd():
    gens = ["A", "B", "B", "C"]
    out = S.process_results(DOC, [gens])
    model = np.array([0.25, 0.5, 0.25])
    assert out["wd_sampled"] == pytest.approx(M.wasserstein(model, DOC["distribution"], DOC["ordinal"])[0])
    assert out["n_valid_samples"] == 4 and out["invalid_rate"] == 0
    assert out["wd_sampled|SEX=Male"] == out["wd_sampled"]
    # sampling noise: 4 samples are very noisy; the same answers again give the same estimate
    assert 0 < out["wd_sampling_noise"] < 1
    assert S.process_results(DOC, [gens])["wd_sampling_noise"] == out["wd_sampling_noise"]
    assert S.process_results(DOC, [gens * 25])["wd_sampling_noise"] < out["wd_sampling_noise"] / 3


def test_document_without_an_ordinal_answer_is_left_out_and_counted():
    out = S.process_results(DOC, [["Refused", "???"]])
    assert "wd_sampled" not in out
    assert out["no_valid_sample"] == 1.0 and out["refusal_rate"] == 0.5 and out["invalid_rate"] == 0.5


def test_sampled_task_runs_in_lm_eval(tmp_path, tiny_release):  # noqa: F811
    model = build_model("merged", tmp_path / "m")
    _, out, _ = run_lm_eval(model, tiny_release, chat=False, task="opinionqa_wd_sampled", limit=2)
    res = out["results"]["opinionqa_wd_sampled"]
    assert res["invalid_rate,all_samples"] >= 0
    samples = out["samples"]["opinionqa_wd_sampled"]
    assert len(samples) == 2 and all(len(s["resps"][0]) == 16 for s in samples)  # one request, 16 samples
