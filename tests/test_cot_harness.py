"""The answer tasks end to end through lm-eval, offline: a fake model stands in for a real one.

The fake answers from the document it is given (gold, a fixed wrong option,
an unparsable reply, or a seeded random option), so every metric has a value
known in advance. Also: every task YAML loads, documents keep the sample
contract, selection by subject/group works, and random/majority baselines land
where theory says.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from opinbench.answers import extract_doc_answer
from opinbench.harness import answer_docs, cot, direct
from opinbench.metrics import answer_tasks as scoring
from opinbench.metrics.answer_tasks import baseline_answers
from opinbench.paths import tasks_dir

COT_TASKS = ["vk_cot", "opinionqa_cot", "wom_cot", "anes_cot"]
DIRECT_TASKS = ["vk_direct", "opinionqa_direct", "wom_direct", "anes_direct"]
ALL_TASKS = [
    f"{d}_{f}" for d in ("vk", "opinionqa", "wom", "smartvote", "anes") for f in ("cot", "direct", "cot_sampled")
]
CONTRACT = ("id", "dataset", "family", "question", "options", "letters", "subject", "subject_group",
            "answer", "context", "split")


# --------------------------------------------------------------------------- fake model


def fake_reply(doc: dict, policy: str, salt: int = 0) -> str:
    """What the fake model writes for ``doc``; ``policy`` picks right, wrong, invalid or random."""
    options, letters = doc["options"], doc["letters"]
    gold = options.index(doc["answer"])
    if policy == "gold":
        i = gold
    elif policy == "wrong":
        i = (gold + 1) % len(options)
    elif policy == "invalid":
        return "I cannot decide."
    elif policy == "random":
        i = random.Random(f"{doc['id']}:{salt}").randrange(len(options))
    else:
        raise ValueError(policy)
    if doc["family"] == "vk" or doc["dataset"] == "opinionqa":
        return f"Let me think about it.\nAnswer: {letters[i]}"
    return f"<reasoning>Thinking.</reasoning><answer>{options[i]}</answer>"


def make_fake_lm(policy: str):
    from lm_eval.api.model import LM

    class FakeLM(LM):
        """Replies from the document; loglikelihoods favour the letter the policy picks."""

        def __init__(self) -> None:
            super().__init__()
            self.calls = Counter()

        def generate_until(self, requests):
            out = []
            for n, req in enumerate(requests):
                self.calls["generate_until"] += 1
                out.append(fake_reply(req.doc, policy, salt=n))
            return out

        def loglikelihood(self, requests):
            out = []
            for req in requests:
                self.calls["loglikelihood"] += 1
                doc, cont = req.doc, req.args[1]
                reply = fake_reply(doc, "gold" if policy == "invalid" else policy)
                letter = reply.rsplit("Answer: ", 1)[-1] if "Answer: " in reply else doc["letters"][
                    doc["options"].index(reply.split("<answer>")[1].split("</answer>")[0])
                ]
                out.append((-0.1 if cont.strip() == letter else -5.0, False))
            return out

        def loglikelihood_rolling(self, requests):  # pragma: no cover - not used
            raise NotImplementedError

    return FakeLM()


def run_tasks(tasks, policy, *, limit=12, metadata=None):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)
    return simple_evaluate(
        model=make_fake_lm(policy), tasks=list(tasks), task_manager=tm, limit=limit, log_samples=True,
        bootstrap_iters=1000, metadata=metadata,
    )


@pytest.fixture(autouse=True)
def _data_env(monkeypatch, request):
    if "shared_data" in request.fixturenames:
        monkeypatch.setenv("OPINBENCH_DATA_DIR", str(request.getfixturevalue("shared_data")))


# --------------------------------------------------------------------------- task definitions


def test_every_task_yaml_loads():
    """A YAML that fails to parse silently disappears from lm-eval: check that all are indexed."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    missing = [t for t in ALL_TASKS if t not in tm.all_tasks]
    assert not missing


def test_yaml_metrics_have_hooks():
    """Every `!function` named in a task YAML or shared template resolves as lm-eval resolves it."""
    import re

    from lm_eval.tasks._yaml_loader import _import_func_in_yml

    files = [p for p in tasks_dir().rglob("*yaml") if p.is_file()]
    assert any(p.parent.name == "_templates" for p in files)
    for yml in files:
        for name in re.findall(r"!function ([\w.]+)", yml.read_text()):
            assert callable(_import_func_in_yml(name, yml.parent)), f"{yml.name}: {name}"


