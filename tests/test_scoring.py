"""The metric objects (`opinbench.scoring`) are the one definition: the task YAMLs agree with
them, unknown keys are refused, and re-scoring a logged row gives what the live task gave.

The last tests follow ARCHITECTURE.md's "add a metric" recipe with a toy metric: its object
(with its per-document function) and its YAML line are all it takes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from opinbench.errors import ConfigError
from opinbench.scoring import Metric, metric, of_kind, register, registry, resolve, unregister
from opinbench.scoring.distribution import doc_values
from opinbench.scoring.kinds import kind_of
from opinbench.scoring.metric import ANSWER, DERIVED, DISTRIBUTION, JUDGE
from opinbench.scoring.rescore import rescore_rows
from opinbench.runs import SampleRow

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "task_configs.json"


@pytest.fixture(scope="module")
def configs():
    from tests.test_task_configs import resolved_configs

    return resolved_configs()


def test_every_yaml_metric_is_its_object(configs):
    """Direction and aggregation of every metric_list entry of every task are the object's."""
    seen = set()
    for task, cfg in configs.items():
        for entry in cfg["metric_list"]:
            m, part = resolve(entry["metric"])
            seen.add(m.key)
            assert entry["higher_is_better"] == m.higher_is_better, f"{task}: {entry['metric']}"
            assert entry["aggregation"] == m.yaml_entry()["aggregation"], f"{task}: {entry['metric']}"
    unpublished = {k for k, m in registry().items() if JUDGE not in m.kinds and DERIVED not in m.kinds} - seen
    assert not unpublished, f"metric objects no task YAML publishes: {sorted(unpublished)}"


def test_unknown_keys_are_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown metric 'wdd'.*\bwd\b"):
        resolve("wdd")
    with pytest.raises(ConfigError, match="has no breakdown"):
        resolve("kl|SEX")
    assert metric("recall|Yes").key == "recall" and resolve("recall|Yes")[1] == "Yes"


def test_a_key_defined_twice_differently_is_refused():
    with pytest.raises(ConfigError, match="defined twice"):
        register(Metric("wd", "another WD", True, (DISTRIBUTION,)))


def test_estimate_uses_the_objects_aggregation_and_error():
    wd = metric("wd")
    est = wd.estimate([0.1, 0.2, 0.3, 0.6], ["q1", "q1", "q2", "q2"])
    assert est.value == pytest.approx(0.3) and (est.n, est.n_clusters) == (4, 2)
    # CR1 clustered by question, by hand: residuals -0.2, -0.1 | 0.0, 0.3; sums -0.3, 0.3; G/(G-1) = 2
    assert est.stderr == pytest.approx(math.sqrt(2 * (0.3**2 + 0.3**2)) / 4)
    f1 = metric("macro_f1")
    item = {"gold": "Yes", "pred": ["Yes"], "labels": ["Yes", "No"], "individual": None, "n_boot": 50, "seed": 0}
    other = item | {"gold": "No", "pred": ["Yes"]}
    assert f1.aggregate([item, other]) == pytest.approx((2 / 3 + 0) / 2)
    # a cluster bootstrap: identical values give 0; one cluster gives none
    assert metric("wd_gap_closed").standard_error([(0.2, 0.3, 0.1)] * 3, ["a", "b", "c"]) == pytest.approx(0.0, abs=1e-12)
    assert metric("wd_gap_closed").standard_error([(0.2, 0.3, 0.1)] * 3, ["a", "a", "a"]) is None


# --------------------------------------------------------------------------- re-scoring = live scoring


def _dist_doc(**over):
    d = {
        "letters": ["A", "B", "C", "D"], "n_ordinal": 3, "ordinal": [1.0, 2.0, 3.0],
        "distribution": [0.2, 0.3, 0.5], "attribute": "INCOME", "group": "$100,000 or more",
        "id": "opinionqa:Q:INCOME:x", "question_key": "Q", "n": 40.0, "seed": 0, "mass_threshold": 0.1,
        "human_resamples": 50,
    }
    return d | over


