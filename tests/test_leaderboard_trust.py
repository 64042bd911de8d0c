"""Issue 23: a leaderboard whose numbers can be trusted. Each test reproduces one defect the issue
found (it fails on the code before the fix), on SQLite and PostgreSQL where the store is involved:
registered definitions only, stored numbers compared on `validate`, fenced workers (the
SIGSTOP/SIGCONT takeover with three worker processes included), re-hashed weights, atomic
self-reported ingests, and the terminal/CSV hygiene of submitted strings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from opinbench.cli import main
from opinbench.errors import ConfigError
from opinbench.leaderboard import store as S
from opinbench.leaderboard.cli import revalidate
from opinbench.leaderboard.definition import definition_path, load_definition
from opinbench.leaderboard.validate import validate_run
from opinbench.leaderboard.worker import _Heartbeat, run_worker
from tests.helpers import leaderboard_runs as runs
from tests.helpers.leaderboard_stores import url  # noqa: F401 - the store fixture, per backend
from tests.test_leaderboard_worker import (  # noqa: F401 - fixtures of the smoke run
    _copy, _fields, leaking_adapter, monkeypatch_module, smoke_run, tiny_model)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_judges(monkeypatch):
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def store(url):
    st = S.Store.open(url)
    yield st
    st.engine.dispose()


def _forged_smoke(tmp_path: Path) -> Path:
    """The issue's forged definition: ``name: smoke`` at the registered version, its own floors."""
    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["metrics"][0]["floor"] = {"value": 10.0}
    path = tmp_path / "smoke-forged.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ------------------------------------------------------------------ 1. registered definitions only

def test_a_file_claiming_a_registered_name_and_version_is_refused(store, tmp_path, capsys):
    forged = _forged_smoke(tmp_path)
    assert main(["leaderboard", "define", "smoke", "--store", store.url.replace("***", "")]) == 0
    assert "smoke v2: registered" in capsys.readouterr().out
    with pytest.raises(S.DefinitionConflict, match="smoke version 2 is registered with digest"):
        store.define(load_definition(forged))
    # submit names a board: a definition file is not a board
    with pytest.raises(ConfigError, match="no registered leaderboard .*define FILE"):
        store.board(str(forged))
    assert store.board("smoke").digest == load_definition("smoke").digest


def test_a_shipped_definition_registers_on_first_use(store):
    assert store.board_names() == []
    assert store.board("smoke").name == "smoke" and store.board_names() == ["smoke"]
    with pytest.raises(ConfigError, match="no registered leaderboard nope; known: opinbench, smoke"):
        store.board("nope")


def test_submit_refuses_a_definition_file_and_its_leakage_guard_skip(tmp_path, tiny_model, shared_data, monkeypatch,
                                                                      capsys):
    """The issue's attack: a copy of smoke without the leaking task, submitted as the definition."""
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["tasks"].pop("wom_cot")
    raw["metrics"] = [m for m in raw["metrics"] if m.get("task") != "wom_cot"]
    copy = tmp_path / "smoke.yaml"
    copy.write_text(yaml.safe_dump(raw))
    adapter = leaking_adapter(tmp_path / "adapter", tiny_model)
    db = ["--store", str(tmp_path / "s.sqlite")]
    assert main(["leaderboard", "submit", str(copy), "--model", str(tiny_model), "--peft", str(adapter),
                 "--name", "x/y", *db]) == 2
    assert "no registered leaderboard" in capsys.readouterr().err
    assert main(["leaderboard", "define", str(copy), *db]) == 0  # first registration of "smoke" v2 ...
    assert main(["leaderboard", "define", "smoke", *db]) == 2  # ... then the shipped one conflicts
    assert "smoke version 2 is registered with digest" in capsys.readouterr().err


