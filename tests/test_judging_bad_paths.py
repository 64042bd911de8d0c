"""``opinbench judge`` on its bad paths (issue 21): every one a count and one line, never a traceback.

The real ``anthropic`` / ``openai`` clients against the local fake server: a run in which every
request fails must not exit 0; a token budget must hold when the server reports no usable usage;
replies the API's schema does not allow are one counted failure each, one log line each; a
cache or results folder that cannot be used is one line on stderr and exit status 2, before any
request is sent.
"""

from __future__ import annotations

import logging

import pytest

from opinbench.cli import main
from opinbench.judging.api import run_judge
from opinbench.judging.options import FaithfulnessOptions
from tests.fake_api_server import FakeAPIServer
from tests.test_judging_fixtures import SECRET, write_lm_eval_run

N = 6  # generations, each judged once (no control set)


def _docs(n: int) -> list[dict]:
    return [
        {"id": f"d{i}", "dataset": "vk", "family": "vk", "question": f"Situation {i}",
         "options": ["Supports", "Opposes", "Either"], "subject": "Justice",
         "subject_group": None, "answer": "Supports", "context": None}
        for i in range(n)
    ]


@pytest.fixture()
def run_dir(tmp_path):
    traces = [[f"Reason number {i} weighs the duties involved.\nAnswer: A"] for i in range(N)]
    write_lm_eval_run(tmp_path / "out", "vk_cot", _docs(N), traces)
    return tmp_path / "out"


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeAPIServer(SECRET) as srv:
        yield srv


def _argv(run_dir, srv, tmp_path, *extra, judge="anthropic:claude-sonnet-4-6"):
    url = srv.url if judge.startswith("anthropic") else srv.openai_url
    return ["judge", "faithfulness", "--samples", str(run_dir), "--judge", judge,
            "--base-url", url, "--cache", str(tmp_path / "cache.sqlite"), "--no-control",
            "--backoff", "0.01", "--max-retries", "1", "--timeout", "2", "--concurrency", "1",
            "--no-progress", *extra]


def _written(run_dir) -> list:
    return sorted(run_dir.rglob("*judge-faithfulness*"))


def test_every_request_failing_exits_non_zero_with_one_line(run_dir, server, tmp_path, capsys):
    server.faults.extend(["500"] * (2 * N))  # each request: the first try and one retry
    assert main(_argv(run_dir, server, tmp_path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"opinbench judge faithfulness: error: faithfulness: none of {N} requests was "
                   f"answered ({N} failed: http 500 x{2 * N}); no results written"]
    assert _written(run_dir) == []  # no results file that reads as a judged run
    assert server.count() == 2 * N


@pytest.mark.parametrize("usage", [{}, {"input_tokens": -5, "output_tokens": -1}])
def test_token_budget_holds_without_usable_usage(run_dir, server, tmp_path, usage, caplog):
    def no_usage(path, reply):
        reply["usage"] = usage
        return reply

    server.mangle = no_usage
    assert main(_argv(run_dir, server, tmp_path, "--max-tokens-budget", "1000")) == 3
    assert server.count() == 1  # one request at a time: the first reply's cost is unknown
    assert "token budget cannot be kept (--max-tokens-budget 1000)" in caplog.text


def _null_content(path, reply):
    return {**reply, "content": None}


def _missing_content(path, reply):
    return {k: v for k, v in reply.items() if k != "content"}


def _number_text(path, reply):
    return {**reply, "content": [{"type": "text", "text": 5}]}


def _list_body(path, reply):
    return [reply]


def _string_usage(path, reply):
    return {**reply, "usage": {"input_tokens": "12", "output_tokens": "3"}}


def _openai_list_body(path, reply):
    return [reply]


def _openai_number_content(path, reply):
    reply["choices"][0]["message"]["content"] = 5
    return reply


def _openai_string_usage(path, reply):
    reply["usage"] = {"prompt_tokens": "12", "completion_tokens": "3"}
    return reply


@pytest.mark.parametrize(
    ("judge", "mangle"),
    [("anthropic:claude-sonnet-4-6", m) for m in
     (_null_content, _missing_content, _number_text, _list_body, _string_usage)]
    + [("openai-compat:judge-7b", m) for m in
       (_openai_list_body, _openai_number_content, _openai_string_usage)],
)
def test_a_reply_outside_the_schema_is_one_counted_failure(run_dir, server, tmp_path, judge,
                                                           mangle, caplog, capsys):
    server.mangle = mangle
    caplog.set_level(logging.WARNING)
    options = FaithfulnessOptions(samples=[str(run_dir)], judge=judge,
                                  base_url=server.url if judge.startswith("anthropic")
                                  else server.openai_url,
                                  api_key_env="OPENAI_API_KEY" if "openai" in judge else None,
                                  cache=tmp_path / "c.sqlite", no_control=True, backoff=0.01,
                                  concurrency=1, no_progress=True)
    outcome = run_judge("faithfulness", options)
    assert (outcome.status, outcome.failed, outcome.judged) == ("failed", N, 0)
    assert server.count() == N  # not retried: the same server would send the same again
    lines = [r for r in caplog.records if r.name.startswith("opinbench.llm")]
    assert len(lines) == N and all("malformed reply" in r.getMessage() for r in lines), caplog.text
    assert not any(r.exc_info for r in caplog.records)
    assert "Traceback" not in capsys.readouterr().err


def test_a_cache_that_is_not_sqlite_is_one_line_and_exit_2(run_dir, server, tmp_path, capsys):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("these are my notes, not a database\n" * 100)
    argv = _argv(run_dir, server, tmp_path)
    argv[argv.index("--cache") + 1] = str(not_sqlite)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"opinbench judge faithfulness: error: --cache {not_sqlite}: "
                                               "not a usable SQLite reply cache"), err
    assert server.count() == 0 and not_sqlite.read_text().startswith("these are my notes")


def test_a_cache_in_a_missing_folder_is_one_line_and_exit_2(run_dir, server, tmp_path, capsys):
    argv = _argv(run_dir, server, tmp_path)
    missing = tmp_path / "no" / "such" / "cache.sqlite"
    argv[argv.index("--cache") + 1] = str(missing)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"opinbench judge faithfulness: error: --cache {missing}: its folder "
                   f"{missing.parent} does not exist"]
    assert server.count() == 0 and not (tmp_path / "no").exists()


def test_an_unwritable_output_dir_is_one_line_and_exit_2(run_dir, server, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "results"  # a folder under a file: unwritable, even for root
    assert main(_argv(run_dir, server, tmp_path, "--output-dir", str(out))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"opinbench judge faithfulness: error: cannot write results into {out}: "), err
    assert server.count() == 0


def test_a_moderation_endpoint_is_not_billed_by_tokens_so_a_token_cap_lets_it_run(run_dir, server,
                                                                                tmp_path):
    argv = ["judge", "moderation", "--samples", str(run_dir), "--moderator",
            "openai:omni-moderation-latest", "--base-url", server.openai_url, "--cache",
            str(tmp_path / "cache.sqlite"), "--max-tokens-budget", "1000", "--no-progress"]
    assert main(argv) == 0
    assert server.count("/v1/moderations") == N