# --------------------------------------------------------------------------- documents


@pytest.mark.parametrize("data", ["vk", "opinionqa", "wom", "anes"])
def test_documents_keep_the_sample_contract(shared_data, data):
    docs = answer_docs.load_dataset(data=data, format="cot")["test"]
    assert len(docs) > 100
    for d in docs.select(range(50)):
        for key in CONTRACT:
            assert key in d, key
        assert d["answer"] in d["options"]
        assert d["letters"] == list("ABCDEFGHIJ"[: len(d["options"])])
        assert d["split"] == "test"
        assert d["family"] == ("vk" if data == "vk" else "survey")
        assert d["gold_label"] in d["labels"]
        assert d["prompt"] and d["prompt"] == d["prompt"].strip()
        if data in ("wom", "anes"):
            assert d["system"] and d["description"] == d["system"] + "\n"
            assert d["individual"]
            assert d["subject"] not in d["system"]


def test_opinionqa_gold_is_the_modal_ordinal_option(shared_data):
    from opinbench.data import registry

    dist = registry.load("opinionqa", groups="standard")
    from opinbench.data.opinionqa import opinionqa_answer_records

    pairs = opinionqa_answer_records(dist)
    assert len(pairs) > 0.99 * len(dist)
    for rec, d in pairs[:500]:
        i = int(np.argmax(d.distribution))
        assert rec.answer == d.options[i]
        assert rec.options == d.options  # "Refused" and other options stay
        assert rec.subject == f"{d.attribute}: {d.group}"
    by_subject = Counter((rec.subject, rec.split) for rec, _ in pairs)
    for subject in {s for s, _ in by_subject}:
        n_test, n_train = by_subject[(subject, "test")], by_subject[(subject, "train")]
        assert abs(n_test / (n_test + n_train) - 0.3) < 0.02


def test_opinionqa_ties_are_left_out():
    from opinbench.data.opinionqa import modal_option, opinionqa_answer_records
    from opinbench.data.records import DistributionRecord

    rec = DistributionRecord("x", "opinionqa", "Q", "q?", ("A", "B", "Refused"), (1.0, 2.0), "SEX", "Male", (0.5, 0.5), 10.0)
    assert modal_option(rec) is None
    assert opinionqa_answer_records([rec]) == []


def test_select_by_subject_and_group(shared_data):
    spd = answer_docs.load_dataset(data="wom", format="cot", subject="SPD")["test"]
    assert set(spd["subject"]) == {"SPD"}
    assert len(set(spd["individual"])) > 5  # one SPD per election
    one = answer_docs.load_dataset(data="wom", format="cot", subject="2021/deutschland:SPD")["test"]
    assert set(one["individual"]) == {"2021/deutschland:SPD"}
    left = answer_docs.load_dataset(data="anes", format="direct", subject_group="Left")["test"]
    assert set(left["subject_group"]) == {"Left"}
    train = answer_docs.load_dataset(data="anes", format="cot", split="train", releases="pilot_2022")["test"]
    assert set(train["split"]) == {"train"} and all(i.startswith("pilot_2022:") for i in train["individual"])
    from opinbench.errors import ConfigError

    with pytest.raises(ConfigError, match="matches no record"):
        answer_docs.load_dataset(data="wom", format="cot", subject="No Such Party")
    with pytest.raises(ConfigError, match="unknown split"):
        answer_docs.load_dataset(data="vk", format="cot", split="dev")


def test_history_shows_only_the_individuals_train_answers(shared_data):
    docs = answer_docs.load_dataset(data="wom", format="cot", elections="2021/deutschland", history=3)["test"]
    from opinbench.data import registry

    recs = registry.load("wom", elections="2021/deutschland")
    train_q = {(r.meta["individual"], r.question) for r in recs if r.split == "train"}
    d = docs[0]
    shown = [ln[2:].rsplit(" -> ", 1)[0] for ln in d["prompt"].splitlines() if ln.startswith("- ")]
    assert len(shown) == 3
    assert all((d["individual"], q) in train_q for q in shown)
    assert d["question"] not in shown


def test_smartvote_without_answers_is_a_clear_error(shared_data):
    from opinbench.errors import ConfigError

    with pytest.raises(ConfigError, match="answers"):
        answer_docs.load_dataset(data="smartvote", format="cot")


def test_limit_takes_whole_individuals(shared_data):
    docs = answer_docs.load_dataset(data="wom", format="cot")["test"]
    inds = docs["individual"][:200]
    # each individual's documents are contiguous
    seen, last = set(), None
    for ind in inds:
        if ind != last:
            assert ind not in seen
            seen.add(ind)
            last = ind


