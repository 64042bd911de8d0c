"""`opinbench.runs`: lm-eval output folders, the newest-run rule, results and sample rows."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from opinbench.errors import ConfigError, DataError, SkipLog
from opinbench.runs import find_runs, generations, judge_files, parse_samples_name, read_rows, samples_by_task

OLD, NEW = "2026-01-01T00-00-00", "2026-01-01T00-00-00.000001"  # lm-eval drops microseconds when they are 0


def write(path: Path, rows: list[object] | str = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = rows if isinstance(rows, str) else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return path


def _results(path: Path, task: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "results": {task: {"acc,none": 0.5}},
        "configs": {task: {"task": task}},
        "versions": {task: 1.0},
        "n-samples": {task: {"original": 10, "effective": 10}},
        "config": {"model": "hf"},
        "task_hashes": {task: "abc"},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_samples_name():
    assert parse_samples_name(Path(f"samples_vk_cot_binary_{NEW}.jsonl")) == ("vk_cot_binary", NEW)
    assert parse_samples_name(Path(f"samples_vk_cot_{OLD}.jsonl")) == ("vk_cot", OLD)
    assert parse_samples_name(Path("samples_vk_cot.jsonl")) == ("vk_cot", None)
    assert parse_samples_name(Path("mine.jsonl")) == ("mine", None)


def test_newest_file_per_task_by_timestamp_not_by_name(tmp_path, caplog):
    m = tmp_path / "model"
    old, new = write(m / f"samples_t_{OLD}.jsonl"), write(m / f"samples_t_{NEW}.jsonl")
    undated = write(m / "samples_t.jsonl")
    other = write(m / f"samples_u_{OLD}.jsonl")
    # As text, "...00.jsonl" sorts after "...00.000001.jsonl": the timestamp must decide.
    assert max(old.name, new.name) == old.name
    with caplog.at_level(logging.INFO, logger="opinbench.runs"):
        (run,) = find_runs(tmp_path)
    assert run.folder == m and run.samples_files == {"t": new, "u": other} and run.tasks == ["t", "u"]
    assert f"{old}: an older run of task t" in caplog.text and f"{undated}: an older run" in caplog.text
    assert samples_by_task(tmp_path) == {"t": new, "u": other}


def test_results_newest_lm_eval_file_judge_results_ignored(tmp_path):
    m = tmp_path / "model"
    write(m / f"samples_t_{NEW}.jsonl")
    older = _results(m / f"results_{OLD}.json", "old")
    newer = _results(m / f"results_{NEW}.json", "t")
    write(m / "results_judge-faithfulness_2027-01-01T00-00-00.json", "{}")
    (run,) = find_runs(tmp_path)
    assert run.results_files == (older, newer) and run.results_file == newer
    r = run.results
    assert r["results"]["t"]["acc,none"] == 0.5 and r["n-samples"]["t"]["effective"] == 10
    assert set(r) >= {"configs", "versions", "task_hashes", "config"}


def test_judge_files_newest_verdicts_per_kind_with_their_results(tmp_path, caplog):
    m = tmp_path / "model"
    write(m / f"samples_t_{NEW}.jsonl")
    old = write(m / f"judge-faithfulness_verdicts_{NEW}.jsonl")
    new = write(m / "judge-faithfulness_verdicts_2026-02-01T00-00-00.jsonl")
    write(m / f"results_judge-faithfulness_{NEW}.json", "{}")
    new_results = write(m / "results_judge-faithfulness_2026-02-01T00-00-00.json", "{}")
    lone = write(m / f"judge-moderation_verdicts_{OLD}.jsonl")  # its results file is missing
    write(m / "faithfulness_verdicts.jsonl")  # not a judge's name
    (run,) = find_runs(tmp_path)
    with caplog.at_level(logging.INFO, logger="opinbench.runs"):
        found = judge_files(run)
    assert sorted(found) == ["faithfulness", "moderation"]
    assert found["faithfulness"].verdicts == new and found["faithfulness"].results == new_results
    assert found["moderation"].verdicts == lone and found["moderation"].results is None
    assert f"{old}: an older judge-faithfulness run" in caplog.text


def test_judge_results_take_model_settings_from_the_same_newest_results_file(tmp_path):
    """`judging.results.run_config` reads through the one run reader (the newest rule by timestamp)."""
    from opinbench.judging.results import run_config

    m = tmp_path / "model"
    _results(m / f"results_{OLD}.json", "old")
    _results(m / f"results_{NEW}.json", "t")
    write(m / "results_judge-faithfulness_2027-01-01T00-00-00.json", "{}")
    cfg = run_config(m)
    assert cfg["lm_eval_results"] == f"results_{NEW}.json" and cfg["model"] == "hf"
    (m / f"results_{NEW}.json").write_text("not json", encoding="utf-8")
    assert run_config(m) == {}  # unreadable: the judge results go without model settings
    assert run_config(tmp_path / "empty") == {}


def test_results_errors_name_the_file(tmp_path):
    m = tmp_path / "model"
    write(m / f"samples_t_{NEW}.jsonl")
    with pytest.raises(DataError, match=f"{m}: no results_"):
        find_runs(tmp_path)[0].results
    write(m / f"results_{NEW}.json", "{oops")
    with pytest.raises(DataError, match=rf"results_{NEW}\.json: not JSON"):
        find_runs(tmp_path)[0].results
    write(m / f"results_{NEW}.json", "[1]")
    with pytest.raises(DataError, match="expected a JSON object"):
        find_runs(tmp_path)[0].results


def test_several_model_folders(tmp_path):
    a = write(tmp_path / "m1" / f"samples_t_{OLD}.jsonl")
    b = write(tmp_path / "m2" / f"samples_t_{NEW}.jsonl")
    c = write(tmp_path / "m2" / f"samples_u_{NEW}.jsonl")
    runs = find_runs(tmp_path)  # every model kept
    assert [(r.folder.name, r.samples_files) for r in runs] == [("m1", {"t": a}), ("m2", {"t": b, "u": c})]
    with pytest.raises(ConfigError, match=r"task t was run in several folders \(.*m1, .*m2\)"):
        samples_by_task(tmp_path)
    assert samples_by_task(tmp_path / "m2") == {"t": b, "u": c}


def test_one_file_is_a_run_of_that_file(tmp_path):
    f = write(tmp_path / "m" / "mine.jsonl")
    res = _results(tmp_path / "m" / f"results_{NEW}.json", "mine")
    (run,) = find_runs(f)
    assert (run.folder, run.samples_files, run.results_file) == (f.parent, {"mine": f}, res)


def test_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        find_runs(tmp_path / "nope")
    with pytest.raises(DataError, match="no samples_"):
        find_runs(tmp_path)
    with pytest.raises(DataError, match="no samples_"):
        samples_by_task(tmp_path)


def test_rows_split_at_newlines_only(tmp_path):
    gen = "one\u2028two\x85three\x0cfour"  # str.splitlines would split this generation
    f = write(tmp_path / f"samples_t_{NEW}.jsonl", [{"doc_id": 0, "resps": [[gen]]}, {"doc_id": 1, "resps": [["x"]]}])
    f.write_text(f.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    rows = list(read_rows(f))
    assert [(r.line, r.key, r.data["doc_id"]) for r in rows] == [(1, "line 1", 0), (2, "line 2", 1)]
    assert generations(rows[0].data["resps"]) == [gen]


def test_rows_not_json_raise_or_are_skipped(tmp_path):
    f = write(tmp_path / f"samples_t_{NEW}.jsonl", '{"doc_id": 0}\n{not json\n[1]\n')
    with pytest.raises(DataError, match=r"samples_t_.*: line 2: not JSON"):
        list(read_rows(f))
    skips = SkipLog()
    assert [r.data for r in read_rows(f, skips=skips)] == [{"doc_id": 0}, [1]]
    assert len(skips) == 1 and skips.entries[0].key == "line 2"
    (run,) = find_runs(f)
    assert [r.line for r in run.rows("t", skips=SkipLog())] == [1, 3]
    with pytest.raises(DataError, match="cannot read"):
        list(read_rows(tmp_path / "gone.jsonl"))


def test_generations():
    assert generations([["a", "b"], ["c"]]) == ["a", "b", "c"]
    assert generations(["a"]) == ["a"]
    assert generations([]) == []
    assert generations([[[-1.2, False]]]) is None  # loglikelihoods: not a generation task
    assert generations(None) is None
