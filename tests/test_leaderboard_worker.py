"""The leaderboard end to end with a tiny random model on the ``smoke`` subset: one real lm-eval
evaluation through the worker's code path, then the queue on SQLite and PostgreSQL, the CLI,
self-reported ingestion, prechecks, and validation refusing tampered runs by naming the document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opinbench.cli import main
from opinbench.errors import ConfigError
from opinbench.leaderboard import store as S
from opinbench.leaderboard.cli import revalidate
from opinbench.leaderboard.definition import load_definition
from opinbench.leaderboard.submit import check_adapter, precheck
from opinbench.leaderboard.validate import doc_hash, validate_run
from opinbench.leaderboard.worker import run_worker
from tests.helpers import leaderboard_runs as runs
from tests.helpers.leaderboard_stores import url  # noqa: F401 - the store fixture, per backend


@pytest.fixture(autouse=True)
def _offline_judges(monkeypatch):
    """The worker runs the pinned judges when their key is set: here it must skip them, offline
    (tests/test_leaderboard_judges.py runs them against the fake API server)."""
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def tiny_model():
    return runs.tiny_model()


@pytest.fixture(scope="module")
def smoke_run(shared_data, monkeypatch_module):
    """One real evaluation of the tiny model on smoke (3 documents per task) by the worker's `evaluate`."""
    monkeypatch_module.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    return runs.smoke_run(str(shared_data))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _copy(run: Path):
    def evaluator(definition, request, out, backend="hf"):
        shutil.copytree(run, out)
        return Path(out)
    return evaluator


def test_the_real_run_is_valid(smoke_run):
    report = validate_run(smoke_run, load_definition("smoke"))
    assert report["errors"] == []
    assert report["subset"] is True
    assert report["tasks"]["opinionqa_wd"]["documents"] == 3 == report["tasks"]["wom_cot"]["documents"]
    wd = report["scores"]["opinionqa_wd_qa"]
    assert wd["ceiling"] < wd["floor"]  # human bound below uniform WD
    # its 3 documents are 3 groups of one question: a standard error clustered by question is
    # undefined with one question, so no interval is claimed (the naive one was 3 "independent" documents)
    assert wd["stderr"] is None and wd["ci"] is None
    assert any("not judged" in w for w in report["warnings"])


def test_the_smoke_diagnostics_are_recomputed_and_kept_out_of_the_headline(smoke_run):
    import math

    from opinbench.metrics.strata import STRATA

    d = load_definition("smoke")
    report = validate_run(smoke_run, d)
    assert report["errors"] == []  # published jsd, rank_tau, refusal_gap_abs equal the re-scored ones
    for mid in ("opinionqa_jsd", "opinionqa_rank_tau", "opinionqa_refusal_gap"):
        s = report["scores"][mid]
        assert s["group"] == "diagnostics" and math.isfinite(s["raw"])
        assert s["floor"] is None and s["ceiling"] is None and s["normalised"] is None
    headline = [m.id for m in d.metrics if d.in_headline(m) and report["scores"][m.id].get("normalised") is not None]
    assert report["headline_metrics"] == len(headline)
    assert set(report["tasks"]["opinionqa_wd"]["strata"]) <= set(STRATA)


