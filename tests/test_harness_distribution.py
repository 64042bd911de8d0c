"""The distribution tasks end to end in lm-eval, on tiny random models built offline.

Checks that matter for correct numbers:
* the letter probabilities lm-eval produces equal a direct computation from the
  model's logits, for base prompts and chat templates, with a tokenizer that
  merges the space into the letter and one that does not;
* one forward pass per document;
* the metrics in the results JSON equal the metric functions applied to the
  logged per-document probabilities.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from opinbench.harness import distribution as H
from opinbench.metrics import distribution as M
from opinbench.metrics.distribution_tasks import gap_closed
from opinbench.metrics.letters import share_nonfinite
from opinbench.metrics.letters import letter_probabilities
from opinbench.paths import tasks_dir
from tests.helpers.opinionqa_files import write_tiny_release
from tests.helpers.tiny_models import build_model

torch = pytest.importorskip("torch")


# --------------------------------------------------------------------------- process_results alone


def doc(**over):
    d = {
        "letters": ["A", "B", "C", "D"],
        "n_ordinal": 3,
        "ordinal": [1.0, 2.0, 1.5],
        "distribution": [0.2, 0.3, 0.5],
        "attribute": "INCOME",
        "group": "$100,000 or more",
        "id": "opinionqa:Q:INCOME:$100,000 or more",
        "n": 40.0,
        "seed": 0,
        "mass_threshold": 0.1,
    }
    return d | over


def test_process_results_sums_both_spellings_and_renormalises_over_ordinal_letters():
    # P(" A")=.1 P(" B")=.1 P(" C")=.2 P(" D")=.3 ; P("A")=.1 P("B")=.1 P("C")=0 P("D")=.05
    spaced = [0.1, 0.1, 0.2, 0.3]
    bare = [0.1, 0.1, 1e-300, 0.05]
    out = H.process_results(doc(), [(math.log(p), False) for p in spaced + bare])
    model = np.array([0.2, 0.2, 0.2])  # letters A..C; D ("Refused") is outside the distribution
    assert out["letter_mass"] == pytest.approx(0.95)
    assert out["wd"] == pytest.approx(M.wasserstein(model, [0.2, 0.3, 0.5], [1, 2, 1.5])[0])
    assert out["kl"] == pytest.approx(M.kl_divergence([0.2, 0.3, 0.5], model, [1, 2, 1.5])[0])
    assert out["low_letter_mass"] == 0.0
    # per-group keys: lm-eval splits metric keys on commas, so they are dropped
    assert out["wd|INCOME=$100000 or more"] == out["wd"] == out["wd|INCOME"]
    uniform = M.uniform_wd([0.2, 0.3, 0.5], [1, 2, 1.5])[0]
    human = M.human_bootstrap_wd([0.2, 0.3, 0.5], [40], [1, 2, 1.5], n_resamples=1000, keys=[doc()["id"]])[0]
    assert out["wd_uniform"] == pytest.approx(uniform)
    assert out["wd_human"] == pytest.approx(human) and 0 < human < uniform
    assert out["wd_gap_closed"] == (out["wd"], out["wd_uniform"], out["wd_human"])


def test_low_mass_is_flagged_and_missing_human_bound_is_omitted():
    out = H.process_results(doc(n=None), [(math.log(1e-4), False)] * 8)
    assert out["low_letter_mass"] == 1.0
    assert "wd_human" not in out and "wd_gap_closed" not in out


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-nan")])
def test_nonfinite_loglikelihood_is_counted_never_scored(bad, caplog):
    """A NaN used to score as a perfect document (wd 0.0, low_letter_mass 0)."""
    lls = [(math.log(0.1), False)] * 8
    lls[1] = (bad, False)
    out = H.process_results(doc(), lls)
    assert out == {"nonfinite": 1.0}
    good = H.process_results(doc(), [(math.log(0.1), False)] * 8)
    assert good["nonfinite"] == 0.0 and math.isfinite(good["wd"])
    with caplog.at_level("WARNING", logger="opinbench.harness"):
        assert share_nonfinite([out["nonfinite"], good["nonfinite"]]) == 0.5
    assert "1 of 2 documents got a NaN or infinite loglikelihood" in caplog.text


def test_gap_closed_aggregation():
    assert gap_closed([(0.1, 0.2, 0.0), (0.1, 0.2, 0.0)]) == pytest.approx(0.5)


# --------------------------------------------------------------------------- lm-eval end to end



@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("release"), 6)


@pytest.fixture(scope="module", params=["merged", "split"])
def tiny_model(request, tmp_path_factory) -> Path:
    return build_model(request.param, tmp_path_factory.mktemp(f"model-{request.param}"))


def run_lm_eval(model_dir: Path, release: Path, *, chat: bool, task: str = "opinionqa_wd", limit: int | None = None):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_dir), batch_size=4, device="cpu", dtype="float32")
    rows = []
    handle = lm.model.register_forward_pre_hook(
        lambda _m, args, kwargs: rows.append((args[0] if args else kwargs["input_ids"]).shape[0]), with_kwargs=True
    )
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"source": str(release)})
    try:
        out = simple_evaluate(model=lm, tasks=[task], task_manager=tm, apply_chat_template=chat, log_samples=True, limit=limit)
    finally:
        handle.remove()
    return lm, out, sum(rows)


def reference_letter_probs(lm, context: str, letters: list[str]) -> np.ndarray:
    """P(letter) with an optional single leading space, straight from the model's logits."""
    tok, model = lm.tokenizer, lm.model

    def logprob(cont: str) -> float:
        ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
        ids = tok(context + cont, add_special_tokens=False)["input_ids"]
        assert ids[: len(ctx_ids)] == ctx_ids, "context tokenises differently with the letter appended"
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        return float(sum(logits[i - 1, ids[i]] for i in range(len(ctx_ids), len(ids))))

    return np.array([math.exp(logprob(" " + L)) + math.exp(logprob(L)) for L in letters])