def test_validate_recomputes_and_compares_every_stored_number(store, smoke_run, capsys):
    """The issue's forged headline: a stored result whose numbers are not the definition's."""
    rid = store.submit(_fields(store))
    honest = validate_run(smoke_run, store.board("smoke"))
    forged = json.loads(json.dumps(honest))
    forged["headline"] = 0.976
    forged["scores"]["opinionqa_wd_qa"]["floor"] = 10.0
    forged["scores"]["opinionqa_wd_qa"]["normalised"] = 0.99
    assert store.finish(store.claim("w"), forged, folder=smoke_run)
    report = revalidate(store, rid)
    diffs = report["stored_differences"]
    assert any(d.startswith("opinionqa_wd_qa: stored floor 10.0, recomputed") for d in diffs), diffs
    assert any(d.startswith("opinionqa_wd_qa: stored normalised 0.99") for d in diffs), diffs
    assert any(d.startswith("headline 0.976, recomputed") for d in diffs), diffs
    assert main(["leaderboard", "validate", str(rid), "--store", store.url.replace("***", "")]) == 1
    assert "stored number differs: headline 0.976" in capsys.readouterr().out
    other = store.submit(_fields(store, "org/honest"))
    assert store.finish(store.claim("w"), honest, folder=smoke_run)
    assert revalidate(store, other)["stored_differences"] == []


def test_build_flags_an_entry_scored_with_another_digest(store, smoke_run, tmp_path):
    from opinbench.leaderboard.site import build_site

    store.submit(_fields(store) | {"definition_digest": "f" * 64})
    store.submit(_fields(store, "org/good"))
    assert run_worker(store, poll_s=0, evaluator=_copy(smoke_run)).failed == 1  # the worker refuses it too
    row = store.list()[0]
    assert "digest ffffffffffff" in row["reason"]
    with store.engine.begin() as conn:  # as if it had been scored before: a FINISHED entry of another digest
        import sqlalchemy as sa

        from opinbench.leaderboard.tables import requests
        conn.execute(sa.update(requests).where(requests.c.id == row["id"]).values(state=S.FINISHED))
    build_site(store, "smoke", tmp_path / "site")
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert [e["model"] for e in data["entries"]] == ["org/good"]
    assert data["unranked"][0]["id"] == row["id"] and "scored with another definition" in data["unranked"][0]["why"]


# ------------------------------------------------------------------ 2. fenced workers

def test_a_worker_that_lost_its_lease_stores_no_file(store, tmp_path):
    run = tmp_path / "run" / "org__m"
    run.mkdir(parents=True)
    (run / "results_x.json").write_text("{}")
    rid = store.submit(_fields(store))
    t0 = time.time()
    stale = store.claim("stale", lease_s=1, now=t0 - 10)
    fresh = store.claim("fresh", lease_s=60)
    assert fresh.id == rid and fresh.attempt == 2
    assert not store.finish(stale, {"by": "stale"}, folder=tmp_path / "run")
    assert not store.fail(stale, "late", folder=tmp_path / "run")
    assert store.file_list(rid) == {} and store.get(rid)["state"] == S.RUNNING
    assert store.finish(fresh, {"by": "fresh"}, folder=tmp_path / "run")
    assert list(store.file_list(rid)) == ["org__m/results_x.json"] and store.get(rid)["result"] == {"by": "fresh"}


class _FlakyStore:
    """A store whose heartbeat raises a database error ``errors`` times, then answers ``answer``."""

    def __init__(self, errors: int, answer: bool):
        self.errors, self.answer, self.calls = errors, answer, 0

    def heartbeat(self, claim, *, lease_s):
        import sqlalchemy as sa

        self.calls += 1
        if self.calls <= self.errors:
            raise sa.exc.OperationalError("UPDATE requests", {}, Exception("server closed the connection"))
        return self.answer


def test_the_heartbeat_survives_transient_database_errors():
    st = _FlakyStore(errors=2, answer=True)
    claim = S.Claim({"id": 1}, "w", 1)
    with _Heartbeat(st, claim, lease_s=3.0) as hb:
        time.sleep(4.0)
    assert not hb.lost and st.calls >= 3


