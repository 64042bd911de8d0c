"""Every ``opinbench`` command meets bad input with one line on stderr and exit status 2.

The commands are enumerated from the argparse parser itself (`leaf_commands`): a new
subcommand without cases here fails `test_every_command_has_bad_input_cases`, naming it.
Each command gets the generic cases (an unknown flag, a wrong-typed value for every typed
option) and its own battery (`CASES`: missing file, wrong type of file, unreachable or
malformed URL, unwritable output, a 5,000-character string, a port in use). Every case runs
in process through `opinbench.cli.main` and must end with exactly one line on stderr,
naming the problem, no traceback, and status 2; ``--debug`` and ``OPINBENCH_DEBUG=1`` bring
the traceback back. The missing extras run in a subprocess, where the import can be made to
fail (``sys.modules[name] = None``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from opinbench.cli import COMMANDS, build_parser, main
from tests.helpers.leaderboard_stores import PG_URL, pg_unreachable

ROOT = Path(__file__).resolve().parents[1]
HUGE = "x" * 5000
UNWRITABLE = "/proc/opinbench-no-such-dir/out"  # cannot be made, not even by root

# leaf command -> [(arguments after the command, text the one stderr line must hold)].
# Placeholders: {missing} a path that does not exist, {file} a text file that is not JSON,
# {dir} an empty folder, {store} an SQLite store file, {site} a folder with an index.html,
# {port} a port another socket listens on, {huge} 5,000 characters, {unwritable} a path
# that cannot be created.
CASES: dict[str, list[tuple[list[str], str]]] = {
    "data list": [(["--data-dir", "{huge}"], "File name too long")],
    "data fetch": [
        (["nope"], "unknown source 'nope'"),
        (["opinionqa", "--from", "{missing}"], "no such folder"),
        (["opinionqa", "--dest", "{unwritable}", "--from", "{dir}"], "opinbench-no-such-dir"),
    ],
    "data export": [
        (["opinionqa", "--source", "{missing}", "--out", "{dir}/o.jsonl"], "no such file or directory"),
        (["opinionqa", "--source", "{file}", "--out", "{dir}/o.jsonl"], "no OpinionQA wave folder"),
        (["opinionqa", "--source", "{huge}", "--out", "{dir}/o.jsonl"], "File name too long"),
        (["opinionqa", "--option", "nokey", "--out", "{dir}/o.jsonl"], "expected KEY=VALUE"),
        (["opinionqa", "--out", "{dir}"], "--out is a folder"),
    ],
    "tasks": [],
    "tasks-dir": [],
    "eval": [
        (["--tasks", "opinionqa_wd", "--metadata", "{not json"], "--metadata is not a JSON object"),
        (["--tasks", "opinionqa_wd", "--metadata", "[1]"], "--metadata must be a JSON object"),
    ],
    "bounds": [
        (["nope"], "'nope' is neither a data set"),
        (["opinionqa", "--source", "{missing}"], "no such file or directory"),
    ],
    "compare": [
        (["{missing}", "{missing}"], "no such file or directory"),
        (["{file}", "{file}"], "not JSON"),
        (["{huge}", "{huge}"], "File name too long"),
    ],
    "report": [
        (["{missing}", "--out", "{dir}/r"], "no such file or directory"),
        (["{dir}", "--out", "{dir}/r"], "no samples_*.jsonl"),
    ],
    "export": [
        (["eee", "{missing}", "--out", "{dir}/e"], "no such file or directory"),
        (["eee", "{dir}", "--out", "{dir}/e"], "no samples_*.jsonl"),
        (["eee", "{huge}", "--out", "{dir}/e"], "File name too long"),
        (["eee", "leaderboard:x", "--out", "{dir}/e"], "leaderboard:ID"),
    ],
    "regress": [
        (["{missing}", "{missing}"], "no such file or directory"),
        (["{file}", "{dir}"], "not JSON"),
    ],
    "judge faithfulness": [
        (["--samples", "{missing}"], "no such file or directory"),
        (["--samples", "{dir}"], "no samples_*.jsonl"),
        (["--samples", "{huge}"], "File name too long"),
    ],
    "judge moderation": [
        (["--samples", "{missing}"], "no such file or directory"),
        (["--samples", "{file}"], "no chain-of-thought samples found"),
    ],
    "estimate": [
        (["opinionqa_wd", "--model", "{missing}"], "{missing}"),
    ],
    "train sft": [(["--config", "{missing}"], "does not exist")],
    "train grpo": [(["--config", "{file}"], "expected a mapping")],
    "train wd": [(["--checkpoint", "{missing}"], "not an opinbench checkpoint")],
    "leaderboard submit": [
        (["smoke", "--model", "{huge}", "--store", "{store}"], "File name too long"),
        (["nope", "--model", "x", "--store", "{store}"], "no registered leaderboard nope"),
        (["smoke", "--results", "{missing}", "--store", "{store}"], "no such file or directory"),
        (["smoke", "--results", "{dir}", "--store", "foo://x"], "store foo://x: Can't load plugin"),
    ],
    "leaderboard define": [
        (["{missing}.yaml", "--store", "{store}"], "no such file or directory"),
        (["nope", "--store", "{store}"], "unknown leaderboard 'nope'"),
        (["{file}", "--store", "{store}"], "unknown leaderboard"),
        (["smoke", "--store", "foo://x"], "store foo://x: Can't load plugin"),
    ],
    "leaderboard worker": [
        (["--until-empty", "--store", "foo://x"], "store foo://x: Can't load plugin"),
        (["--until-empty", "--store", "postgresql://u:pw@127.0.0.1:1/x"], "127.0.0.1:1/x: connection"),
        (["--until-empty", "--store", "{file}"], "file is not a database"),
        (["--until-empty", "--store", "{unwritable}/lb.sqlite"], "opinbench-no-such-dir"),
    ],
    "leaderboard status": [
        (["--store", "{file}"], "file is not a database"),
        (["--store", "{unwritable}/lb.sqlite"], "No such file or directory"),
        (["--store", "postgresql://127.0.0.1:1/x"], "Connection refused"),
        (["99", "--store", "{store}"], "no request 99"),
    ],
    "leaderboard validate": [(["99", "--store", "{store}"], "no request 99")],
    "leaderboard build": [
        (["smoke", "--out", "{unwritable}", "--store", "{store}"], "opinbench-no-such-dir"),
        (["nope", "--out", "{dir}/site", "--store", "{store}"], "no registered leaderboard nope"),
    ],
    "leaderboard serve": [
        (["{missing}"], "no built site here"),
        (["{file}"], "no built site here"),
        (["{site}", "--port", "{port}"], "Address already in use"),
    ],
}


def leaf_commands() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command (``data export``, ``leaderboard serve``, ...) and its parser."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[name] = parser
        for sub in subs:
            for child, p in sub.choices.items():
                walk(p, f"{name} {child}")

    for command in COMMANDS:
        parser = build_parser([command])
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        walk(sub.choices[command], command)
    return out


LEAVES = leaf_commands()


def _typed_cases() -> list[tuple[str, list[str], str]]:
    """An unknown flag for every command; a wrong-typed value for every int/float/Path option."""
    cases = []
    for name, parser in LEAVES.items():
        if name in ("eval", "train sft", "train grpo"):  # their arguments go to lm-eval / TRL
            continue
        # the missing required arguments may be named first: either way one usage line
        cases.append((name, ["--no-such-flag"], f"opinbench {name}: error: "))
        for action in parser._actions:
            if action.option_strings and action.type in (int, float):
                cases.append((name, [action.option_strings[-1], "abc"], f"invalid {action.type.__name__} value: 'abc'"))
    return cases


@pytest.fixture()
def places(tmp_path, monkeypatch):
    """The placeholders' values; nothing may reach the network or a real data folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPINBENCH_DEBUG", raising=False)
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not json\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html></html>")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    yield {
        "missing": str(tmp_path / "missing"), "file": str(tmp_path / "notes.txt"), "dir": str(tmp_path / "empty"),
        "store": str(tmp_path / "lb.sqlite"), "site": str(site), "port": str(busy.getsockname()[1]),
        "huge": HUGE, "unwritable": UNWRITABLE,
    }
    busy.close()