def _row(doc, results, doc_id=0):
    """A samples row as lm-eval logs a multiple-choice document (numbers as strings)."""
    return {"doc_id": doc_id, "doc": doc, "resps": [[[str(ll), "False"]] for ll, _ in results],
            "filtered_resps": [[str(ll), "False"] for ll, _ in results]}


def test_distribution_rows_rescore_to_the_live_values():
    from opinbench.harness import distribution as H

    rng = np.random.default_rng(0)
    doc = _dist_doc()
    results = [(float(math.log(p)), False) for p in rng.dirichlet(np.ones(8)) * 0.9]
    live = H.process_results(doc, results)
    task = rescore_rows("t", [SampleRow(Path("s.jsonl"), 1, _row(doc, results))])
    assert task.kind.name == DISTRIBUTION
    assert task.docs[doc["id"]].values == live
    assert task.docs[doc["id"]].cluster == "Q"
    assert set(live) >= {"wd", "kl", "wd_human", "wd|INCOME", "wd|INCOME=$100000 or more"}


def test_answer_rows_rescore_to_the_live_values():
    from opinbench.harness import cot, direct

    doc = {"id": "vk:1", "question_key": "q1", "options": ["Supports", "Opposes", "Either"], "letters": ["A", "B", "C"],
           "labels": ["Supports", "Opposes", "Either"], "gold_label": "Opposes", "answer": "Opposes",
           "answer_letter": "B", "dataset": "vk"}
    texts = ["Because.\nAnswer: B", "Hmm", "Answer: A"]
    row = {"doc_id": 0, "doc": doc, "resps": [texts], "filtered_resps": [texts]}
    task = rescore_rows("vk_cot", [SampleRow(Path("s.jsonl"), 1, row)])
    assert task.kind.name == ANSWER
    assert task.docs["vk:1"].values == cot.process_results(doc, [texts])
    lls = [(-2.0, False), (-0.5, True), (-3.0, False), (-2.5, False), (-1.0, False), (-4.0, False)]
    task = rescore_rows("vk_direct", [SampleRow(Path("s.jsonl"), 1, _row(doc, lls))])
    assert task.docs["vk:1"].values == direct.process_results(doc, lls)


def test_kinds_tell_generations_and_groups_apart():
    doc = _dist_doc()
    assert kind_of(doc, {"resps": [["Answer: A"]]}).name == "sampled"
    assert kind_of({**doc, "groups": []}).name == "default_model"
    assert kind_of({"question": "x"}) is None
    rows = [SampleRow(Path("s.jsonl"), 1, {"doc_id": 0, "doc": doc, "resps": [["Answer: A"]]})]
    assert rescore_rows("opinionqa_wd_sampled", rows) is None  # sampled rows are not re-scored


def test_breakdowns_aggregate_with_their_metric():
    from opinbench.harness import distribution as H

    rows = []
    for i, (group, q) in enumerate([("a", "Q1"), ("b", "Q1"), ("a", "Q2")]):
        doc = _dist_doc(group=group, question_key=q, id=f"d{i}", n=None)
        lls = [(math.log(p), False) for p in [0.1, 0.2, 0.3, 0.1, 0.05, 0.05, 0.1, 0.1]]
        rows.append(SampleRow(Path("s.jsonl"), i + 1, _row(doc, lls, i)))
    task = rescore_rows("t", rows)
    by = task.breakdown("wd")
    assert set(by) == {"INCOME", "INCOME=a", "INCOME=b"}
    assert by["INCOME=a"].n == 2 and by["INCOME"].n == 3
    assert by["INCOME"].value == pytest.approx(task.estimate("wd").value)
    assert H.process_results  # the hook the task YAML names


# --------------------------------------------------------------------------- recipe: add a metric


@pytest.fixture
def toy_metric():
    toy = Metric("toy_l1", "L1 distance", False, (DISTRIBUTION,),
                 per_doc=lambda v: float(np.abs(v.model / v.model.sum() - v.human).sum()),
                 description="a toy metric: L1 distance between the distributions")
    register(toy)
    yield toy
    unregister("toy_l1")