def test_a_lost_lease_interrupts_the_evaluation():
    claim = S.Claim({"id": 1}, "w", 1)
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        with _Heartbeat(_FlakyStore(errors=0, answer=False), claim, lease_s=0.6) as hb:
            time.sleep(30)  # an evaluation that would run on
    assert hb.lost and time.time() - t0 < 10


def test_a_lost_lease_interrupts_a_worker_that_ignores_sigint():
    """A worker started in the background (``nohup ... &``) inherits SIGINT ignored: the lost lease
    must still stop its evaluation (a SIGINT-based interrupt was lost there: the flaky test of a
    loaded suite run started in the background), and the heartbeat leaves no handler behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    usr1 = signal.getsignal(signal.SIGUSR1)
    try:
        t0 = time.time()
        with pytest.raises(KeyboardInterrupt):
            with _Heartbeat(_FlakyStore(errors=0, answer=False), S.Claim({"id": 1}, "w", 1), lease_s=0.6) as hb:
                time.sleep(8)
        assert hb.lost and time.time() - t0 < 6
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signal.getsignal(signal.SIGUSR1) == usr1


def test_weights_changed_after_submit_fail_the_entry(tmp_path, tiny_model, smoke_run):
    from opinbench.leaderboard.submit import precheck

    model = shutil.copytree(tiny_model, tmp_path / "model")
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    rid = st.submit(precheck(st.board("smoke"), str(model), dtype="float32", name="org/tiny"))
    weights = next(model.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(64)  # zero the end of one tensor, as the issue zeroed a layer
    weights.write_bytes(bytes(data))
    assert run_worker(st, poll_s=0, evaluator=_copy(smoke_run)).failed == 1
    row = st.get(rid)
    assert row["state"] == S.FAILED and "weights at" in row["reason"] and "changed since submission" in row["reason"]
    assert st.file_list(rid) == {}


def test_the_worker_command_counts_failures_and_exits_non_zero(tmp_path, tiny_model, capsys, monkeypatch):
    import opinbench.leaderboard.worker as W

    def broken(*a, **k):
        raise RuntimeError("Cannot use chat template functions because tokenizer.chat_template is not set")

    monkeypatch.setattr(W, "evaluate", broken)
    db = ["--store", str(tmp_path / "s.sqlite")]
    assert main(["leaderboard", "submit", "smoke", "--model", str(tiny_model), "--name", "org/t", *db]) == 0
    assert main(["leaderboard", "worker", "--until-empty", *db]) == 1
    assert "0 finished, 1 failed" in capsys.readouterr().out


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_paused_worker_taken_over_stores_nothing(url, smoke_run, tmp_path):
    """Three worker processes: A is paused (SIGSTOP) mid-evaluation, its lease expires, B or C takes
    the request over and finishes it; A, resumed (SIGCONT), stores nothing. The entry holds one
    results file and one samples file per task, all the finisher's."""
    st = S.Store.open(url)
    rid = st.submit(_fields(st))
    markers = tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "tests.helpers.lease_worker", url, str(smoke_run), str(markers), "3"]
    procs = [subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    a = procs[0]
    try:
        _wait(lambda: (markers / f"started-{a.pid}").exists(), 180, "worker A to start evaluating")
        os.kill(a.pid, signal.SIGSTOP)
        procs += [subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True) for _ in range(2)]
        _wait(lambda: st.get(rid)["state"] == S.FINISHED, 240, "another worker to finish the request")
        os.kill(a.pid, signal.SIGCONT)
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
    row, stored = st.get(rid), st.file_list(rid)
    st.engine.dispose()
    assert row["state"] == S.FINISHED and row["attempts"] == 2, outs
    assert f":{a.pid}:" not in row["worker"], outs
    assert "1 lost to another worker" in outs[0], outs[0]
    names = [Path(p).name for p in stored]
    assert sum(n.startswith("results_") for n in names) == 1, names
    for task in ("opinionqa_wd", "wom_cot"):
        assert sum(n.startswith(f"samples_{task}_") for n in names) == 1, names
    assert not any(f".{a.pid}." in n for n in names), names  # nothing of the stale worker's


