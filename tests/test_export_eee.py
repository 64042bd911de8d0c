"""``opinbench export eee``: runs in the Every Eval Ever schema, validated against its vendored
JSON schemas (opinbench/export/schemas/) with jsonschema. The real run is the tiny model's smoke
run (tests/helpers/leaderboard_runs.py: a multiple-choice and a generation task); SmolLM2's run of
``opinionqa_wd`` is exported by tests/test_lm_eval_plugin.py, where plain lm_eval makes it."""

from __future__ import annotations

import json
import math

import pytest

from opinbench.cli import main
from opinbench.errors import DataError
from opinbench.export import eee
from opinbench.runs import find_runs
from tests.helpers import eee_files
from tests.helpers import leaderboard_runs as runs
from tests.helpers.lm_eval_runs import mc_resps, wd_doc, write_run


@pytest.fixture(scope="module")
def smoke_run(shared_data):
    return runs.smoke_run(str(shared_data))


def _aggregate(out):
    (path,) = [p for p in out.rglob("*.json")]
    return path


def test_a_real_run_exports_valid_records_that_match_lm_evals_numbers(smoke_run, tmp_path, capsys):
    assert main(["export", "eee", str(smoke_run), "--out", str(tmp_path), "--organization", "tests"]) == 0
    path = _aggregate(tmp_path)
    assert capsys.readouterr().out.strip() == str(path)
    record, rows = eee_files.validate(path, tmp_path)
    (run,) = find_runs(smoke_run)
    lm = run.results["results"]
    got = {r["evaluation_result_id"]: r for r in record["evaluation_results"]}
    wd = got["opinionqa_wd/wd,none"]
    assert wd["score_details"]["score"] == lm["opinionqa_wd"]["wd,none"]
    assert wd["score_details"]["uncertainty"]["standard_error"]["value"] == lm["opinionqa_wd"]["wd_stderr,none"]
    assert wd["metric_config"]["lower_is_better"] is True
    assert got["wom_cot/macro_f1,none"]["metric_config"]["lower_is_better"] is False
    assert all(not k.endswith("_stderr,none") for k in got)
    # per instance: the WD of each document, as lm-eval logged it
    logged = {str(r.data["doc_id"]): float(r.data["wd"]) for r in run.rows("opinionqa_wd")}
    mine = {r["metadata"]["doc_id"]: r["evaluation"]["score"] for r in rows
            if r["evaluation_result_id"] == "opinionqa_wd/wd,none"}
    assert mine == logged
    generated = next(r for r in rows if r["evaluation_name"] == "wom_cot")
    assert generated["input"]["choices"] is None and generated["output"]["raw"]
    assert record["source_metadata"]["source_organization_name"] == "tests"


def test_same_run_same_file_names(smoke_run, tmp_path):
    (run,) = find_runs(smoke_run)
    first = eee.export_run(run, tmp_path / "a", source=eee.Source())
    again = eee.export_run(run, tmp_path / "b", source=eee.Source())
    assert first.relative_to(tmp_path / "a") == again.relative_to(tmp_path / "b")


def test_a_leaderboard_entry_is_exported_and_linked_from_its_page(smoke_run, tmp_path, capsys, monkeypatch):
    import shutil

    import opinbench.leaderboard.worker as W

    def evaluate(definition, request, out, **_):  # the real evaluation ran once, in smoke_run
        shutil.copytree(smoke_run, out)
        return out

    monkeypatch.setattr(W, "evaluate", evaluate)
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert main(["leaderboard", "submit", "smoke", "--model", str(runs.tiny_model()), "--dtype", "float32",
                 "--name", "org/tiny", "--store", url]) == 0
    assert main(["leaderboard", "worker", "--until-empty", "--store", url]) == 0
    assert main(["export", "eee", "leaderboard:1", "--store", url, "--out", str(tmp_path / "x")]) == 0
    eee_files.validate(_aggregate(tmp_path / "x"), tmp_path / "x")
    assert main(["export", "eee", "leaderboard:2", "--store", url, "--out", str(tmp_path / "y")]) == 2
    assert "leaderboard:2: no request 2" in capsys.readouterr().err
    site = tmp_path / "site"
    assert main(["leaderboard", "build", "smoke", "--store", url, "--out", str(site)]) == 0
    page = (site / "entries" / "1.html").read_text()
    link = page.split('id="eee" href="../', 1)[1].split('"', 1)[0]
    eee_files.validate(site / link, site / "eee" / "1")
    entry = json.loads((site / "leaderboard.json").read_text())["entries"][0]
    assert entry["eee"]["aggregate"] == link


def _doc(i, group="Democrat"):
    return wd_doc(f"Q{i}", "q?", ["Yes", "No", "Refused"], [1.0, 2.0], "POLPARTY", group, [0.5, 0.5])


ARGS = {f"gen_args_{i}": {"arg_0": "Question?", "arg_1": c} for i, c in enumerate([" A", " B", " C", "A", "B", "C"])}


def test_non_finite_values_are_left_out(tmp_path):
    rows = [{"doc": _doc(0), "filtered_resps": mc_resps([0.3, 0.6, 0.1]), "wd": 0.1, "arguments": ARGS},
            {"doc": _doc(1), "filtered_resps": mc_resps([0.6, 0.3, 0.1]), "wd": math.nan, "arguments": ARGS}]
    folder = write_run(tmp_path / "run", {"opinionqa_wd": rows})
    results = json.loads(next(folder.glob("results_*.json")).read_text())
    results["results"]["opinionqa_wd"] |= {"wd,none": 0.1, "wd_stderr,none": "N/A", "kl,none": math.nan}
    results["higher_is_better"] = {"opinionqa_wd": {"wd": False, "kl": False}}
    next(folder.glob("results_*.json")).write_text(json.dumps(results))
    (run,) = find_runs(folder)
    record, rows = eee_files.validate(eee.export_run(run, tmp_path / "out", source=eee.Source()), tmp_path / "out")
    assert [r["evaluation_result_id"] for r in record["evaluation_results"]] == ["opinionqa_wd/wd,none"]
    assert "standard_error" not in record["evaluation_results"][0]["score_details"].get("uncertainty", {})  # 'N/A'
    assert [r["evaluation"]["score"] for r in rows] == [0.1]
    assert rows[0]["input"]["choices"] == [" A", " B", " C", "A", "B", "C"]
    assert rows[0]["answer_attribution"][0]["extracted_value"] == " B"  # the likeliest option


def test_bad_input_is_one_clear_error(tmp_path):
    folder = write_run(tmp_path / "run", {"opinionqa_wd": [{"doc": _doc(0), "filtered_resps": mc_resps([1.0])}]})
    (run,) = find_runs(folder)
    with pytest.raises(DataError, match="no numeric lm-eval result"):
        eee.export_run(run, tmp_path / "out", source=eee.Source())