def test_recipe_a_new_metric_is_its_object_and_its_yaml_line(toy_metric):
    probs = np.array([0.2, 0.2, 0.4, 0.1])
    values = doc_values(_dist_doc(), probs, with_bounds=False)
    assert values["toy_l1"] == pytest.approx(abs(0.25 - 0.2) + abs(0.25 - 0.3) + abs(0.5 - 0.5))
    assert toy_metric in of_kind(DISTRIBUTION)
    assert toy_metric.yaml_entry() == {"metric": "toy_l1", "aggregation": "mean", "higher_is_better": False}
    assert resolve("toy_l1")[0] is toy_metric


def test_recipe_toy_metric_runs_in_lm_eval(toy_metric, tmp_path, monkeypatch, shared_data):
    """The toy metric's YAML line in a task that includes the shared template: lm-eval publishes it."""
    import yaml
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from lm_eval.api.model import LM

    from opinbench.paths import tasks_dir

    class LetterLM(LM):
        """Loglikelihoods that fall with the letter's position: a fixed, model-free distribution."""

        def loglikelihood(self, requests):
            return [(-1.0 - 0.3 * req.doc["letters"].index(req.args[1].strip()), False) for req in requests]

        def generate_until(self, requests):  # pragma: no cover - not used
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):  # pragma: no cover - not used
            raise NotImplementedError

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    folder = tmp_path / "toy"
    folder.mkdir()
    # the recipe's one YAML line, appended to (a copy of) the distribution tasks' shared metric_list
    template = (tasks_dir() / "_templates" / "_wd_yaml").read_text()
    assert template.rstrip().splitlines()[-1].startswith("    ")  # metric_list is the template's last key
    line = "".join(f"  {x}\n" for x in yaml.safe_dump([toy_metric.yaml_entry()], sort_keys=False).splitlines())
    (folder / "_wd_toy_yaml").write_text(template.rstrip() + "\n" + line)
    task = (tasks_dir() / "opinionqa" / "opinionqa_wd.yaml").read_text()
    task = task.replace("include: ../_templates/_wd_yaml", "include: _wd_toy_yaml").replace(
        "task: opinionqa_wd\n", "task: opinionqa_wd_toy\n")
    (folder / "opinionqa_wd_toy.yaml").write_text(task)
    tm = TaskManager(include_path=str(folder), include_defaults=False)
    out = simple_evaluate(model=LetterLM(), tasks=["opinionqa_wd_toy"], task_manager=tm, limit=3,
                          bootstrap_iters=0, log_samples=True)
    res = out["results"]["opinionqa_wd_toy"]
    assert math.isfinite(res["toy_l1,none"]) and math.isfinite(res["wd,none"])
    assert res["toy_l1,none"] == pytest.approx(np.mean([s["toy_l1"] for s in out["samples"]["opinionqa_wd_toy"]]))


# --------------------------------------------------------------------------- leaderboard definitions read the objects


def _definition(metric_row):
    import yaml

    from opinbench.leaderboard.definition import definition_path

    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["metrics"] = [metric_row]
    return raw


@pytest.mark.parametrize("row, message", [
    ({"metric": "wdd"}, "unknown metric 'wdd'"),
    ({"metric": "wd", "direction": "higher"}, "direction 'higher', but wd is lower is better"),
    ({"metric": "macro_f1", "task": None, "judge": "faithfulness"}, "judge 'faithfulness' publishes cot_faithfulness"),
    ({"metric": "cot_faithfulness"}, "is a judge's metric"),
])
def test_a_definition_naming_a_wrong_metric_is_refused_when_it_loads(row, message):
    from opinbench.leaderboard.definition import parse_definition

    base = {"id": "m", "group": "distribution", "task": "opinionqa_wd", "floor": {"value": 1.0}, "ceiling": {"value": 0.0}}
    entry = {k: v for k, v in (base | row).items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        parse_definition(_definition(entry), "x.yaml")


def test_a_definition_takes_direction_and_display_from_the_object():
    from opinbench.leaderboard.definition import parse_definition

    row = {"id": "m", "group": "distribution", "task": "opinionqa_wd", "metric": "kl", "floor": {"value": 1.0},
           "ceiling": {"value": 0.0}}
    m = parse_definition(_definition(row), "x.yaml").metrics[0]
    assert (m.direction, m.display) == ("lower", metric("kl").display)