# --------------------------------------------------------------------------- through lm-eval with a fake model


def _res(out, task, key):
    return out["results"][task][f"{key},none"]


@pytest.mark.parametrize("task", COT_TASKS + DIRECT_TASKS)
def test_oracle_scores_perfectly(shared_data, task):
    out = run_tasks([task], "gold")
    assert _res(out, task, "acc") == 1.0
    assert _res(out, task, "macro_f1") == 1.0
    assert _res(out, task, "balanced_acc") == 1.0
    # the bootstrap resamples questions (situations; questions x individuals): with one, none
    one_unit = len({x["doc"]["question_key"] for x in out["samples"][task]}) < 2
    assert _res(out, task, "macro_f1_stderr") == ("N/A" if one_unit else 0.0)
    if task.endswith("_cot"):
        assert _res(out, task, "invalid") == 0.0
    else:
        assert _res(out, task, "p_gold") > 0.9
        assert _res(out, task, "letter_mass") > 0.9
    if task.startswith(("wom", "anes")):
        assert _res(out, task, "macro_f1_individual") == 1.0
        assert _res(out, task, "macro_f1_individual_stderr") == 0.0
    samples = out["samples"][task]
    assert len(samples) == 12
    for s in samples:
        assert all(k in s["doc"] for k in CONTRACT)


@pytest.mark.parametrize("task", COT_TASKS)
def test_invalid_answers_are_counted_and_wrong(shared_data, task):
    out = run_tasks([task], "invalid")
    # the extractor's reason is logged beside each invalid answer
    row = out["samples"][task][0]
    assert row["macro_f1"]["pred"] == [None] and row["macro_f1"]["why"][0]
    assert isinstance(row["macro_f1"]["why"][0], str)
    assert _res(out, task, "invalid") == 1.0
    assert _res(out, task, "acc") == 0.0
    assert _res(out, task, "macro_f1") == 0.0


def test_wrong_answers_and_vk_keys(shared_data):
    out = run_tasks(["vk_cot"], "wrong", limit=30)
    r = out["results"]["vk_cot"]
    assert r["acc,none"] == 0.0 and r["invalid,none"] == 0.0
    assert {"recall|Supports,none", "recall|Opposes,none"} <= set(r)
    assert r["acc_binary,none"] == 0.0
    # "wrong" answers Supports -> Opposes, Opposes -> Either, Either -> Supports: every binary
    # item answered Opposes is wrong, those answered Either are dropped (Feng et al.)
    assert r["acc_binary_excl_either,none"] == 0.0
    # lm-eval writes "N/A" as the stderr of a custom aggregation; opinbench.harness.stderr puts
    # the bootstrap over situations in its place, with no separate metric (no X_stderr_stderr)
    assert isinstance(r["macro_f1_stderr,none"], float)
    assert isinstance(r["balanced_acc_stderr,none"], float)
    assert isinstance(r["acc_binary_excl_either_stderr,none"], float)
    assert not [k for k in r if "_stderr_stderr" in k]
    assert "macro_f1_stderr" not in out["samples"]["vk_cot"][0]


def test_repeats_mean_and_spread(shared_data):
    """vk_cot_sampled: 8 generations per document, all kept, each parsed and scored."""
    out = run_tasks(["vk_cot_sampled"], "random", limit=40)
    r = out["results"]["vk_cot_sampled"]
    s = out["samples"]["vk_cot_sampled"]
    assert all(len(x["resps"][0]) == 8 and len(x["filtered_resps"][0]) == 8 for x in s)
    # recompute from the logged samples
    per_repeat = np.array([[extract_doc_answer(x["doc"], g).answer == x["doc"]["answer"] for g in x["resps"][0]] for x in s])
    assert math.isclose(r["acc,none"], per_repeat.mean())
    assert math.isclose(r["acc_repeat_std,none"], per_repeat.mean(axis=0).std(ddof=1))
    assert r["macro_f1_repeat_std,none"] > 0


def test_opinionqa_breakdown_by_attribute(shared_data):
    out = run_tasks(["opinionqa_cot"], "gold", limit=40)
    keys = [k for k in out["results"]["opinionqa_cot"] if k.startswith("acc|")]
    assert keys and all(out["results"]["opinionqa_cot"][k] == 1.0 for k in keys if "stderr" not in k)