def _fill(args: list[str], places: dict[str, str]) -> list[str]:
    out = []
    for a in args:
        for key, value in places.items():
            a = a.replace("{" + key + "}", value)
        out.append(a)
    return out


def _no_serving(monkeypatch):
    """A `serve` that got past its checks would serve forever: fail instead."""
    import http.server

    def refuse(*_a, **_k):
        raise AssertionError("the server started")

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", refuse)


def check_one_line(capsys, argv: list[str], expected: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    shown = f"{argv[:6]}: status {code}, stderr:\n{err[-3000:]}"
    assert "Traceback" not in err + out, shown
    assert code == 2 and len(lines) == 1, shown
    assert expected in lines[0], shown
    assert len(lines[0]) < 1200, shown  # a 5,000-character value is cut, not echoed whole
    return lines[0]


def test_every_command_has_bad_input_cases():
    missing = sorted(set(LEAVES) - set(CASES))
    assert not missing, f"commands without bad-input cases in tests/test_cli_bad_input.py: {missing}"
    assert not set(CASES) - set(LEAVES), sorted(set(CASES) - set(LEAVES))


@pytest.mark.parametrize(("command", "args", "expected"), [
    pytest.param(c, a, e, id=f"{c}:{' '.join(a)[:40]}") for c, cases in CASES.items() for a, e in cases
])
def test_bad_input_is_one_line_and_status_2(command, args, expected, places, capsys, monkeypatch):
    _no_serving(monkeypatch)
    check_one_line(capsys, [*command.split(), *_fill(args, places)], _fill([expected], places)[0])


@pytest.mark.parametrize(("command", "args", "expected"), [
    pytest.param(c, a, e, id=f"{c}:{' '.join(a)}") for c, a, e in _typed_cases()
])
def test_usage_errors_are_one_line_and_status_2(command, args, expected, places, capsys, monkeypatch):
    _no_serving(monkeypatch)
    check_one_line(capsys, [*command.split(), *args], expected)


def test_missing_postgresql_database_is_one_line(places, capsys):
    why = pg_unreachable()
    if why:
        pytest.skip(why)
    url = PG_URL.rsplit("/", 1)[0] + "/opinbench_no_such_database"
    check_one_line(capsys, ["leaderboard", "status", "--store", url], 'database "opinbench_no_such_database" does not exist')


def test_a_password_in_the_store_url_is_never_printed(places, capsys):
    line = check_one_line(capsys, ["leaderboard", "status", "--store", "postgresql://me:s3cret@127.0.0.1:1/x"],
                          "Connection refused")
    assert "s3cret" not in line and "me:***@" in line


@pytest.fixture(scope="module")
def tiny_model():
    from tests.helpers import leaderboard_runs as runs

    return runs.tiny_model()


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "adapter_config.json"),
    ("[1, 2]", "expected a JSON object, found list"),
])
def test_malformed_adapter_config_is_one_line(content, expected, tiny_model, places, tmp_path, capsys):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(content)
    line = check_one_line(capsys, ["leaderboard", "submit", "smoke", "--model", str(tiny_model), "--peft", str(adapter),
                                   "--name", "org/tiny", "--store", places["store"]], expected)
    assert str(adapter) in line


