"""The reproduction audit of self-reported runs, with a real (tiny, random) model on CPU: an honest
run is reproduced k/k and ranked; a run forged consistently (generations, per-document values and
totals edited to agree, so that validation passes) is caught and never ranked."""

from __future__ import annotations

import json

import pytest
import yaml

from opinbench.leaderboard import audit as A
from opinbench.leaderboard import store as S
from opinbench.leaderboard.definition import definition_path, parse_definition
from opinbench.leaderboard.validate import validate_run
from opinbench.leaderboard.worker import ingest, run_worker
from tests.test_leaderboard_judges import _answering_run
from tests.test_leaderboard_worker import monkeypatch_module, smoke_run, tiny_model  # noqa: F401


@pytest.fixture(autouse=True)
def _offline_judges(monkeypatch):
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)


def test_the_draw_depends_on_the_seed_and_the_entry_and_covers_small_tasks():
    ids = {"a": range(100), "b": range(2)}
    one = A.draw(123, 7, ids, k=5)
    assert one == A.draw(123, 7, ids, k=5) and len(one["a"]) == 5 and one["b"] == [0, 1]
    assert one != A.draw(124, 7, ids, k=5) and one != A.draw(123, 8, ids, k=5)


def test_compare_names_the_documents_that_differ():
    logged = {"t": {0: {"resps": [[["-1.0", "False"]], [[-2.0, False]]]}, 1: {"resps": [["Answer: A"]]}}}
    same = {"t": {0: {"resps": [[[-1.004, False]], [[-2.0, False]]]}, 1: {"resps": [["Answer: A"]]}}}
    assert A.compare(logged, same, {"t": [0, 1]})["reproduced"]
    moved = {"t": {0: {"resps": [[[-1.5, False]], [[-2.0, False]]]}, 1: {"resps": [["Answer: B"]]}}}
    out = A.compare(logged, moved, {"t": [0, 1]})
    assert not out["reproduced"] and out["matched"] == 0
    assert out["differences"][0].startswith("t doc_id 0: log-likelihood") and "generation" in out["differences"][1]


def test_a_consistently_forged_run_is_caught_and_an_honest_one_reproduced(tmp_path, smoke_run, tmp_path_factory):
    from opinbench.leaderboard.site import build_site

    st = S.Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    raw = yaml.safe_load(definition_path("smoke").read_text())
    raw["audit"] = {"documents": 1}  # one document per task: a third of smoke's audit, on a 2-core CI machine
    assert st.define(parse_definition(raw, "smoke-audit-1.yaml"))
    board = st.board("smoke")
    forged = _answering_run(smoke_run, tmp_path / "forged")
    assert validate_run(forged, board)["errors"] == []  # validation alone cannot tell
    honest_id = ingest(st, board, smoke_run, name="org/tiny")
    forged_id = ingest(st, board, forged, name="org/tiny-forged", rerun=True)
    build_site(st, "smoke", tmp_path / "before")
    before = json.loads((tmp_path / "before" / "leaderboard.json").read_text())
    assert before["entries"] == [] and {u["why"] for u in before["unranked"]} == {"self-reported, not audited yet"}

    tally = run_worker(st, poll_s=0)  # the real evaluation of the drawn documents
    assert (tally.finished, tally.failed) == (1, 1), [st.get(i).get("reason") for i in (honest_id, forged_id)]
    honest, bad = st.get(honest_id), st.get(forged_id)
    assert honest["state"] == S.FINISHED and A.label(honest["audit"], True) == "reproduced 2/2"
    assert bad["state"] == S.FAILED and bad["reason"].startswith("not reproduced: wom_cot doc_id")
    assert "generation" in bad["reason"] and A.label(bad["audit"], True).startswith("not reproduced")
    build_site(st, "smoke", tmp_path / "after")
    after = json.loads((tmp_path / "after" / "leaderboard.json").read_text())
    assert [(e["model"], e["audit"]) for e in after["entries"]] == [("org/tiny", "reproduced 2/2")]
    assert [f["model"] for f in after["failed"]] == ["org/tiny-forged"]
    st.engine.dispose()