def test_breakdown_keys_do_not_warn(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        run_tasks(["wom_cot"], "random", limit=20)
    assert not [r for r in caplog.records if "No aggregation function defined" in r.getMessage()]


def test_system_message_and_chat_rendering(shared_data):
    """The country goes in a system turn; without a chat template it is followed by a newline."""
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    task = tm.load(["wom_cot"])["tasks"]["wom_cot"] if hasattr(tm, "load") else None
    if task is None:  # pragma: no cover - older lm-eval
        pytest.skip("TaskManager.load not available")
    doc = next(iter(task.test_docs()))
    plain = task.fewshot_context(doc, 0)
    assert plain.startswith("You are a German voter.\nYou are the party ")
    captured = {}

    def chat_template(messages, add_generation_prompt=True):
        captured["messages"] = messages
        return "rendered"

    task.fewshot_context(doc, 0, apply_chat_template=True, chat_template=chat_template)
    roles = [m["role"] for m in captured["messages"]]
    assert roles == ["system", "user"]
    assert captured["messages"][0]["content"].strip() == "You are a German voter."
    assert doc["subject"] in captured["messages"][1]["content"]


def test_metadata_override_selects_an_individual(shared_data):
    out = run_tasks(["wom_direct"], "gold", limit=None, metadata={"subject": "2021/deutschland:SPD"})
    s = out["samples"]["wom_direct"]
    assert {x["doc"]["individual"] for x in s} == {"2021/deutschland:SPD"}
    assert len(s) == round(0.3 * 38)


# --------------------------------------------------------------------------- baselines through the same code


def _score(docs, answers_by_doc, process):
    per_doc = [process(d, a) for d, a in zip(docs, answers_by_doc)]
    items = {k: [p[k] for p in per_doc if k in p] for k in per_doc[0]}
    return {
        "acc": float(np.mean(items["acc"])),
        "balanced_acc": scoring.balanced_acc(items["balanced_acc"]),
        "macro_f1": scoring.macro_f1(items["macro_f1"]),
        "stderr": scoring.macro_f1_stderr_boot(items["macro_f1"]),
    }


def _cot_process(doc, answer):
    return cot.process_results(doc, [[fake_reply_for(doc, answer)]])


def fake_reply_for(doc, answer):
    letter = doc["letters"][doc["options"].index(answer)]
    if doc["family"] == "vk" or doc["dataset"] == "opinionqa":
        return f"Because.\nAnswer: {letter}"
    return f"<reasoning>Because.</reasoning><answer>{answer}</answer>"


def _synthetic_docs(n, labels, shares, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.choice(len(labels), size=n, p=shares)
    return [
        {"id": f"s{i}", "dataset": "anes", "family": "survey", "options": list(labels), "letters": list("ABC"[: len(labels)]),
         "answer": labels[g], "answer_letter": "ABC"[g], "gold_label": labels[g], "labels": list(labels), "individual": f"p{i % 50}",
         "subject_group": None, "n_boot": 300, "boot_seed": 0}
        for i, g in enumerate(gold)
    ]


def test_random_baseline_on_balanced_classes_is_one_third():
    docs = _synthetic_docs(6000, ["Yes", "Neutral", "No"], [1 / 3] * 3)
    s = _score(docs, baseline_answers(docs, "random", seed=1), _cot_process)
    for key in ("acc", "balanced_acc", "macro_f1"):
        assert abs(s[key] - 1 / 3) < 3 * 0.0061 + 0.005, (key, s)  # 3 binomial SDs
    assert 0.003 < s["stderr"] < 0.012


def test_majority_baseline_theory():
    shares = [0.5, 0.3, 0.2]
    docs = _synthetic_docs(5000, ["Yes", "Neutral", "No"], shares)
    s = _score(docs, baseline_answers(docs, "majority"), _cot_process)
    p = sum(d["answer"] == "Yes" for d in docs) / len(docs)
    assert math.isclose(s["acc"], p)
    assert math.isclose(s["balanced_acc"], 1 / 3)
    assert math.isclose(s["macro_f1"], 2 * p / (1 + p) / 3)


@pytest.mark.parametrize("data", ["vk", "wom", "anes"])
def test_baselines_on_real_data_land_where_theory_says(shared_data, data):
    docs = list(answer_docs.load_dataset(data=data, format="cot", n_boot=200)["test"])
    labels = docs[0]["labels"]
    shares = np.array([sum(d["answer"] == lab for d in docs) for lab in labels]) / len(docs)
    k = len(labels)
    # random: recall 1/K for every class; precision of class j = its share
    rnd = _score(docs, baseline_answers(docs, "random", seed=3), _cot_process)
    expected_f1 = np.mean(2 * shares * (1 / k) / (shares + 1 / k))
    sd = 1 / math.sqrt(len(docs))
    assert abs(rnd["acc"] - 1 / k) < 4 * sd
    assert abs(rnd["balanced_acc"] - 1 / k) < 4 * sd * math.sqrt(k)
    assert abs(rnd["macro_f1"] - expected_f1) < 4 * sd * math.sqrt(k)
    assert abs(rnd["macro_f1"] - expected_f1) < 4 * rnd["stderr"] + 0.002
    maj = _score(docs, baseline_answers(docs, "majority"), _cot_process)
    p = shares.max()
    assert math.isclose(maj["acc"], p)
    assert math.isclose(maj["balanced_acc"], 1 / k)
    assert math.isclose(maj["macro_f1"], 2 * p / (1 + p) / k)


def test_direct_baseline_through_the_direct_hooks():
    """Uniform letter probabilities: the first letter wins every tie, i.e. a constant predictor."""
    docs = _synthetic_docs(900, ["Yes", "Neutral", "No"], [1 / 3] * 3)
    per_doc = [direct.process_results(d, [(-1.0, False)] * 6) for d in docs]
    assert all(p["p_gold"] == pytest.approx(1 / 3) for p in per_doc)
    acc = np.mean([p["acc"] for p in per_doc])
    assert math.isclose(acc, sum(d["answer"] == "Yes" for d in docs) / len(docs))
    assert math.isclose(scoring.balanced_acc([p["balanced_acc"] for p in per_doc]), 1 / 3)


# --------------------------------------------------------------------------- samples -> compare


def write_samples(out, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in out["samples"].items():
        with open(folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl", "w") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str) + "\n")
    return folder


# --------------------------------------------------------------------------- smartvote (answers written here)


@pytest.fixture
def smartvote_answers(shared_data, tmp_path):
    """Six candidates of three parties answering the real 2015 questionnaire (no public
    copy of real candidate answers exists)."""
    from opinbench.data.smartvote import find_questionnaire, load_smartvote_questions

    questions = [q for q in load_smartvote_questions(find_questionnaire(shared_data / "smartvote")) if q.is_yes_no]
    rng = random.Random(5)
    parties = ["SP", "SP", "GLP", "GLP", "SVP", "SVP"]
    export = {
        "candidates": [
            {"id": i + 1, "firstname": f"Name{i + 1}", "lastname": "Test", "party": p} for i, p in enumerate(parties)
        ],
        "answers": {
            str(i + 1): [{"questionId": q.id, "value": rng.choice([0, 25, 75, 100])} for q in questions]
            for i in range(len(parties))
        },
    }
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    return path


@pytest.mark.parametrize("task", ["smartvote_cot", "smartvote_direct"])
def test_smartvote_tasks(smartvote_answers, task):
    out = run_tasks([task], "gold", limit=None, metadata={"answers": str(smartvote_answers)})
    r = out["results"][task]
    assert r["acc,none"] == 1.0 and r["macro_f1_individual,none"] == 1.0
    assert {"macro_f1_individual|Left,none", "macro_f1_individual|Center,none", "macro_f1_individual|Right,none"} <= set(r)
    s = out["samples"][task]
    assert len(s) == 6 * round(0.3 * 65)
    doc = s[0]["doc"]
    assert doc["system"] == "You are a Swiss voter."
    assert doc["options"] == ["Yes", "No"]
    assert "candidate" in doc["prompt"] and "Swiss" not in doc["prompt"]


def test_direct_nonfinite_loglikelihood_is_an_invalid_answer_never_a_score():
    """A NaN or infinite loglikelihood is counted (``nonfinite``) and scored as an invalid answer."""
    d = _synthetic_docs(1, ["Yes", "Neutral", "No"], [1 / 3] * 3)[0]
    ok = direct.process_results(d, [(-1.0, False)] * 6)
    assert ok["nonfinite"] == 0.0 and "p_gold" in ok
    for bad in (float("nan"), float("inf")):
        lls = [(-1.0, False)] * 6
        lls[2] = (bad, False)
        out = direct.process_results(d, lls)
        assert out["nonfinite"] == 1.0
        assert out["acc"] == 0.0 and out["macro_f1"]["pred"] == [None]
        assert not {"p_gold", "letter_mass", "low_letter_mass"} & set(out)