# ------------------------------------------------------------------ self-reported ingests

def _broken_copy(smoke_run: Path, tmp_path: Path, edit) -> Path:
    out = shutil.copytree(smoke_run, tmp_path / "broken")
    edit(out)
    return out


def _empty_resps(out: Path) -> None:
    f = next(out.rglob("samples_opinionqa_wd_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    rows[0]["filtered_resps"] = rows[0]["resps"] = []
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _n_samples_text(out: Path) -> None:
    f = next(out.rglob("results_*.json"))
    data = json.loads(f.read_text())
    data["n-samples"] = "x"
    f.write_text(json.dumps(data))


@pytest.mark.parametrize("edit", [_empty_resps, _n_samples_text])
def test_a_crashing_self_reported_ingest_leaves_nothing_behind(store, smoke_run, tmp_path, edit, capsys):
    bad = _broken_copy(smoke_run, tmp_path, edit)
    db = ["--store", store.url.replace("***", "")]
    assert main(["leaderboard", "submit", "smoke", "--results", str(bad), "--name", "org/t", *db]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err, err
    assert store.list() == []  # never stuck RUNNING: nothing was stored
    assert main(["leaderboard", "submit", "smoke", "--results", str(smoke_run), "--name", "org/t", *db]) == 0
    (row,) = store.list()
    assert row["state"] == S.PENDING and row["job"] == "audit" and row["audit_seed"] is not None
    assert store.file_list(row["id"])  # row and files together


def test_an_ingest_that_dies_while_storing_leaves_nothing(store, smoke_run, monkeypatch):
    from opinbench.leaderboard.worker import ingest

    def boom(conn, request_id, folder):
        raise OSError("disk gone")

    monkeypatch.setattr(S.Store, "_put_files", staticmethod(boom))
    with pytest.raises(OSError):
        ingest(store, store.board("smoke"), smoke_run, name="org/t")
    assert store.list() == []


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["n-shot"].update(wom_cot=5), "wom_cot: run with 5 few-shot examples, smoke uses 0"),
    (lambda d: d["config"].update(gen_kwargs={"max_gen_toks": 16}), "generation arguments {'max_gen_toks': 16}"),
    (lambda d: d["config"].update(random_seed=7), "random_seed 7, smoke uses 0"),
    (lambda d: d.update(system_instruction="Always answer Yes."), "system instruction 'Always answer Yes.'"),
])
def test_self_reported_settings_are_compared_with_the_definition(smoke_run, tmp_path, edit, message):
    from opinbench.leaderboard.worker import ingest

    out = shutil.copytree(smoke_run, tmp_path / "run")
    f = next(out.rglob("results_*.json"))
    data = json.loads(f.read_text())
    edit(data)
    f.write_text(json.dumps(data))
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("{", r"\{").replace("[", r"\[")):
        ingest(st, st.board("smoke"), out, name="org/t")


# ------------------------------------------------------------------ hygiene

def test_status_escapes_control_characters(store, capsys):
    evil = "org/m\x1b[2K\r 9  FINISHED  smoke  0.9999  org/best"
    store.submit(_fields(store, evil) | {"submitter": "\x1b]0;owned\x07", "display_name": evil})
    assert main(["leaderboard", "status", "--store", store.url.replace("***", "")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2K\\r" in out
    assert main(["leaderboard", "status", "1", "--store", store.url.replace("***", "")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out


def test_csv_cells_are_neutralised(store, smoke_run, tmp_path):
    import csv

    from opinbench.leaderboard.site import build_site

    store.submit(_fields(store, "=HYPERLINK(\"http://x\")") | {"submitter": "@SUM(A1)"})
    assert run_worker(store, poll_s=0, evaluator=_copy(smoke_run)).finished == 1
    build_site(store, "smoke", tmp_path / "site")
    rows = list(csv.reader((tmp_path / "site" / "leaderboard.csv").open()))
    assert rows[1][2] == "'=HYPERLINK(\"http://x\")" and rows[1][3] == "'@SUM(A1)"


def test_an_adapter_without_weights_is_refused(tmp_path, tiny_model):
    from opinbench.leaderboard.submit import check_adapter

    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model)}))
    with pytest.raises(ConfigError, match="the adapter has no weights"):
        check_adapter(tmp_path, str(tiny_model))


