"""Every answer task on the real default chat model (SmolLM2-135M-Instruct with its chat
template) against the real data: a few documents each, short generations.

Slow (a real model on CPU): run with ``pytest -m slow``. The model is far too small to
answer well; these tests check that each task runs end to end in lm-eval and produces
its metrics, not the scores.
"""

from __future__ import annotations

import json
import math
import random
import time

import pytest

from opinbench.paths import tasks_dir

pytestmark = pytest.mark.slow

LIMIT = 4
MAX_GEN_TOKS = 48
COMMON = ("acc", "balanced_acc", "macro_f1", "macro_f1_stderr", "balanced_acc_stderr")


@pytest.fixture(scope="module")
def lm():
    try:
        from opinbench.models import model_path

        path = model_path("smollm2")
    except Exception as err:  # noqa: BLE001 - any reason the packaged model is unavailable
        pytest.skip(f"packaged smollm2 not available: {err}")
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(path), dtype="float32", batch_size=LIMIT, device="cpu")


@pytest.fixture(scope="module")
def smartvote_answers(shared_data, tmp_path_factory):
    from opinbench.data.smartvote import find_questionnaire, load_smartvote_questions

    questions = [q for q in load_smartvote_questions(find_questionnaire(shared_data / "smartvote")) if q.is_yes_no]
    rng = random.Random(11)
    export = {
        "candidates": [{"id": 1, "firstname": "Anna", "lastname": "Test", "party": "SP"},
                       {"id": 2, "firstname": "Beat", "lastname": "Test", "party": "SVP"}],
        "answers": {str(c): [{"questionId": q.id, "value": rng.choice([0, 25, 75, 100])} for q in questions] for c in (1, 2)},
    }
    path = tmp_path_factory.mktemp("smartvote") / "answers.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    return path


def _run(lm, task, shared_data, monkeypatch, metadata=None):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)
    t0 = time.perf_counter()
    out = simple_evaluate(
        model=lm, tasks=[task], task_manager=tm, limit=LIMIT, apply_chat_template=True,
        gen_kwargs={"max_gen_toks": MAX_GEN_TOKS}, bootstrap_iters=0, log_samples=True, metadata=metadata,
    )
    seconds = time.perf_counter() - t0
    res = out["results"][task]
    print(f"{task}: {seconds:.1f} s for {LIMIT} documents; " + ", ".join(
        f"{k.split(',')[0]}={v:.3f}" for k, v in res.items() if isinstance(v, float) and "stderr" not in k
    ))
    return out, res


@pytest.mark.parametrize("task", ["vk_cot", "opinionqa_cot", "wom_cot", "anes_cot", "smartvote_cot",
                                  "vk_direct", "opinionqa_direct", "wom_direct", "anes_direct", "smartvote_direct"])
def test_task_runs_on_the_default_chat_model(lm, task, shared_data, smartvote_answers, monkeypatch):
    metadata = {"answers": str(smartvote_answers)} if task.startswith("smartvote") else None
    out, res = _run(lm, task, shared_data, monkeypatch, metadata)
    for key in COMMON:
        assert f"{key},none" in res
        value = res[f"{key},none"]
        if key.endswith("_stderr") and value == "N/A":  # clustered: undefined with one question/individual
            continue
        assert 0.0 <= value <= 1.0 or math.isnan(value)
    samples = out["samples"][task]
    assert len(samples) == LIMIT
    if task.endswith("_cot"):
        assert 0.0 <= res["invalid,none"] <= 1.0
        for s in samples:
            (gens,) = s["resps"]
            assert len(gens) == 1 and isinstance(gens[0], str)
    else:
        assert res["letter_mass,none"] > 0.0
    if task.split("_")[0] in ("wom", "anes", "smartvote"):
        assert "macro_f1_individual,none" in res
        # the country is the system turn, the individual is in the user turn
        prompt = samples[0]["arguments"][0][0]
        system, user = prompt.split("<|im_start|>user\n", 1)
        assert system.endswith(f"<|im_start|>system\n{samples[0]['doc']['system']}\n<|im_end|>\n")
        assert user.startswith(samples[0]["doc"]["prompt"].splitlines()[0])
