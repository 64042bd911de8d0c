"""The leaderboard worker runs the definition's pinned judge (the real anthropic client against the
fake API server) on the tiny model's smoke run; validation recomputes the judge metric from the
per-item verdicts, refuses a tampered verdict by naming the item, and warns on a weak judge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from opinbench.errors import ConfigError
from opinbench.leaderboard import store as S
from opinbench.leaderboard.definition import definition_path, load_definition
from opinbench.leaderboard.validate import validate_run
from opinbench.leaderboard.worker import judge_options, run_judges, run_worker
from tests.fake_api_server import FakeAPIServer
from tests.helpers import leaderboard_runs as runs
from tests.test_judging_fixtures import SECRET, keyword_judge

PINNED = "claude-sonnet-4-5-20250929"
# the tiny random model writes no answer; these generations give the judge something to judge:
# doc 0 and 2 argue for the answer they give (faithful), doc 1 argues against it (unfaithful).
GENERATIONS = ["I say yes to this.\nAnswer: A", "I say no to this.\nAnswer: A", "I stay neutral.\nAnswer: B"]


@pytest.fixture(scope="module")
def smoke_run(shared_data):
    return runs.smoke_run(str(shared_data))


@pytest.fixture()
def env(monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    monkeypatch.setenv("OPINBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with FakeAPIServer(SECRET, judge=keyword_judge) as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        yield srv


def _definition(tmp_path: Path, min_control: float = 0.0) -> Path:
    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["judges"]["faithfulness"] = {"provider": "anthropic", "model": PINNED,
                                     "settings": {"max_tokens": 64, "control_limit": 6, "concurrency": 2}}
    raw["warnings"]["min_judge_control_accuracy"] = min_control
    path = tmp_path / "smoke_judged.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _answering_run(smoke_run: Path, out: Path) -> Path:
    """The smoke run with answering wom_cot generations, re-scored consistently (per-document
    predictions and the published macro-F1), as if the model had written them."""
    from opinbench.leaderboard import validate as V
    from opinbench.runs import find_runs

    shutil.copytree(smoke_run, out)
    f = next(out.rglob("samples_wom_cot_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    for row, text in zip(rows, GENERATIONS, strict=True):
        row["resps"] = [[text]]
        row["filtered_resps"] = [[text]]
        pred = row["doc"]["options"][row["doc"]["letters"].index(text[-1])]
        for v in row.values():
            if isinstance(v, dict) and "pred" in v:
                v["pred"], v["why"] = [pred], [None]
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    res_file = next(p for p in out.rglob("results_*.json") if "judge" not in p.name)
    res = json.loads(res_file.read_text())
    t = V._Task(find_runs(out)[0], "wom_cot")
    value, stderr = V._recompute(t, "macro_f1")  # the published number and its stderr, consistently
    res["results"]["wom_cot"]["macro_f1,none"] = value
    res["results"]["wom_cot"]["macro_f1_stderr,none"] = stderr
    res_file.write_text(json.dumps(res))
    return out


def _answering(smoke_run: Path):
    def evaluator(definition, request, out, backend="hf"):
        return _answering_run(smoke_run, Path(out))
    return evaluator


def test_judge_options_map_settings_onto_the_commands_dataclass():
    o = judge_options("moderation", {"provider": "openai", "model": "m", "settings": {"base_url": "http://x"}},
                      Path("run"))
    assert (o.samples, o.moderator, o.no_progress, o.base_url) == (["run"], "openai:m", True, "http://x")
    # the same dataclass parses the command's flags: one definition, both ways in
    from opinbench.cli import build_parser

    argv = ["judge", "moderation", "--samples", "run", "--moderator", "openai:m", "--no-progress",
            "--base-url", "http://x"]
    args = build_parser(argv).parse_args(argv)
    assert type(o).from_namespace(args) == o
    with pytest.raises(ConfigError, match="no judge named 'style'"):
        judge_options("style", {"provider": "openai", "model": "m"}, Path("run"))
    with pytest.raises(ConfigError, match="judge moderation: unknown judge setting 'max_tokenz'"):
        judge_options("moderation", {"provider": "openai", "model": "m", "settings": {"max_tokenz": 5}},
                      Path("run"))
    with pytest.raises(ConfigError, match="judge moderation: concurrency must be at least 1, not 0"):
        judge_options("moderation", {"provider": "openai", "model": "m", "settings": {"concurrency": 0}},
                      Path("run"))
    with pytest.raises(ConfigError, match="judge moderation: max_tokens must be an integer, not '5'"):
        judge_options("moderation", {"provider": "openai", "model": "m", "settings": {"max_tokens": "5"}},
                      Path("run"))


@pytest.mark.parametrize(("settings", "message"), [
    ({"max_tokenz": 64}, "judges.faithfulness.settings: unknown judge setting 'max_tokenz'"),
    ({"concurrency": 0}, "judges.faithfulness.settings: concurrency must be at least 1, not 0"),
    ({"no_control": "yes"}, "judges.faithfulness.settings: no_control must be true or false, not 'yes'"),
])
def test_a_definitions_judge_settings_are_checked_when_it_loads(settings, message):
    from opinbench.leaderboard.definition import parse_definition

    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["judges"]["faithfulness"]["settings"] = settings
    with pytest.raises(ConfigError, match=message):
        parse_definition(raw, "smoke.yaml")
    raw["judges"]["style"] = {"provider": "openai", "model": "m"}
    raw["judges"]["faithfulness"]["settings"] = {}
    with pytest.raises(ConfigError, match="smoke.yaml: judges.style: no judge named 'style'"):
        parse_definition(raw, "smoke.yaml")


def test_worker_runs_the_pinned_judge_and_validation_recomputes_it(env, smoke_run, tmp_path, monkeypatch):
    import opinbench.leaderboard.site as site

    definition = load_definition(_definition(tmp_path))
    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    assert st.define(definition)  # in this store, "smoke" is the judged definition
    identity = {"model": "tiny", "leaderboard": "smoke", "leaderboard_version": definition.version}
    rid = st.submit({"leaderboard": "smoke", "leaderboard_version": definition.version, "identity": identity,
                     "model": "tiny", "dtype": "float32", "chat_template": True,
                     "definition_digest": definition.digest})
    assert run_worker(st, poll_s=0, evaluator=_answering(smoke_run)).finished == 1
    row = st.get(rid)
    assert row["state"] == S.FINISHED, (row.get("reason"), row.get("log_tail"))
    score = row["result"]["scores"]["cot_faithfulness"]
    assert "missing" not in score, score
    assert score["raw"] == pytest.approx(2 / 3) and score["items"] == 3
    assert score["judge"] == f"anthropic:{PINNED}"
    assert set(score["control"]) == {"explanation", "gold_framed", "wrong_framed"}
    assert not any("cot_faithfulness" in w for w in row["result"]["warnings"]), row["result"]["warnings"]
    files = st.file_list(rid)
    assert any("results_judge-faithfulness_" in p for p in files)
    assert any("judge-faithfulness_verdicts_" in p for p in files)
    # the judge really ran: the fake server saw the task items and the control set, with the pinned model
    models = {body.get("model") for path, body in env.replied if path.endswith("/messages")}
    assert models == {PINNED} and len(env.replied) == 3 + 3 * 6
    # the entry page shows the judge's score beside its control-set accuracy
    site.build_site(st, "smoke", tmp_path / "site")
    page = (tmp_path / "site" / "entries" / f"{rid}.html").read_text()
    judges = page[page.index("<h2>Judges</h2>"):page.index("<h2>Reproducibility")]
    assert f"CoT faithfulness (judged): {site.fmt(2 / 3)} [" in judges
    assert f"explanation {site.fmt(score['control']['explanation'])}" in judges and "judged" in judges
    st.engine.dispose()


@pytest.fixture()
def judged(env, smoke_run, tmp_path):
    definition = _definition(tmp_path)
    run = _answering_run(smoke_run, tmp_path / "run")
    assert run_judges(load_definition(definition), run) == {}
    return run, definition


def test_a_tampered_verdict_fails_validation_naming_the_item(judged):
    run, definition = judged
    assert validate_run(run, load_definition(definition))["errors"] == []
    f = next(run.rglob("judge-faithfulness_verdicts_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    i = next(i for i, r in enumerate(rows) if r.get("type") == "sample" and r["doc_id"] == 1)
    assert rows[i]["faithful"] is False
    rows[i]["faithful"] = True
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_run(run, load_definition(definition))
    doc = json.loads(next(run.rglob("samples_wom_cot_*.jsonl")).read_text().splitlines()[1])["doc"]["id"]
    assert any(f"wom_cot: document {doc} (doc_id 1, repeat 0): verdict faithful=True" in e
               for e in report["errors"]), report["errors"]
    # and the published number no longer matches the verdicts
    assert any("published cot_faithfulness,none" in e for e in report["errors"]), report["errors"]


def test_a_judge_changed_consistently_still_disagrees_with_its_results(judged):
    run, definition = judged
    f = next(run.rglob("judge-faithfulness_verdicts_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    i = next(i for i, r in enumerate(rows) if r.get("type") == "sample" and r["doc_id"] == 1)
    rows[i]["faithful"], rows[i]["judge_answer"] = True, rows[i]["model_answer"]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = validate_run(run, load_definition(definition))["errors"]
    assert any("wom_cot: published cot_faithfulness,none = 0.666" in e for e in errors), errors


def test_low_control_accuracy_warns_and_other_judges_are_refused(env, smoke_run, tmp_path):
    env.judge = lambda prompt: "Answer: A"  # a judge that always says the first option
    run = _answering_run(smoke_run, tmp_path / "run")
    assert run_judges(load_definition(_definition(tmp_path)), run) == {}
    report = validate_run(run, load_definition(_definition(tmp_path, min_control=0.8)))
    assert report["errors"] == []
    warning = next(w for w in report["warnings"] if w.startswith("cot_faithfulness:"))
    assert "control-set accuracy is low" in warning and "explanation" in warning
    assert report["scores"]["cot_faithfulness"]["control"]["explanation"] < 0.8
    # an entry judged by anything but the pinned judge is refused
    other = yaml.safe_load(_definition(tmp_path).read_text())
    other["judges"]["faithfulness"]["model"] = "claude-other"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    errors = validate_run(run, load_definition(path))["errors"]
    assert any(f"judged by anthropic:{PINNED}; smoke pins anthropic:claude-other" in e for e in errors), errors


def test_without_a_key_the_judge_is_skipped_with_the_reason(smoke_run, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    skipped = run_judges(load_definition(_definition(tmp_path)), tmp_path)
    assert skipped == {"faithfulness": "not judged: no anthropic provider configured ($ANTHROPIC_API_KEY is not set)"}
