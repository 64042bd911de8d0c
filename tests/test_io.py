"""The one atomic writer: mode, strict JSON, old file intact after a crash mid-write."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from opinbench import io
from opinbench.judging.results import write_results


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_files_are_readable_by_others(tmp_path, umask_022):
    io.write_json(tmp_path / "a.json", {"x": 1})
    io.write_jsonl(tmp_path / "b.jsonl", [{"x": 1}])
    assert _mode(tmp_path / "a.json") == 0o644 and _mode(tmp_path / "b.jsonl") == 0o644
    os.umask(0o077)
    io.write_json(tmp_path / "c.json", {"x": 1})
    assert _mode(tmp_path / "c.json") == 0o600  # the umask is honoured
    os.chmod(tmp_path / "a.json", 0o640)
    io.write_json(tmp_path / "a.json", {"x": 2})
    assert _mode(tmp_path / "a.json") == 0o640  # an existing file keeps its mode


def test_non_finite_is_an_error_or_null_with_the_reason(tmp_path):
    doc = {"a": {"b": [1.0, math.nan]}, "c": -math.inf}
    with pytest.raises(ValueError, match=r"a\.b\[1\]=nan"):
        io.write_json(tmp_path / "x.json", doc)
    assert not (tmp_path / "x.json").exists()
    io.write_json(tmp_path / "x.json", doc, non_finite="null")
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "a": {"b": [1.0, None]},
        "c": None,
        "non_finite": {"a.b[1]": "nan", "c": "-inf"},
    }
    io.write_jsonl(tmp_path / "r.jsonl", [{"v": math.inf}, {"v": 1}], non_finite="null")
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rows == [{"v": None, "non_finite": {"v": "inf"}}, {"v": 1}]


def test_a_crash_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "r.jsonl"
    io.write_jsonl(path, [{"i": 0}])

    def rows():
        yield {"i": 1}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.write_jsonl(path, rows())
    with pytest.raises(ValueError):  # a NaN in a later row: nothing of the new file lands
        io.write_jsonl(path, [{"i": 2}, {"i": math.nan}])
    assert path.read_text() == '{"i": 0}\n'
    assert os.listdir(tmp_path) == ["r.jsonl"]  # no temporary file left behind


def _write(tmp_path, results, verdicts=()):
    return write_results(
        tmp_path,
        "judge-x",
        results=results,
        versions={},
        n_samples={},
        higher_is_better={},
        configs={},
        judge_config={"temperature": math.nan},
        details={},
        verdicts=verdicts,
        date_id="t",
    )


def test_judge_results_are_strict_json(tmp_path, umask_022):
    r, v = _write(tmp_path, {"all": {"m,none": 0.5}}, [{"score": math.nan}])
    doc = json.loads(r.read_text())  # json.loads would accept NaN: check the text too
    assert "NaN" not in r.read_text() + v.read_text()
    assert doc["config"]["judge"]["temperature"] is None
    assert doc["non_finite"] == {"config.judge.temperature": "nan"}
    assert json.loads(v.read_text()) == {"score": None, "non_finite": {"score": "nan"}}
    assert _mode(r) == _mode(v) == 0o644
    # A NaN metric is a bug: refused before any file is written.
    with pytest.raises(ValueError, match="metrics"):
        write_results(
            tmp_path / "other", "judge-x", results={"all": {"m,none": math.nan}}, versions={},
            n_samples={}, higher_is_better={}, configs={}, judge_config={}, details={},
            verdicts=[], date_id="t",
        )
    assert not (tmp_path / "other").exists()
