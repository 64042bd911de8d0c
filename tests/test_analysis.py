"""The issue-9 analyses against examples computed by hand (2-3 groups, 2 questions).

WD on ordinal values (1, 2, 3) is divided by the range 2; on (1, 2) by 1.
Question Q1 (3 ordinal options, no "Refused"), Q2 (Yes/No + Refused):

* the unsteered model: Q1 (0, 1, 0); Q2 letters (0.5, 0.25, 0.25) -> ordinal part (2/3, 1/3),
  refusal mass 0.25;
* humans: A = Q1 (1, 0, 0), Q2 (1, 0); B = Q1 (0, 1, 0), Q2 (0, 1); C = Q1 (0, 0, 1), Q2 (2/3, 1/3).

WD(model, A) = 1/2 on Q1 (all mass moves one step of two), 1/3 on Q2 -> mean 5/12;
B: 0 and 2/3 -> 1/3; C: 1/2 and 0 -> 1/4.
"""

from __future__ import annotations

import pytest

from opinbench.analysis import (
    disagreement,
    improvement,
    refusal,
    representativeness,
    steerability,
    topics,
)
from opinbench.analysis.model_answers import ModelAnswer, from_row, from_rows
from opinbench.data.topics import load_topic_mapping, topic_key

A, B, C = ("X", "a"), ("X", "b"), ("Y", "c")
HUMAN = {
    "Q1": {A: (1, 0, 0), B: (0, 1, 0), C: (0, 0, 1)},
    "Q2": {A: (1, 0), B: (0, 1), C: (2 / 3, 1 / 3)},
}
SHAPE = {"Q1": (("lo", "mid", "hi"), (1.0, 2.0, 3.0)), "Q2": (("Yes", "No", "Refused"), (1.0, 2.0))}


def ans(q, g, model, *, steering="unsteered", steered_to=None, n=30.0, n_non=10.0):
    options, ordinal = SHAPE[q]
    return ModelAnswer(
        id=f"t:{q}:{g[0]}:{g[1]}", dataset="t", question_key=q, question=f"question {q}", options=options,
        ordinal=ordinal, attribute=g[0], group=g[1], distribution=tuple(float(x) for x in HUMAN[q][g]), model=tuple(model),
        steering=steering, steered_to=steered_to, n=n, n_nonsubstantive=n_non,
    )


UNSTEERED_MODEL = {"Q1": (0, 1, 0), "Q2": (0.5, 0.25, 0.25)}
DEFAULT = [ans(q, g, UNSTEERED_MODEL[q]) for q in ("Q1", "Q2") for g in (A, B, C)]


def test_wd_of_the_example():
    wd = {(a.question_key, a.attribute, a.group): a.wd for a in DEFAULT}
    assert wd[("Q1", *A)] == pytest.approx(0.5)
    assert wd[("Q2", *A)] == pytest.approx(1 / 3)
    assert wd[("Q2", *C)] == pytest.approx(0.0)


def test_representativeness_ranking_and_gap():
    r = representativeness.by_group(DEFAULT)
    assert r == pytest.approx({A: 7 / 12, B: 2 / 3, C: 3 / 4})
    ranked = representativeness.ranking(r)
    assert [g for g, _ in ranked.order] == [C, B, A]
    assert ranked.gap == pytest.approx(3 / 4 - 7 / 12)
    # per attribute: X pools A and B over both questions: 1 - (1/2 + 1/3 + 0 + 2/3) / 4
    assert representativeness.by_attribute(DEFAULT) == pytest.approx({"X": 0.625, "Y": 0.75})
    with pytest.raises(ValueError):
        representativeness.ranking({})


def test_steerability_best_each_and_gain():
    steered = {
        # steered to A: qa is right on Q1 (WD 0) and wrong on Q2 (WD 1); bio the reverse-ish (1/2, 0)
        "qa": [ans("Q1", A, (1, 0, 0), steering="qa", steered_to=A), ans("Q2", A, (0, 1, 0), steering="qa", steered_to=A)],
        "bio": [ans("Q1", A, (0, 1, 0), steering="bio", steered_to=A), ans("Q2", A, (1, 0, 0), steering="bio", steered_to=A),
                # steered to B but scored against A: not a steering of A, ignored
                ans("Q1", A, (0, 0, 1), steering="bio", steered_to=B)],
    }
    (s,) = steerability.steerability(steered, [a for a in DEFAULT if (a.attribute, a.group) == A])
    assert s.group == A and s.questions == 2
    assert s.each == pytest.approx({"qa": 1 - 0.5, "bio": 1 - 0.25})
    assert s.best == pytest.approx(1.0)  # min(0, 1/2) and min(1, 0)
    assert s.unsteered == pytest.approx(7 / 12)
    assert s.gain == pytest.approx(5 / 12)
    (no_base,) = steerability.steerability(steered)
    assert no_base.unsteered is None and no_base.gain is None


