"""``opinionqa_wd_default``: one unsteered document per question carrying every group,
scored against each group with the ``*_wd`` tasks' own per-document scoring."""

from __future__ import annotations

import math

import pytest

from opinbench.data.records import DistributionRecord
from opinbench.errors import ConfigError
from opinbench.harness import default_model, distribution
from opinbench.scoring.distribution import doc_values
from opinbench.metrics.letters import probabilities


def rec(q, attribute, group, dist, n_non=None):
    return DistributionRecord(
        id=f"opinionqa:{q}:{attribute}:{group}", dataset="opinionqa", question_key=q, question=f"Question {q}?",
        options=("Yes", "No", "Refused"), ordinal=(1.0, 2.0), attribute=attribute, group=group,
        distribution=dist, n=10.0, n_nonsubstantive=n_non,
    )


RECORDS = [rec(q, a, g, d, 2.0) for q in ("Q1", "Q2", "Q3")
           for a, g, d in (("SEX", "Male", (1.0, 0.0)), ("SEX", "Female", (0.25, 0.75)), ("OVERALL", "Overall", (0.5, 0.5)))]


def test_one_document_per_question_in_the_order_of_the_pair_tasks():
    docs = distribution.question_docs(RECORDS)
    pairs = distribution.build_docs([r for r in RECORDS if r.attribute != "OVERALL"])
    assert [d["question_key"] for d in docs] == list(dict.fromkeys(p["question_key"] for p in pairs))
    assert [(g["group"], g["n_nonsubstantive"]) for g in docs[0]["groups"]] == [("Male", 2.0), ("Female", 2.0)]
    # the document is the question's overall-population document, as in opinionqa_wd_unsteered
    overall = [p for p in distribution.build_docs(RECORDS, steering="unsteered") if p["attribute"] == "OVERALL"]
    assert {k: v for k, v in docs[0].items() if k != "groups"} == overall[0]
    assert distribution.doc_to_text(docs[0]).endswith("Answer:")
    # without an overall record: the groups' mean distribution, no count
    alone = distribution.question_docs([r for r in RECORDS if r.attribute != "OVERALL"])
    assert alone[0]["distribution"] == pytest.approx([0.625, 0.375]) and alone[0]["n"] is None
    assert len(alone[0]["groups"]) == 2


def test_process_results_scores_every_group_from_one_forward_pass():
    doc = distribution.question_docs(RECORDS)[0]
    # letters: A 0.5, B 0.3, C (Refused) 0.2 -> ordinal part (5/8, 3/8)
    lls = [(math.log(p), False) for p in (0.5, 0.3, 0.2)] + [(math.log(1e-12), False)] * 3
    out = default_model.process_results(doc, lls)
    assert out["wd|SEX=Male"] == pytest.approx(3 / 8)  # |5/8 - 1| on a range of 1
    assert out["wd|SEX=Female"] == pytest.approx(3 / 8)  # |5/8 - 1/4|
    assert out["wd|SEX"] == out["wd"] == pytest.approx(3 / 8)
    assert out["refusal_mass"] == pytest.approx(0.2)
    for g in doc["groups"]:  # the same value the QA/BIO/PORTRAY tasks' scoring gives the pair
        pair = default_model.group_doc(doc, g)
        assert out[f"wd|SEX={g['group']}"] == doc_values(pair, probabilities(pair, lls))["wd"]


def test_split_keeps_the_questions_of_the_steered_tasks_split(tmp_path):
    """The steering gain compares like with like: on ``split: test`` both tasks hold the same questions."""
    from tests.helpers.opinionqa_files import write_tiny_release

    release = write_tiny_release(tmp_path / "release", 10)
    kw = {"source": str(release), "split": "test", "groups": "all"}
    steered = {d["question_key"] for d in distribution.load_dataset(**kw)["test"]}
    per_question = {"steering": "unsteered", "documents": "questions"}
    unsteered = {d["question_key"] for d in distribution.load_dataset(**kw, **per_question)["test"]}
    every = {d["question_key"] for d in distribution.load_dataset(source=str(release), groups="all", **per_question)["test"]}
    assert unsteered == steered and 0 < len(unsteered) < len(every) == 10


def test_question_documents_need_the_unsteered_prompt(tmp_path):
    from tests.helpers.opinionqa_files import write_tiny_release

    release = write_tiny_release(tmp_path / "release", 3)
    with pytest.raises(ConfigError, match="steering: unsteered"):
        distribution.load_dataset(source=str(release), groups="all", documents="questions")
    with pytest.raises(ConfigError, match="documents must be pairs or questions"):
        distribution.load_dataset(source=str(release), groups="all", documents="question")
