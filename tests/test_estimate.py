"""``opinbench estimate``: counts on the real prompts, the price table, judge load, GPU-hours."""

from __future__ import annotations

import json

import pytest

from opinbench.errors import ConfigError
from opinbench.estimate.cost import JudgeLoad, gpu_hours, price
from opinbench.estimate.counts import TaskCount, count_tasks, logged_prompt_tokens, n_tokens
from opinbench.estimate.prices import load_prices
from tests.helpers.tiny_models import CHAT_TEMPLATE, build_tokenizer


@pytest.fixture(scope="module")
def tok():
    t = build_tokenizer("merged")
    t.chat_template = CHAT_TEMPLATE
    return t


def test_price_table_and_override(tmp_path):
    table = load_prices()
    assert table.batch_discount == 0.5
    sonnet = table.get("anthropic:claude-sonnet-4-6")
    assert sonnet is not None and sonnet.cost(1e6, 1e6) == sonnet.input + sonnet.output
    own = tmp_path / "p.yaml"
    own.write_text("batch_discount: 0.4\nmodels:\n  openai:my-judge: {input: 2, output: 8}\n")
    table = load_prices(own)
    assert table.get("openai:my-judge").cost(1e6, 5e5) == 6.0
    assert table.get("anthropic:claude-sonnet-4-6") is not None  # rows merge
    load = price(JudgeLoad("judge", "openai:my-judge", input_tokens=1_000_000), table)
    assert load.cost_live == 2.0 and load.cost_batch == pytest.approx(0.8)
    assert price(JudgeLoad("judge", "x:unknown"), table).cost_live is None
    own.write_text("models:\n  openai:bad: {input: cheap}\n")
    with pytest.raises(ConfigError):
        load_prices(own)


def test_gpu_hours():
    assert gpu_hours(7200, 0, prefill_tps=1, decode_tps=1) == 2.0


def _write_samples(folder, task, instances):
    """A samples file as lm-eval --log_samples writes it, one row per document."""
    by_doc: dict[int, list] = {}
    for inst in instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"samples_{task}_2026-01-01T00-00-00.000001.jsonl", "w") as f:
        for doc_id, insts in by_doc.items():
            args = {f"gen_args_{i}": {"arg_0": x.args[0], "arg_1": x.args[1]}
                    for i, x in enumerate(insts)}
            f.write(json.dumps({"doc_id": doc_id, "arguments": args,
                                "resps": [["Answer: A"]] * len(insts)}) + "\n")


def test_counts_are_the_requests_lm_eval_builds(shared_data, tok, tmp_path, monkeypatch):
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    (c,) = count_tasks(["opinionqa_wd"], tok, limit=3)
    assert c.documents == 3 and c.output_type == "multiple_choice"
    assert c.requests > c.documents and c.prompt_tokens > 0 and c.max_gen_tokens == 0
    # The same requests logged as samples and re-tokenised give the same count.
    from opinbench.estimate.counts import chat_template_fn, load_tasks

    task = load_tasks(["opinionqa_wd"])["opinionqa_wd"]
    task.build_all_requests(limit=3, apply_chat_template=True, fewshot_as_multiturn=True,
                            chat_template=chat_template_fn(tok))
    _write_samples(tmp_path / "run" / "m", "opinionqa_wd", task.instances)
    logged = logged_prompt_tokens(tmp_path / "run", tok)["opinionqa_wd"]
    assert logged["prompt_tokens"] == c.prompt_tokens and logged["requests"] == c.requests


def test_counts_take_the_runs_metadata(shared_data, tok, monkeypatch):
    # lm-eval --metadata reaches the tasks' dataset hooks, as in a run (a leaderboard's split: test)
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    with pytest.raises(ConfigError, match="split"):
        count_tasks(["opinionqa_wd"], tok, limit=1, metadata={"split": "bogus"})


def test_judge_load_counts_one_call_per_generation(tok):
    from opinbench.estimate.cost import judge_load

    c = TaskCount("vk_cot", "generate_until", documents=2, requests=2, generations=2,
                  max_gen_tokens=1024,
                  judge_docs=[("vk", "Lying to a friend", ["Supports", "Opposes", "Either"])] * 2)
    load = judge_load("faithfulness", [c], tok, "anthropic:claude-haiku-4-5",
                      gen_tokens_per_task={"vk_cot": 100}, control=False)
    assert load.calls == 2 and load.control_calls == 0
    assert load.output_tokens == 2 * 64  # the settings' max_tokens, an upper bound
    assert load.input_tokens > 2 * 100 + 2 * n_tokens(tok, "Lying to a friend")
    mod = judge_load("moderation", [c], tok, "openai:omni-moderation-latest",
                     gen_tokens_per_task={"vk_cot": 100})
    assert mod.calls == 2 and mod.input_tokens == 200
    assert price(mod, load_prices()).cost_live == 0.0


def test_task_names_from_a_leaderboard_file(tmp_path):
    from opinbench.commands.estimate import task_names

    f = tmp_path / "board.yaml"
    f.write_text("tasks:\n  - opinionqa_wd\n  - {name: vk_cot}\n")
    assert task_names(str(f)) == ["opinionqa_wd", "vk_cot"]
    with pytest.raises(ConfigError):
        task_names(" , ")
