"""The diagnostics of the ``*_wd`` tasks (issue 22): JSD, rank order, refusal gap, entropy strata.

Each per-document function is checked against an independent implementation (scipy), the
per-document values of `opinbench.scoring.distribution.doc_values` against a hand computation, and the shipped entropy cut
points against a recomputation from the real data (skipped without it).
"""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, kendalltau

from opinbench.harness import sampled as S
from opinbench.metrics import distribution as M
from opinbench.metrics import strata
from opinbench.scoring.distribution import doc_values as doc_metrics


def _pairs(seed: int, n: int = 300):
    """Random (p, q) pairs of 2..8 options, with zeros and exact ties mixed in."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = int(rng.integers(2, 9))
        p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        if i % 3 == 0:  # ties: rounded shares
            q = np.round(q, 1)
            if q.sum() == 0:
                continue
        if i % 5 == 0:
            p[rng.integers(k)] = 0.0
        yield p / p.sum(), q / q.sum()


def test_jensen_shannon_equals_scipy_squared_distance():
    for p, q in _pairs(0):
        got = M.jensen_shannon(p, q, np.arange(len(p)))[0]
        assert got == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    assert M.jensen_shannon([1, 0], [0, 1], [1, 2])[0] == pytest.approx(1.0)


def test_jensen_shannon_batch_ignores_padding():
    rows_p, rows_q = [[0.2, 0.8], [0.1, 0.2, 0.7]], [[0.5, 0.5], [0.3, 0.3, 0.4]]
    got = M.jensen_shannon(M.pad(rows_p, fill=0.0), M.pad(rows_q, fill=0.0), M.pad([[1, 2], [1, 2, 3]]))
    ref = [jensenshannon(p, q, base=2) ** 2 for p, q in zip(rows_p, rows_q)]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_kendall_tau_b_equals_scipy_with_ties_and_constant_rows():
    undefined = 0
    for p, q in _pairs(1):
        got = M.kendall_tau_b(p, q, np.arange(len(p)))[0]
        ref = kendalltau(p, q, variant="b").statistic
        if np.isnan(ref):
            undefined += 1
            assert np.isnan(got)
        else:
            assert got == pytest.approx(ref, abs=1e-12)
    assert math.isnan(M.kendall_tau_b([0.5, 0.5], [0.1, 0.9], [1, 2])[0])
    assert M.kendall_tau_b([0.1, 0.9], [0.2, 0.8], [1, 2])[0] == 1.0
    assert M.kendall_tau_b([0.1, 0.9], [0.8, 0.2], [1, 2])[0] == -1.0


def test_normalised_entropy_equals_scipy_over_log_k():
    for p, _ in _pairs(2, 100):
        assert M.normalised_entropy(p, np.arange(len(p)))[0] == pytest.approx(entropy(p) / math.log(len(p)), abs=1e-12)


def test_strata_cut_at_the_tertiles():
    assert strata.tertile_cuts([0.0, 0.3, 0.6, 0.9]) == pytest.approx((0.3, 0.6))
    cuts = (0.5, 0.8)
    assert [strata.stratum(e, cuts) for e in (0.0, 0.4999, 0.5, 0.7999, 0.8, 1.0)] == [
        "consensus", "consensus", "mixed", "mixed", "divided", "divided"]
    assert strata.stratum(float("nan"), cuts) is None
    with pytest.raises(ValueError, match="no finite entropy"):
        strata.tertile_cuts([float("nan")])


def test_every_shipped_data_set_has_two_increasing_cut_points():
    shipped = json.loads(resources.files("opinbench.data").joinpath(strata.RESOURCE).read_text())["datasets"]
    assert "opinionqa" in shipped
    for name, entry in shipped.items():
        low, high = entry["cuts"]
        assert 0 < low < high < 1, name
        assert strata.cuts_for(name) == (low, high)
    assert strata.cuts_for("no_such_data_set") is None


@pytest.mark.parametrize("name", ["opinionqa", "subpop_train"])
def test_shipped_cut_points_equal_a_recomputation_from_the_data(shared_data, name):
    """The cut points are fixed with the data: recomputing them from the release gives the shipped ones."""
    from opinbench.data import registry

    shipped = strata.shipped()[name]
    records = registry.load(name, data_dir=shared_data, groups=shipped["groups"])
    entry = strata.data_set_cuts(records)
    # independently: scipy's entropy over each record with a scale, numpy's quantiles
    h = [entropy(r.distribution) / math.log(len(r.ordinal)) for r in records if r.has_scale]
    assert entry["cuts"] == pytest.approx(list(np.quantile(h, [1 / 3, 2 / 3])), abs=1e-12)
    assert entry["cuts"] == pytest.approx(shipped["cuts"], abs=1e-12)
    assert entry["records"] == shipped["records"]


# --------------------------------------------------------------------------- per-document values


def doc(**over):
    d = {
        "dataset": "opinionqa",
        "options": ["Yes", "Maybe", "No", "Refused"],
        "letters": ["A", "B", "C", "D"],
        "n_ordinal": 3,
        "ordinal": [1.0, 2.0, 3.0],
        "distribution": [0.2, 0.3, 0.5],
        "attribute": "SEX",
        "group": "Male",
        "id": "opinionqa:Q:SEX:Male",
        "n": 90.0,
        "n_nonsubstantive": 10.0,
        "seed": 0,
        "human_resamples": 50,
        "mass_threshold": 0.1,
    }
    return d | over


def test_doc_metrics_diagnostics_by_hand():
    probs = np.array([0.1, 0.2, 0.3, 0.2])  # letter mass 0.8, 0.2 on "Refused"
    out = doc_metrics(doc(), probs)
    model = np.array([1, 2, 3]) / 6
    assert out["jsd"] == pytest.approx(jensenshannon(model, [0.2, 0.3, 0.5], base=2) ** 2, abs=1e-12)
    assert out["rank_tau"] == pytest.approx(1.0) and out["rank_tau_undefined"] == 0.0
    # refusal: 0.2 / 0.8 of the letters' probability, against 10 of 100 respondents
    assert out["refusal_gap"] == pytest.approx(0.25 - 0.1) and out["refusal_gap_abs"] == pytest.approx(0.15)
    h = entropy([0.2, 0.3, 0.5]) / math.log(3)  # 0.937: above opinionqa's second cut point
    assert h >= strata.cuts_for("opinionqa")[1]
    assert out["wd|entropy=divided"] == out["wd"]
    assert not any(k.startswith("wd|entropy=") and k != "wd|entropy=divided" for k in out)


def test_doc_metrics_existing_values_unchanged_by_the_diagnostics():
    probs = np.array([0.1, 0.2, 0.3, 0.2])
    out = doc_metrics(doc(), probs)
    model = probs[:3]  # renormalised inside, as before the diagnostics
    assert out["wd"] == M.wasserstein(model[None], np.array([[0.2, 0.3, 0.5]]), np.array([[1.0, 2, 3]]))[0]
    assert out["kl"] == M.kl_divergence(np.array([[0.2, 0.3, 0.5]]), model[None], np.array([[1.0, 2, 3]]))[0]
    new = {"jsd", "rank_tau", "rank_tau_undefined", "refusal_gap", "refusal_gap_abs", "wd|entropy=divided"}
    assert set(out) - new == {"wd", "kl", "onehot", "wd_uniform", "wd_human", "wd_gap_closed", "letter_mass",
                              "low_letter_mass", "nonfinite", "wd|SEX", "wd|SEX=Male"}


def test_rank_tau_left_out_and_counted_where_a_distribution_is_constant():
    out = doc_metrics(doc(distribution=[0.5, 0.0, 0.5], ordinal=[1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3, 0.0]))
    assert "rank_tau" in out  # ties, not constant
    flat = doc_metrics(doc(distribution=[1 / 3] * 3), np.array([0.1, 0.2, 0.3, 0.0]))
    assert "rank_tau" not in flat and flat["rank_tau_undefined"] == 1.0
    assert "jsd" in flat


def test_refusal_gap_only_where_counts_and_a_nonsubstantive_option_exist():
    probs = np.array([0.1, 0.2, 0.3, 0.2])
    assert "refusal_gap" not in doc_metrics(doc(n_nonsubstantive=None), probs)
    assert "refusal_gap" not in doc_metrics(doc(n=None), probs)
    no_refused = doc(options=["Yes", "Maybe", "No"], letters=["A", "B", "C"])
    assert "refusal_gap" not in doc_metrics(no_refused, probs[:3])


def test_no_stratum_without_shipped_cut_points():
    out = doc_metrics(doc(dataset="subpop_eval"), np.array([0.1, 0.2, 0.3, 0.2]))
    assert not any(k.startswith("wd|entropy") for k in out)


def test_sampled_task_scores_the_diagnostics_on_its_histogram():
    d = doc(n_ordinal=3)
    gens = ["A", "B", "B", "C", "C", "C", "D", "nonsense"]
    out = S.process_results(d, [gens])
    model = np.array([1, 2, 3]) / 6
    assert out["jsd_sampled"] == pytest.approx(jensenshannon(model, [0.2, 0.3, 0.5], base=2) ** 2, abs=1e-12)
    assert out["rank_tau_sampled"] == pytest.approx(1.0)
    # one refusal among seven valid answers, against 10 of 100 respondents
    assert out["refusal_gap_sampled"] == pytest.approx(1 / 7 - 0.1)
    assert out["wd_sampled|entropy=divided"] == out["wd_sampled"]
    assert "jsd" not in out and "wd|entropy=divided" not in out


# --------------------------------------------------------------------------- the report's sections


def _report_run(tmp_path, default_probs=None):
    """A run folder of ``opinionqa_wd`` with non-substantive counts, spanning the three strata (and, given
    the unsteered model's letter probabilities, ``opinionqa_wd_default`` on the same questions)."""
    from tests.helpers.lm_eval_runs import default_doc, mc_resps, wd_doc, write_run

    dists = {"Q1": [0.95, 0.03, 0.02], "Q2": [0.5, 0.3, 0.2], "Q3": [0.34, 0.33, 0.33], "Q4": [0.6, 0.25, 0.15]}
    rows = []
    for i, (q, dist) in enumerate(dists.items()):
        for j, group in enumerate(("Democrat", "Republican")):
            d = wd_doc(q, f"question {q}", ["A lot", "Some", "None", "Refused"], [1.0, 2.0, 3.0], "POLPARTY", group,
                       dist, n=100.0 - 10 * j) | {"n_nonsubstantive": 5.0 + i + 3 * j}
            probs = [0.5, 0.2 + 0.05 * i, 0.1, 0.05 + 0.05 * j]
            rows.append({"doc": d, "filtered_resps": mc_resps(probs), "probs": probs})
    tasks = {"opinionqa_wd": [{k: r[k] for k in ("doc", "filtered_resps")} | {"target_hash": "t"} for r in rows]}
    if default_probs is not None:
        fields = ("id", "attribute", "group", "distribution", "n", "n_nonsubstantive")
        tasks["opinionqa_wd_default"] = [
            {"doc": default_doc(q, f"question {q}", ["A lot", "Some", "None", "Refused"], [1.0, 2.0, 3.0],
                                [{k: r["doc"][k] for k in fields} for r in rows if r["doc"]["question_key"] == q]),
             "filtered_resps": mc_resps(default_probs), "target_hash": "t"} for q in dists]
    folder = write_run(tmp_path / "runs" / "m", tasks)
    results = next(folder.glob("results_*.json"))
    results.write_text(json.dumps(json.loads(results.read_text()) | {"versions": {t: 1.0 for t in tasks}}))
    return folder, rows


def test_report_difficulty_and_refusal_calibration_equal_the_task_metrics(tmp_path):
    from opinbench.analysis import difficulty, refusal
    from opinbench.commands.report import build_report, read_run
    from opinbench.metrics.letters import letter_probabilities
    from opinbench.runs import find_runs
    from tests.helpers.lm_eval_runs import mc_resps

    folder, rows = _report_run(tmp_path)
    per_doc = []
    for r in rows:
        lls = [float(x[0]) for x in mc_resps(r["probs"])]
        per_doc.append(doc_metrics(r["doc"], letter_probabilities(lls, 4)))
    (run,) = find_runs(folder)
    answers = read_run(run).answers["opinionqa_wd"]
    by_stratum = {s.stratum: s for s in difficulty.wd_by_stratum(answers, "opinionqa")}
    assert set(by_stratum) == {"consensus", "mixed", "divided"}
    for level, s in by_stratum.items():
        xs = [m[f"wd|entropy={level}"] for m in per_doc if f"wd|entropy={level}" in m]
        assert s.wd == pytest.approx(np.mean(xs), abs=1e-12) and s.answers == len(xs)
    for g in refusal.refusal_by_group(answers):
        gaps = [m["refusal_gap"] for m, r in zip(per_doc, rows) if r["doc"]["group"] == g.group[1]]
        assert g.model - g.human == pytest.approx(np.mean(gaps), abs=1e-12)
    (tmp_path / "topics.json").write_text("{}")
    page = build_report([folder], tmp_path / "report", topics_path=tmp_path / "topics.json").read_text()
    assert "Refusal calibration (opinionqa)" in page and "WD by question difficulty (opinionqa)" in page
    for name in ("refusal_calibration_opinionqa", "difficulty_opinionqa"):
        assert (tmp_path / "report" / "figures" / f"{name}.svg").stat().st_size > 1000


def test_steering_gain_is_unsteered_minus_steered_wd_averaged_over_groups(tmp_path):
    from opinbench.analysis import steerability
    from opinbench.commands.report import read_run
    from opinbench.runs import find_runs
    from tests.helpers.lm_eval_runs import default_doc, mc_resps, wd_doc, write_run

    dists = {"Q1": {"Democrat": [0.8, 0.1, 0.1], "Republican": [0.1, 0.2, 0.7]},
             "Q2": {"Democrat": [0.3, 0.3, 0.4], "Republican": [0.6, 0.3, 0.1]},
             "Q3": {"Democrat": [0.2, 0.5, 0.3], "Republican": [0.5, 0.4, 0.1]}}
    options, ordinal = ["A lot", "Some", "None", "Refused"], [1.0, 2.0, 3.0]
    steered, default, expected = [], [], {}
    for q, groups in dists.items():
        unsteered = [0.3, 0.3, 0.3, 0.1]
        docs = [{"id": f"opinionqa:{q}:POLPARTY:{g}", "attribute": "POLPARTY", "group": g, "distribution": d, "n": 100.0}
                for g, d in groups.items()]
        default.append({"doc": default_doc(q, q, options, ordinal, docs), "filtered_resps": mc_resps(unsteered)})
        for g, d in groups.items():
            probs = [0.9 * (0.6 * p + 0.4 / 3) for p in d] + [0.1]
            steered.append({"doc": wd_doc(q, q, options, ordinal, "POLPARTY", g, d), "filtered_resps": mc_resps(probs)})
            wd_s = M.wasserstein(np.array(probs[:3]), d, ordinal)[0]
            wd_u = M.wasserstein(np.array(unsteered[:3]), d, ordinal)[0]
            expected.setdefault(g, []).append(wd_u - wd_s)
    (run,) = find_runs(write_run(tmp_path / "run" / "m", {"opinionqa_wd": steered, "opinionqa_wd_default": default}))
    ra = read_run(run)
    got = steerability.steering_gain(ra.answers["opinionqa_wd"], ra.answers["opinionqa_wd_default"])
    assert got.gain == pytest.approx(np.mean([np.mean(v) for v in expected.values()]), abs=1e-12)
    assert (got.groups, got.pairs) == (2, 6) and got.gain > 0
    # the same as the report's steerability table: each steering's gain over unsteered, averaged
    rows = steerability.steerability({"qa": ra.answers["opinionqa_wd"]}, ra.answers["opinionqa_wd_default"])
    assert got.gain == pytest.approx(np.mean([r.gain for r in rows]), abs=1e-12)
    # clustered by question: the three questions are the clusters of the six differences
    d = [x for q in range(3) for x in (expected["Democrat"][q], expected["Republican"][q])]
    sums = np.array([d[0] + d[1], d[2] + d[3], d[4] + d[5]]) - 2 * np.mean(d)
    assert got.stderr == pytest.approx(math.sqrt(3 / 2 * np.sum(sums**2)) / 6, abs=1e-12)
    assert steerability.steering_gain(ra.answers["opinionqa_wd"], []) is None


def test_leaderboard_steering_gain_and_strata_from_a_run(tmp_path):
    """The leaderboard's steering gain equals the analysis' (unsteered minus steered WD), its strata the task's keys."""
    from opinbench.analysis.model_answers import from_rows
    from opinbench.analysis.steerability import steering_gain
    from opinbench.leaderboard import diagnostics as D
    from opinbench.leaderboard.definition import MetricSpec
    from opinbench.runs import find_runs
    from opinbench.scoring.rescore import rescore_rows

    folder, rows = _report_run(tmp_path, default_probs=[0.3, 0.3, 0.3, 0.1])
    (run,) = find_runs(folder)
    m = MetricSpec(id="gain", group="diagnostics", metric="steering_gain", direction="higher", display="gain",
                   floor=None, ceiling=None, task="opinionqa_wd", unsteered="opinionqa_wd_default")
    score = D.steering_gain_score(m, run, 1.96)
    ref = steering_gain(from_rows(r.data for r in run.rows("opinionqa_wd")),
                        from_rows(r.data for r in run.rows("opinionqa_wd_default")))
    assert score["raw"] == ref.gain and score["normalised"] is None and (score["groups"], score["pairs"]) == (2, 8)
    assert score["ci"] == pytest.approx([ref.gain - 1.96 * ref.stderr, ref.gain + 1.96 * ref.stderr])
    missing = D.steering_gain_score(MetricSpec(**{**m.__dict__, "unsteered": "opinionqa_wd_bio"}), run, 1.96)
    assert "no samples of opinionqa_wd_bio" in missing["missing"]
    levels = D.strata(rescore_rows("opinionqa_wd", run.rows("opinionqa_wd")))
    per_doc = [doc_metrics(r["doc"], np.array(r["probs"])) for r in rows]
    assert list(levels) == ["consensus", "mixed", "divided"]
    for level, value in levels.items():
        assert value == pytest.approx(np.mean([v[f"wd|entropy={level}"] for v in per_doc if f"wd|entropy={level}" in v]))


def test_validation_scores_the_steering_gain_and_keeps_diagnostics_out_of_the_headline(tmp_path):
    from opinbench.leaderboard import diagnostics as D
    from opinbench.leaderboard.definition import parse_definition
    from opinbench.leaderboard.validate import validate_run
    from opinbench.runs import find_runs

    folder, rows = _report_run(tmp_path, default_probs=[0.2, 0.3, 0.4, 0.1])
    definition = parse_definition({
        "name": "t", "version": 1, "subset": False,
        "tasks": {"opinionqa_wd": {"version": 1.0}, "opinionqa_wd_default": {"version": 1.0}},
        "groups": [{"id": "distribution"}, {"id": "diagnostics", "headline": False}],
        "metrics": [
            {"id": "wd", "group": "distribution", "task": "opinionqa_wd", "metric": "wd", "direction": "lower",
             "floor": {"value": 1.0}, "ceiling": {"value": 0.0}},
            {"id": "jsd", "group": "diagnostics", "task": "opinionqa_wd", "metric": "jsd", "direction": "lower"},
            {"id": "divided", "group": "diagnostics", "task": "opinionqa_wd", "metric": "wd|entropy=divided",
             "direction": "lower"},
            {"id": "gain", "group": "diagnostics", "task": "opinionqa_wd", "unsteered": "opinionqa_wd_default",
             "metric": "steering_gain", "direction": "higher"},
        ]})
    report = validate_run(folder, definition, check_data=False)
    # the synthetic rows carry made-up hashes; nothing else may be wrong
    assert [e for e in report["errors"] if "doc_hash" not in e and "task_hashes" not in e] == []
    scores = report["scores"]
    assert scores["gain"]["raw"] == D.steering_gain_score(definition.metric("gain"), find_runs(folder)[0], 1.96)["raw"]
    per_doc = [doc_metrics(r["doc"], np.array(r["probs"])) for r in rows]
    assert scores["jsd"]["raw"] == pytest.approx(np.mean([v["jsd"] for v in per_doc]), abs=1e-9)
    assert scores["divided"]["raw"] == pytest.approx(
        np.mean([v["wd|entropy=divided"] for v in per_doc if "wd|entropy=divided" in v]), abs=1e-9)
    assert all(scores[k]["normalised"] is None for k in ("jsd", "divided", "gain"))
    assert report["headline"] == scores["wd"]["normalised"] and report["headline_metrics"] == 1


def test_entry_page_draws_the_wd_by_stratum_figure(tmp_path):
    from opinbench.leaderboard.site import _strata_figures

    entry = {"id": "e1", "tasks": {"opinionqa_wd": {"strata": {"consensus": 0.2, "mixed": 0.15, "divided": 0.1}},
                                   "wom_cot": {"breakdown": {}}}}
    (fig,) = _strata_figures(entry, tmp_path)
    assert fig["png"] == "e1-opinionqa_wd-strata.png" and "entropy strata" in fig["title"]
    assert (tmp_path / fig["png"]).read_bytes()[:4] == b"\x89PNG"