def test_debug_shows_the_traceback(places, capsys, monkeypatch):
    argv = ["leaderboard", "status", "--store", places["file"]]
    with pytest.raises(Exception, match="file is not a database"):
        main(["--debug", *argv])
    monkeypatch.setenv("OPINBENCH_DEBUG", "1")
    with pytest.raises(Exception, match="file is not a database"):
        main(argv)


def test_an_unexpected_error_is_one_line_asking_for_debug(places, capsys, monkeypatch):
    import opinbench.commands.tasks as tasks

    def broken(_args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(tasks, LEAVES["tasks"].get_default("func").__name__, broken)
    code = main(["tasks"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "ZeroDivisionError: division by zero" in err and "--debug" in err


def _without(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``opinbench argv`` in a child where importing ``module`` fails, as when it is not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; from opinbench.cli import main; sys.exit(main({argv!r}))"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("OPINBENCH_DEBUG", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("module", "argv", "extra"), [
    ("matplotlib", ["report", "{dir}", "--out", "{dir}/r"], "report"),
    ("sqlalchemy", ["leaderboard", "status", "--store", "{store}"], "leaderboard"),
    ("psycopg", ["leaderboard", "status", "--store", "postgresql://127.0.0.1:1/x"], "leaderboard"),
])
def test_a_missing_extra_names_its_pip_install(module, argv, extra, places):
    proc = _without(module, _fill(argv, places))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f'{module} is not installed: pip install "opinbench[{extra}]"' in lines[0], proc.stderr


def test_serve_refuses_a_folder_that_does_not_exist_without_starting(places, capsys, monkeypatch):
    _no_serving(monkeypatch)
    line = check_one_line(capsys, ["leaderboard", "serve", places["missing"], "--port", "0"], "no built site here")
    assert "opinbench leaderboard build" in line  # says how to make one


def test_status_names_its_store_and_submit_says_what_next(places, capsys, tiny_model):
    store = places["store"]
    assert main(["leaderboard", "status", "--store", store]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"store: sqlite:///{store}"
    assert main(["leaderboard", "status", "--json", "--store", store]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and f"store: sqlite:///{store}" in err
    assert main(["leaderboard", "submit", "smoke", "--model", str(tiny_model), "--dtype", "float32", "--name", "org/tiny",
                 "--store", store]) == 0
    out = capsys.readouterr().out
    assert f"`opinbench leaderboard worker --until-empty --store {store}`" in out
    assert f"`opinbench leaderboard status 1 --store {store}`" in out


def test_a_task_lm_eval_does_not_know_is_one_line(monkeypatch, capsys):
    """A name that is not opinbench's goes on to lm-eval, whose "Tasks not found" is bad input too."""
    import lm_eval.__main__

    def not_found():
        raise ValueError("Tasks not found: no_such_task_xyz")

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", not_found)
    assert main(["eval", "--model", "hf", "--model_args", "pretrained=x", "--tasks", "no_such_task_xyz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("opinbench eval: error: Tasks not found: no_such_task_xyz") and "Traceback" not in "\n".join(err)