@pytest.mark.parametrize("chat", [False, True], ids=["base", "chat"])
def test_letter_probabilities_match_direct_computation(tiny_model, tiny_release, chat):
    lm, out, forwarded = run_lm_eval(tiny_model, tiny_release, chat=chat)
    samples = out["samples"]["opinionqa_wd"]
    n_docs = len(samples)
    assert n_docs == 24  # 6 questions x 4 groups, Refused groups excluded
    # One forward pass per document, whatever the number of letter choices, when " A" is one
    # token (SmolLM2, Gemma, Llama...). A tokenizer that splits the space off needs a second
    # pass for the context + " " prefix: lm-eval's cache groups by context + continuation[:-1].
    assert forwarded == (n_docs if tiny_model.name.startswith("model-merged") else 2 * n_docs)
    for s in samples[:6]:
        context = s["arguments"][0][0]
        letters = s["doc"]["letters"]
        lls = [float(r[0][0]) for r in s["resps"]]
        got = letter_probabilities(lls, len(letters))
        if chat:
            # lm-eval moves the template's trailing newline into the continuation, which
            # multiplies every letter by P(newline): the renormalised distribution is unchanged.
            assert context.endswith("\n")
            ref = reference_letter_probs(lm, context, letters)
            np.testing.assert_allclose(got / got.sum(), ref / ref.sum(), rtol=1e-4)
        else:
            assert context.endswith("Answer:")
            ref = reference_letter_probs(lm, context, letters)
            np.testing.assert_allclose(got, ref, rtol=1e-4)
        assert s["letter_mass"] == pytest.approx(got.sum(), rel=1e-9)