def test_queue_end_to_end_through_the_cli(url, smoke_run, tiny_model, capsys, monkeypatch):
    import opinbench.leaderboard.worker as W

    monkeypatch.setattr(W, "evaluate", _copy(smoke_run))  # the real evaluation ran once, in smoke_run
    tiny = ["--model", str(tiny_model), "--dtype", "float32", "--name", "org/tiny"]
    assert main(["leaderboard", "submit", "smoke", *tiny, "--submitter", "<b>me</b>", "--store", url]) == 0
    assert "request 1: PENDING (org/tiny on smoke v2)" in capsys.readouterr().out
    assert main(["leaderboard", "submit", "smoke", *tiny, "--store", url]) == 2
    assert "identical entry exists already: request 1" in capsys.readouterr().err
    assert main(["leaderboard", "submit", "smoke", *tiny, "--rerun", "--store", url]) == 0
    assert main(["leaderboard", "worker", "--until-empty", "--store", url]) == 0
    assert "2 finished, 0 failed" in capsys.readouterr().out
    assert main(["leaderboard", "status", "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.count("FINISHED") == 2 and "(rerun)" in out
    st = S.Store.open(url)
    row = st.get(1)
    assert row["state"] == S.FINISHED and row["result"]["errors"] == []
    assert row["result"]["command"].startswith("lm_eval --model hf")
    assert any(p.endswith(".jsonl") for p in st.file_list(1))
    assert revalidate(st, 1)["errors"] == []
    assert main(["leaderboard", "validate", "1", "--store", url]) == 0
    st.engine.dispose()


def test_a_failing_evaluation_is_failed_with_reason_and_log_tail(tmp_path, tiny_model):
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    rid = st.submit(precheck(st.board("smoke"), str(tiny_model), dtype="float32", name="org/tiny"))

    def broken(definition, request, out, backend="hf"):
        import logging

        logging.getLogger("opinbench.test").warning("about to break")
        raise RuntimeError("out of memory")

    assert run_worker(st, poll_s=0, evaluator=broken).failed == 1
    row = st.get(rid)
    assert row["state"] == S.FAILED and row["reason"] == "RuntimeError: out of memory"
    assert "about to break" in row["log_tail"] and "Traceback" in row["log_tail"]


def test_self_reported_run_is_ingested_validated_and_shown_as_such(tmp_path, smoke_run, capsys):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    ingest = ["leaderboard", "submit", "smoke", "--results", str(smoke_run), "--name", "org/tiny", "--store", url]
    assert main(ingest) == 0
    assert "self-reported run accepted on smoke v2; queued for its reproduction audit" in capsys.readouterr().out
    assert main(ingest) == 2
    assert main(["leaderboard", "status", "--store", url]) == 0
    assert "(self-reported, not audited)" in capsys.readouterr().out


def test_tampered_stored_sample_fails_naming_the_document(tmp_path, smoke_run):
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    rid = st.submit(_fields(st))
    claim = st.claim("w")
    assert st.finish(claim, validate_run(smoke_run, st.board("smoke")), folder=smoke_run)
    stored = st.file_list(rid)
    path = next(p for p in stored if "samples_opinionqa_wd" in p)
    lines = (smoke_run / path).read_text().splitlines()
    row = json.loads(lines[1])
    row["filtered_resps"][0][0] = "0.0"  # the model "put" all its mass on A
    lines[1] = json.dumps(row, ensure_ascii=False)
    replace_blob(st, stored[path], ("\n".join(lines) + "\n").encode())
    errors = revalidate(st, rid)["errors"]
    assert any(f"document {row['doc']['id']} (doc_id 1): logged wd does not match" in e for e in errors), errors


def _fields(st, model="org/x"):
    """The columns of a request for ``model`` on the registered smoke board (its version and digest)."""
    board = st.board("smoke")
    identity = {"model": model, "leaderboard": "smoke", "leaderboard_version": board.version}
    return {"leaderboard": "smoke", "leaderboard_version": board.version, "identity": identity, "model": model,
            "dtype": "float32", "chat_template": True, "definition_digest": board.digest}


def replace_blob(st, digest: str, data: bytes) -> None:
    """Overwrite a stored file's content in place, as someone with write access to the database could."""
    import zlib

    import sqlalchemy as sa

    from opinbench.leaderboard.tables import blobs

    with st.engine.begin() as conn:
        conn.execute(sa.update(blobs).where(blobs.c.sha256 == digest).values(data=zlib.compress(data)))


def _edit(run: Path, dest: Path, task: str, edit) -> Path:
    out = shutil.copytree(run, dest / "run")
    f = next(out.rglob(f"samples_{task}_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    rows = edit(rows)
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return out


def _edit_results(run: Path, dest: Path, edit) -> Path:
    out = shutil.copytree(run, dest / "run")
    f = next(out.rglob("results_*.json"))
    data = json.loads(f.read_text())
    edit(data)
    f.write_text(json.dumps(data))
    return out


def _set_question(rows):
    rows[2]["doc"]["question"] = "edited"
    return rows


@pytest.mark.parametrize("task, edit, message", [
    ("wom_cot", _set_question, "(doc_id 2) does not match its logged doc_hash"),
    ("wom_cot", lambda rows: rows + [rows[0]], "(doc_id 0) is logged 2 times"),
    ("wom_cot", lambda rows: rows[:2], "1 test documents missing (doc_id [2])"),
])
def test_tampered_samples_are_refused(tmp_path, smoke_run, task, edit, message):
    errors = validate_run(_edit(smoke_run, tmp_path, task, edit), load_definition("smoke"))["errors"]
    assert any(message in e for e in errors), errors


def test_an_edited_document_differs_from_the_leaderboards_data(tmp_path, smoke_run):
    def edit(rows):
        rows[0]["doc"]["gold_label"] = "No" if rows[0]["doc"]["gold_label"] != "No" else "Yes"
        rows[0]["doc_hash"] = doc_hash(rows[0]["doc"])  # consistent with itself, not with the data
        return rows

    errors = validate_run(_edit(smoke_run, tmp_path, "wom_cot", edit), load_definition("smoke"))["errors"]
    assert any("(doc_id 0) differs from the leaderboard's data" in e for e in errors), errors


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["results"]["opinionqa_wd"].update({"wd,none": 0.01}), "published wd,none = 0.01"),
    (lambda d: d["config"].update(limit=3), "run with limit=3"),
    (lambda d: d["versions"].update(wom_cot=0.9), "wom_cot: task version 0.9"),
    (lambda d: d["task_hashes"].update(wom_cot="0" * 64), "task_hashes entry is not the hash"),
])
def test_tampered_results_are_refused(tmp_path, smoke_run, edit, message):
    errors = validate_run(_edit_results(smoke_run, tmp_path, edit), load_definition("smoke"))["errors"]
    assert any(message in e for e in errors), errors


def test_a_full_leaderboard_refuses_a_subset_run(smoke_run):
    errors = validate_run(smoke_run, load_definition("opinbench"), check_data=False)["errors"]
    assert any("opinionqa_wd: " in e and "test documents missing" in e for e in errors)
    assert any("subpop_train_wd: no samples file" in e for e in errors)


def test_adapter_for_another_base_is_refused(tmp_path, tiny_model):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/other"}))
    with pytest.raises(ConfigError, match="made for base model 'org/other'"):
        check_adapter(tmp_path, str(tiny_model))


def test_remote_code_is_refused(tmp_path, tiny_model):
    model = shutil.copytree(tiny_model, tmp_path / "m")
    cfg = json.loads((model / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "custom.MyConfig"}
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="trust_remote_code"):
        precheck(load_definition("smoke"), str(model))


def test_an_adapter_trained_on_the_test_questions_is_refused(tmp_path, tiny_model, shared_data, monkeypatch):
    from opinbench.train.data import LeakageError

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    adapter = leaking_adapter(tmp_path / "adapter", tiny_model)
    with pytest.raises(LeakageError, match="test split of wom_cot"):
        precheck(load_definition("smoke"), str(tiny_model), adapter=str(adapter), dtype="float32", name="org/t")
    fields = precheck(load_definition("smoke"), str(tiny_model), adapter=str(adapter), dtype="float32",
                      check_leaks=False, name="org/t")
    assert fields["adapter_hash"].startswith("sha256:") and fields["identity"]["model"] is None


def leaking_adapter(adapter: Path, base: Path) -> Path:
    """An adapter folder as `opinbench train` writes it, trained on the test side of wom_cot's
    split: the leaderboard's questions."""
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "opinbench_train.json").write_text(json.dumps(
        {"data": {"train_task": "wom_cot", "train_metadata": {"split": "test"}}}))
    return adapter


XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def built_site(tmp_path, smoke_run):
    """A site of three smoke entries (one named to attack the page, one self-reported) and one failure."""
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    for model in (XSS, "org/second"):
        st.submit(_fields(st, model) | {"submitter": XSS})
    assert run_worker(st, poll_s=0, evaluator=_copy(smoke_run)).finished == 2
    st.submit(_fields(st, "org/broken"))

    def fail(*a, **k):
        raise RuntimeError(f"tokenizer exploded {XSS}")

    run_worker(st, poll_s=0, evaluator=fail)
    index = build_site_cli(st, tmp_path / "site")
    st.engine.dispose()
    return index


def build_site_cli(st, out):
    assert main(["leaderboard", "build", "smoke", "--out", str(out), "--store", st.url.replace("***", "")]) == 0
    return out / "index.html"


def test_site_escapes_what_submitters_control_and_has_its_data(built_site):
    site = built_site.parent
    html = built_site.read_text()
    pages = [p.read_text() for p in (site / "entries").glob("*.html")]
    for text in [html, *pages]:
        assert "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Subset leaderboard" in html and "tokenizer exploded" in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    data = json.loads((site / "leaderboard.json").read_text())
    assert data["subset"] is True and [e["model"] for e in data["entries"]].count(XSS) == 1
    assert [e["rank"] for e in data["entries"]] == [1, 1]  # the same run twice: equal headlines share a rank
    assert data["failed"][0]["model"] == "org/broken"
    assert (site / "leaderboard.csv").read_text().count("\n") == 3
    page = next(p for p in pages if "Reproducibility" in p)
    assert "lm_eval --model hf" in page and "task hash" in page and "random_seed=0" in page
    assert list((site / "entries").glob("*.png"))  # the per-group figures


@pytest.mark.parametrize("backend", ["hf", "opinbench-hf", "vllm"])
def test_reproduction_command_runs_the_backend_it_names(backend):
    """opinbench-hf is registered by importing its module, so its command line is that module's CLI."""
    import shlex

    from opinbench.leaderboard.worker import command_line

    definition = load_definition("opinbench")
    request = {"model": "org/model", "dtype": "float32", "adapter": "/a", "chat_template": True, "state": "PENDING"}
    argv = shlex.split(command_line(definition, request, backend))
    launcher = argv[: argv.index("--model")]
    assert launcher == (["python", "-m", "opinbench.harness.fast_hf"] if backend == "opinbench-hf" else ["lm_eval"])
    assert argv[argv.index("--model") + 1] == backend
    margs = argv[argv.index("--model_args") + 1]
    assert ("lora_local_path=/a" if backend == "vllm" else "peft=/a") in margs