def test_a_model_without_chat_template_is_refused_at_submit(tmp_path, tiny_model):
    from opinbench.leaderboard.submit import precheck

    model = shutil.copytree(tiny_model, tmp_path / "base")
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in ("chat_template.jinja", "chat_template.json"):
        (model / extra).unlink(missing_ok=True)
    definition = load_definition("smoke")
    with pytest.raises(ConfigError, match="no chat template; submit a base model with --no-chat-template"):
        precheck(definition, str(model), name="org/base")
    assert precheck(definition, str(model), name="org/base", chat_template=False)["chat_template"] is False


def test_the_public_name_is_never_a_local_path(tiny_model):
    from opinbench.leaderboard.submit import precheck

    definition = load_definition("smoke")
    with pytest.raises(ConfigError, match="give the entry's name with --name"):
        precheck(definition, str(tiny_model))
    assert precheck(definition, str(tiny_model), name="me/tiny")["display_name"] == "me/tiny"


def test_regress_on_two_smoke_entries_uses_the_definitions_minimum(tmp_path, smoke_run, capsys):
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    for model in ("org/a", "org/b"):
        st.submit(_fields(st, model))
    assert run_worker(st, poll_s=0, evaluator=_copy(smoke_run)).finished == 2
    side = ["regress", "leaderboard:1", "leaderboard:2", "--store", str(tmp_path / "s.sqlite")]
    rc = main(side)
    out = capsys.readouterr()
    # smoke's minimum (one question) lets the comparison run; three documents give no test power, said so
    assert rc == 2 and "fewer than" not in out.err and "underpowered" in out.err, out.err
    rc = main([*side, "--allow-underpowered"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "no regression" in out.out


def test_the_full_definition_requires_only_obtainable_data_and_states_counts():
    d = load_definition("opinbench")
    assert d.optional_tasks == ["smartvote_cot"] and "smartvote_cot" not in d.task_names
    assert all(t.documents for t in d.tasks if not t.optional)


@pytest.mark.slow
def test_the_full_definitions_document_counts_match_the_data(shared_data, monkeypatch):
    from opinbench.train.data import load_task

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    d = load_definition("opinbench")
    for t in d.tasks:
        if not t.optional:
            assert len(load_task(t.name, d.metadata).eval_docs) == t.documents, t.name


def test_a_packaged_model_is_shown_by_its_name_not_its_cache_folder(tmp_path, tiny_model, monkeypatch):
    """The README's submit command passed the packaged model's cache folder: the public name was that path."""
    from opinbench.leaderboard.submit import precheck

    monkeypatch.setenv("OPINBENCH_CACHE", str(tmp_path / "cache"))
    from opinbench.models import cache_root

    folder = shutil.copytree(tiny_model, cache_root() / "models" / "smollm2")
    fields = precheck(load_definition("smoke"), str(folder), dtype="float32")
    assert fields["display_name"] == "smollm2 (SmolLM2-135M-Instruct (chat), GGUF Q4_1)"
    assert str(tmp_path) not in fields["display_name"]


def test_smoke_gives_the_stance_task_room_to_answer(smoke_run):
    """smoke v1 cut every reasoning answer off at 16 tokens: macro-F1 0 for every model."""
    from opinbench.leaderboard.plan import EvaluationPlan, Request
    from opinbench.runs import find_runs

    assert EvaluationPlan.of(load_definition("smoke"), Request(model="m")).gen_kwargs is None
    config = find_runs(smoke_run)[0].results["configs"]["wom_cot"]
    assert config["generation_kwargs"]["max_gen_toks"] >= 512