def test_results_json_metrics_equal_metric_functions(tiny_model, tiny_release):
    _, out, _ = run_lm_eval(tiny_model, tiny_release, chat=False)
    res = out["results"]["opinionqa_wd"]
    samples = out["samples"]["opinionqa_wd"]
    model_p, human_p, ordinal = [], [], []
    for s in samples:
        lls = [float(r[0][0]) for r in s["resps"]]
        p = letter_probabilities(lls, len(s["doc"]["letters"]))[: s["doc"]["n_ordinal"]]
        model_p.append(p)
        human_p.append(s["doc"]["distribution"])
        ordinal.append(s["doc"]["ordinal"])
    wd = M.wasserstein(np.array(model_p), np.array(human_p), np.array(ordinal))
    assert res["wd,none"] == pytest.approx(wd.mean())
    # the stderr is clustered by question (CR1), computed here by hand from the logged samples
    questions = [s["doc"]["question_key"] for s in samples]
    resid = wd - wd.mean()
    sums = np.array([resid[[q == k for q in questions]].sum() for k in sorted(set(questions))])
    g = len(sums)
    assert g >= 2
    assert res["wd_stderr,none"] == pytest.approx(math.sqrt(g / (g - 1) * np.sum(sums**2)) / len(wd))
    assert not [k for k in res if "_stderr_stderr" in k]
    assert res["wd_uniform,none"] == pytest.approx(M.uniform_wd(np.array(human_p), np.array(ordinal)).mean())
    for key in ("kl,none", "onehot,none", "letter_mass,none", "wd_human,none", "wd_gap_closed,none", "low_letter_mass,none"):
        assert key in res
    groups = {s["doc"]["group"] for s in samples}
    for g in groups:
        attr = "SEX" if g in ("Male", "Female") else "POLPARTY"
        mask = [s["doc"]["group"] == g for s in samples]
        assert res[f"wd|{attr}={g},none"] == pytest.approx(wd[mask].mean())
    assert res["wd|SEX,none"] == pytest.approx(wd[[s["doc"]["attribute"] == "SEX" for s in samples]].mean())
    json.dumps(out["results"])  # serialisable as lm-eval writes it


def test_every_task_yaml_loads(tiny_release):
    """lm-eval skips a YAML that fails to parse with only a debug log: make sure none does."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    names = {p.stem for p in tasks_dir().rglob("*.yaml")}
    assert names <= set(tm.all_tasks), names - set(tm.all_tasks)
    wd_tasks = [n for n in names if n.startswith("opinionqa_wd")]
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"source": str(tiny_release)})
    loaded = tm.load(wd_tasks)["tasks"]
    for name in wd_tasks:
        docs = list(loaded[name].eval_docs)
        assert docs, name
        assert H.doc_to_text(docs[0]).endswith("Answer:")


def test_question_split_keeps_whole_questions_apart(tiny_release):
    test = H.load_dataset(source=str(tiny_release), split="test", test_fraction=0.5)["test"]
    train = H.load_dataset(source=str(tiny_release), split="train", test_fraction=0.5)["test"]
    assert set(test["question_key"]).isdisjoint(train["question_key"])
    assert len(set(test["question_key"])) == 3 and len(test) + len(train) == 24
    with pytest.raises(Exception, match="split must be"):
        H.load_dataset(source=str(tiny_release), split="dev")
    with pytest.raises(Exception, match="steering must be one of"):
        H.load_dataset(source=str(tiny_release), steering="persona")


def test_breakdown_warnings_are_silenced_only_for_our_tasks():
    import logging

    from opinbench.harness.quiet_logs import BreakdownLogFilter

    def rec(msg):
        return logging.LogRecord("lm_eval.evaluator_utils", logging.WARNING, "", 0, msg, None, None)

    f = BreakdownLogFilter()
    assert not f.filter(rec("[opinionqa_wd] No aggregation function defined for metric wd|SEX. Using mean."))
    assert not f.filter(rec("[wom_cot] Metrics were not scored on the same number of documents (...)"))
    assert f.filter(rec("[hellaswag] No aggregation function defined for metric x. Using mean."))
    assert f.filter(rec("[opinionqa_wd] something else went wrong"))


def test_questions_without_a_scale_are_counted_as_the_data_sets_not_the_runs(tmp_path, caplog):
    # "68 pairs of 4 questions ... were left out" read as if 68 of a 340-document run were dropped:
    # the warning says these are the data set's, and how many documents the task has.
    import dataclasses

    from opinbench.data.opinionqa import load_opinionqa

    recs = load_opinionqa(write_tiny_release(tmp_path / "r", 3))
    flat_key = recs[0].question_key
    recs = [dataclasses.replace(r, ordinal=(1.0,) * len(r.ordinal)) if r.question_key == flat_key else r
            for r in recs]
    flat = sum(r.question_key == flat_key for r in recs)
    with caplog.at_level("WARNING", logger="opinbench.harness"):
        docs = H.build_docs(recs)
    assert len(docs) == len(recs) - flat
    (msg,) = [r.getMessage() for r in caplog.records if "no scale" in r.getMessage()]
    assert msg == (f"1 of the data set's 3 questions have no scale (all ordinal values equal), so their {flat} "
                   f"(question, group) pairs are not documents of this task; it has {len(docs)} documents "
                   "before any --limit")
