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


# --------------------------------------------------------------------------- leaderboards (issue 21)


def test_dated_snapshot_is_priced_by_its_undated_row(tmp_path):
    table = load_prices()
    assert table.row("anthropic:claude-sonnet-4-5-20250929") == "anthropic:claude-sonnet-4-5"
    assert table.get("anthropic:claude-sonnet-4-5-20250929") == table.get("anthropic:claude-sonnet-4-5")
    assert table.row("openai:gpt-4o-mini-2024-07-18") == "openai:gpt-4o-mini"
    assert table.get("anthropic:claude-sonnet-4-5-2025") is None  # not a date: no match
    assert table.get("anthropic:claude-sonnet-9-20250929") is None
    own = tmp_path / "p.yaml"  # a row naming the snapshot itself wins
    own.write_text("models:\n  anthropic:claude-sonnet-4-5-20250929: {input: 1, output: 1}\n")
    assert load_prices(own).get("anthropic:claude-sonnet-4-5-20250929").input == 1.0


def smoke_with_max_gen_toks(tmp_path, n: int = 16):
    """The smoke definition with ``settings.max_gen_toks: n``, as a file."""
    from opinbench.paths import bundled

    text = (bundled("leaderboards") / "smoke.yaml").read_text(encoding="utf-8")
    path = tmp_path / "smoke16.yaml"
    path.write_text(text.replace("settings:\n", f"settings:\n  max_gen_toks: {n}\n", 1), encoding="utf-8")
    return path


def test_plan_of_a_leaderboard_name_or_file(tmp_path):
    from opinbench.commands.estimate import plan
    from opinbench.leaderboard.definition import load_definition
    from opinbench.paths import bundled

    cap = load_definition("smoke").settings.get("max_gen_toks")
    for spec in ("smoke", str(bundled("leaderboards") / "smoke.yaml")):
        p = plan(spec)
        assert p.tasks == ["opinionqa_wd", "wom_cot"]
        assert p.metadata == {"split": "test"}
        assert p.samples == {"opinionqa_wd": [0, 1, 2], "wom_cot": [0, 1, 2]}
        assert p.gen_kwargs == ({"max_gen_toks": int(cap)} if cap else None)
        assert p.judges["faithfulness"]["model"] == "claude-sonnet-4-5-20250929"
    assert plan(str(smoke_with_max_gen_toks(tmp_path))).gen_kwargs == {"max_gen_toks": 16}
    # a group of that name wins over the leaderboard opinbench.yaml; its file reaches the leaderboard
    assert plan("opinbench").tasks == ["opinbench"] and plan("opinbench").source is None
    assert plan(str(bundled("leaderboards") / "opinbench.yaml")).source


def test_estimate_help_is_plain_text(capsys):
    from opinbench.cli import main

    assert main(["estimate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "LEADERBOARD_OR_TASKS" in out and "Examples:" in out
    assert "``" not in out and "::" not in out


@pytest.fixture(scope="module")
def tok_dir(tok, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return path


def test_estimate_a_leaderboard_counts_its_definition_and_prices_its_judge(shared_data, tok_dir, tmp_path,
                                                                           monkeypatch, capsys, index_calls):
    # Before: `estimate smoke` ended in a KeyError traceback and `estimate leaderboards/smoke.yaml`
    # in "expected a `tasks:` list"; a task list counted wom_cot at its YAML's max_gen_toks (1,536
    # a generation, the definition allows 16) and the pinned judge was "not in the price table".
    from opinbench.cli import main
    from opinbench.paths import bundled

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    out = tmp_path / "e.json"
    assert main(["estimate", "smoke", "--model", str(tok_dir), "--json", str(out)]) == 0
    est = json.loads(out.read_text())
    rows = {t["task"]: t for t in est["tasks"]}
    assert set(rows) == {"opinionqa_wd", "wom_cot"}
    assert rows["opinionqa_wd"]["documents"] == 3 and rows["wom_cot"]["documents"] == 3
    assert rows["wom_cot"]["generations"] == 3
    (judge,) = est["judges"]
    assert judge["model"] == "anthropic:claude-sonnet-4-5-20250929" and judge["calls"] == 3
    assert judge["cost_live"] > 0
    assert "priced as anthropic:claude-sonnet-4-5" in capsys.readouterr().out
    out2 = tmp_path / "f.json"
    assert main(["estimate", str(bundled("leaderboards") / "smoke.yaml"), "--model", str(tok_dir),
                 "--json", str(out2)]) == 0
    assert json.loads(out2.read_text())["tasks"] == est["tasks"]
    # a definition's max_gen_toks caps the generations, as its worker's --gen_kwargs does
    out3 = tmp_path / "g.json"
    assert main(["estimate", str(smoke_with_max_gen_toks(tmp_path)), "--model", str(tok_dir),
                 "--json", str(out3)]) == 0
    rows16 = {t["task"]: t for t in json.loads(out3.read_text())["tasks"]}
    assert rows16["wom_cot"]["max_gen_tokens"] == 3 * 16 < rows["wom_cot"]["max_gen_tokens"]
    assert index_calls and not any(index_calls)  # opinbench's tasks: lm-eval's own never indexed


@pytest.fixture
def index_calls(monkeypatch):
    """Which task folders `opinbench.harness.tasks` indexes: ``include_defaults`` per manager built.

    lm-eval's own tasks are not really indexed here (~2 min on a busy 2-core machine)."""
    from opinbench.harness import tasks

    calls: list[bool] = []
    real = tasks.task_manager

    def spy(metadata=None, *, include_path=None, include_defaults=False):
        calls.append(include_defaults)
        return real(metadata, include_path=include_path)

    monkeypatch.setattr(tasks, "task_manager", spy)
    return calls


def test_estimate_an_unknown_name_is_one_line(tok_dir, capsys, index_calls):
    # Before: a 20-line KeyError traceback, after indexing all of lm-eval's tasks.
    from opinbench.cli import main

    assert main(["estimate", "opinionqa_wdx", "--model", str(tok_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown task or group 'opinionqa_wdx'" in err
    assert "did you mean opinionqa_wd" in err
    assert index_calls == [False, True]  # opinbench's folder first, lm-eval's only for the missing name
