"""First-token letter scoring of training: the same numbers as lm-eval, the losses by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from opinbench.train import letters as L  # noqa: E402
from opinbench.train.data import PromptRenderer, load_task  # noqa: E402
from tests.test_train_common import merged_model, tiny_model, tiny_release  # noqa: E402,F401


def test_letter_logprobs_sum_both_spellings():
    p = torch.tensor([0.1, 0.2, 0.05, 0.05, 0.1, 1e-12])  # " A" " B" " C" "A" "B" "C"
    got = L.letter_logprobs(torch.log(p), 3).exp()
    assert torch.allclose(got, torch.tensor([0.15, 0.3, 0.05]), atol=1e-6)


@pytest.mark.parametrize(
    "letters, target, expected",
    [
        # model renormalised over the ordinal letters A, B (C is "Refused"): (1/3, 2/3)
        ([0.15, 0.3, 0.5], [0.5, 0.5], 0.5 * math.log(0.5 / (1 / 3)) + 0.5 * math.log(0.5 / (2 / 3))),
        ([0.2, 0.2, 0.2], [1.0, 0.0, 0.0], math.log(3)),  # zero human mass contributes nothing
        ([0.1, 0.3, 0.6], [0.1, 0.3, 0.6], 0.0),
    ],
)
def test_kl_loss_is_forward_kl_over_ordinal_letters(letters, target, expected):
    got = L.kl_loss(torch.log(torch.tensor(letters)), torch.tensor(target))
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_kl_loss_matches_the_tasks_kl_metric():
    """Training minimises what opinionqa_wd reports as kl (up to the metric's 1e-6 smoothing)."""
    from opinbench.metrics import distribution as M

    rng = np.random.default_rng(1)
    for _ in range(5):
        model = rng.dirichlet(np.ones(4))
        human = rng.dirichlet(np.ones(3))
        got = float(L.kl_loss(torch.log(torch.tensor(model)), torch.tensor(human)))
        ref = float(M.kl_divergence(human[None], model[None, :3], np.array([[1.0, 2.0, 3.0]]))[0])
        assert got == pytest.approx(ref, rel=1e-3, abs=1e-5)


def test_modal_index_refuses_ties():
    assert L.modal_index([0.2, 0.5, 0.3]) == 1
    assert L.modal_index([0.4, 0.4, 0.2]) is None


@pytest.mark.parametrize("chat", [False, True], ids=["base", "chat"])
def test_batched_scores_equal_lm_evals_loglikelihoods(tiny_model, tiny_release, chat):
    """Left-padded, logits_to_keep scoring == lm-eval's loglikelihood of every choice, and the
    rendered contexts are lm-eval's own, for a tokenizer that merges " A" and one that does not."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from opinbench.paths import tasks_dir

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    renderer = PromptRenderer(model, tok, apply_chat_template=chat)
    task = load_task("opinionqa_wd", {"source": str(tiny_release)})
    docs = list(task.eval_docs)
    examples = [L.build_example(renderer, task, d) for d in docs]
    # two rows per document when the tokenizer splits the space off the letter
    assert {len(e.rows) for e in examples} == ({1} if tiny_model.name.startswith("model-merged") else {2})
    ours = L.score(model, examples, pad_id=tok.pad_token_id, batch_size=5, progress=False)

    lm = HFLM(pretrained=str(tiny_model), batch_size=4, device="cpu", dtype="float32")
    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"source": str(tiny_release)})
    out = simple_evaluate(model=lm, tasks=["opinionqa_wd"], task_manager=tm, apply_chat_template=chat, log_samples=True)
    samples = {s["doc"]["id"]: s for s in out["samples"]["opinionqa_wd"]}
    assert set(samples) == {d["id"] for d in docs}
    for d, e, lp in zip(docs, examples, ours):
        s = samples[d["id"]]
        assert renderer.context(task, d) == s["arguments"][0][0]
        theirs = [float(r[0][0]) for r in s["resps"]]
        np.testing.assert_allclose(lp, theirs, atol=5e-5)


def test_gradients_flow_to_lora_only_and_loss_drops(merged_model, tiny_release):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged_model)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(merged_model)
    renderer = PromptRenderer(model, tok, apply_chat_template=False)
    task = load_task("opinionqa_wd", {"source": str(tiny_release)})
    examples = [L.build_example(renderer, task, d) for d in list(task.eval_docs)[:6]]
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    batch = L.collate(examples, tok.pad_token_id)
    losses = []
    for _ in range(15):
        loss, diag = L.batch_loss(L.choice_logprobs(model, batch), batch, "kl")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    assert 0 <= diag["letter_mass"] <= 1
    frozen = [n for n, p in model.named_parameters() if p.grad is not None and "lora_" not in n]
    assert frozen == []