def test_topics_per_topic_wd_and_consistency():
    topic_of = {"Q1": ["t1"], "Q2": ["t1", "t2"]}
    extra = ans("Q1", A, (1, 0, 0))
    extra = ModelAnswer(**{**extra.__dict__, "question_key": "Q3"})  # no topic
    t = topics.per_topic_wd(DEFAULT + [extra], lambda a: topic_of.get(a.question_key, []))
    assert t.unmatched == ("Q3",)
    assert t.wd["t1"] == pytest.approx({A: 5 / 12, B: 1 / 3, C: 1 / 4})
    assert t.wd["t2"] == pytest.approx({A: 1 / 3, B: 2 / 3, C: 0.0})
    every = topics.consistency(t)
    assert every.closest_overall == C and every.share == 1.0
    x_only = topics.consistency(t, [A, B])
    # overall B (1/3 < 5/12) is closest, t1 agrees, t2 picks A
    assert x_only.closest_overall == B and x_only.closest == {"t1": B, "t2": A} and x_only.share == 0.5
    assert topics.consistency(t, [("Z", "z")]) is None


def test_topic_key_and_mapping(tmp_path):
    assert topic_key("Q?", ["Yes", "No", "Refused"]) == "Q? [Yes/No/Refused]"
    f = tmp_path / "topic_mapping.json"
    f.write_text('{"Q? [Yes/No/Refused]": {"cg": ["economy"], "fg": ["jobs"]}}', encoding="utf-8")
    assert load_topic_mapping(f)["Q? [Yes/No/Refused]"].coarse == ("economy",)
    f.write_text('{"Q?": ["economy"]}', encoding="utf-8")
    from opinbench.errors import DataError

    with pytest.raises(DataError):
        load_topic_mapping(f)


def test_refusal_mass_beside_human_share():
    rows = refusal.refusal_by_group(DEFAULT + [ans("Q2", A, (0.5, 0.25, 0.25), n=None, n_non=None)])
    # Q1 offers no non-substantive option and the unknown-count answer is left out: Q2 alone
    assert [(r.group, r.questions) for r in rows] == [(A, 1), (B, 1), (C, 1)]
    assert rows[0].model == pytest.approx(0.25)
    assert rows[0].human == pytest.approx(10 / 40)


def test_disagreement_matrices():
    h = disagreement.human_matrix(DEFAULT)
    i = {g: k for k, g in enumerate(h.groups)}
    assert h.values[i[A], i[B]] == pytest.approx((0.5 + 1) / 2)
    assert h.values[i[A], i[C]] == pytest.approx((1 + 1 / 3) / 2)
    assert h.values[i[B], i[C]] == pytest.approx((0.5 + 2 / 3) / 2)
    assert h.values[i[C], i[B]] == h.values[i[B], i[C]] and h.values[i[A], i[A]] == 0
    steered = [ans("Q1", A, (1, 0, 0), steering="qa", steered_to=A), ans("Q1", B, (0, 0, 1), steering="qa", steered_to=B)]
    s = disagreement.steered_matrix(steered)
    assert s.groups == [A, B]
    # rows: humans of A, B; columns: model steered to A, B
    assert s.values.ravel().tolist() == pytest.approx([0.0, 1.0, 0.5, 0.5])


def test_relative_improvement():
    base = [ans("Q1", A, (0, 1, 0)), ans("Q1", B, (0, 1, 0))]
    tuned = [ans("Q1", A, (0.5, 0.5, 0)), ans("Q2", B, (0, 1, 0))]
    (imp,) = improvement.relative_improvement(base, tuned)  # B shares no question
    assert imp.group == A and imp.base_wd == pytest.approx(0.5) and imp.tuned_wd == pytest.approx(0.25)
    assert imp.relative == pytest.approx(0.5)


def test_from_row_reads_both_document_shapes():
    import math

    lls = [math.log(0.3), math.log(0.1), math.log(0.1)] + [math.log(0.1), math.log(0.1), math.log(0.1)]
    base = {"question_key": "Q2", "question": "q", "options": ["Yes", "No", "Refused"], "ordinal": [1, 2],
            "letters": ["A", "B", "C"], "n_ordinal": 2}
    pair = {**base, "id": "x", "attribute": "X", "group": "a", "distribution": [1, 0], "n": 30, "steering": "bio"}
    (a,) = from_row({"doc": pair, "filtered_resps": [[str(v), "False"] for v in lls]})
    # letters: A 0.4, B 0.2, C 0.2 -> normalised (0.5, 0.25, 0.25)
    assert a.model == pytest.approx((0.5, 0.25, 0.25)) and a.steered_to == ("X", "a") and a.wd == pytest.approx(1 / 3)
    question = {**base, "groups": [{"attribute": "X", "group": "a", "distribution": [1, 0], "n": 30, "n_nonsubstantive": 10},
                                   {"attribute": "Y", "group": "c", "distribution": [2 / 3, 1 / 3], "n": 3, "n_nonsubstantive": 0}]}
    row = {"doc_id": 0, "doc": question, "filtered_resps": [[v, False] for v in lls]}
    got = from_rows([row, row])  # a second filter's row of the same document is not counted twice
    assert [(g.group, g.steering, g.steered_to) for g in got] == [("a", "unsteered", None), ("c", "unsteered", None)]
    assert [g.wd for g in got] == pytest.approx([1 / 3, 0.0])


def test_analyses_import_neither_lm_eval_nor_matplotlib():
    import subprocess
    import sys

    code = ("import sys\nimport opinbench.analysis.disagreement, opinbench.analysis.improvement, "
            "opinbench.analysis.refusal, opinbench.analysis.representativeness, opinbench.analysis.steerability, "
            "opinbench.analysis.topics, opinbench.data.topics\n"
            "leaked = sorted(m for m in sys.modules if m.startswith(('lm_eval', 'matplotlib', 'opinbench.harness')))\n"
            "assert not leaked, leaked\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
