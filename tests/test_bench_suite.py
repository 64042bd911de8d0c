"""bench/bench_suite.py's pure parts: which raw throughput a task is compared with, the ratio,
the merge of the estimate with the workers' measurements, and the markdown table."""

from __future__ import annotations

import doctest
import json
import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_suite.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_suite", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_suite"] = module  # dataclass-free, but doctest wants it importable by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_suite", None)


RAW = {"prefill_tps": 1000.0, "decode_tps": 50.0}
COUNTS = [
    {"task": "opinionqa_wd", "output_type": "multiple_choice", "documents": 4, "requests": 40, "prompt_tokens": 6000},
    {"task": "wom_cot", "output_type": "generate_until", "documents": 4, "requests": 4, "prompt_tokens": 700},
]


def measured(**kw):
    base = {"build_s": 3.0, "seconds": 2.0, "model_s": 1.5, "documents": 4, "requests": 40, "model_rows": 4,
            "model_tokens": 600, "doc_tokens": 600, "gen_tokens": 0, "output_type": "multiple_choice"}
    return base | kw


def test_doctests(bench):
    result = doctest.testmod(bench)
    assert result.attempted >= 5 and result.failed == 0


def test_loglikelihood_task_is_compared_with_prefill(bench):
    # 600 document tokens in 2 s = 300 tok/s against 1000 prefill tok/s
    assert bench.raw_ratio(measured(), RAW) == pytest.approx(0.3)


def test_generation_task_is_compared_with_decode(bench):
    res = measured(output_type="generate_until", gen_tokens=80, doc_tokens=0, requests=4, model_rows=4)
    assert bench.raw_ratio(res, RAW) == pytest.approx(80 / 2.0 / 50.0)
    assert bench.passes_per_doc(res) == pytest.approx(20.0)  # generated tokens per document


def test_ratio_missing_when_raw_or_time_is_zero(bench):
    assert bench.raw_ratio(measured(), {"prefill_tps": 0.0, "decode_tps": 50.0}) is None
    assert bench.raw_ratio(measured(seconds=0.0), RAW) is None


def test_rows_merge_estimate_and_workers(bench):
    workers = {
        "hf": {"raw": RAW, "tasks": {"opinionqa_wd": measured(),
                                     "wom_cot": {"error": "RuntimeError: boom"}}},
        "vllm": {"raw": {"prefill_tps": 2000.0, "decode_tps": 100.0},
                 "tasks": {"opinionqa_wd": measured(seconds=4.0, model_s=3.0, model_rows=40, requests=39),
                           "wom_cot": measured(output_type="generate_until", gen_tokens=120, requests=4,
                                               model_rows=4, doc_tokens=0)}},
    }
    rows = bench.suite_rows(COUNTS, workers)
    wd, cot = rows
    assert wd["hf"]["docs_per_s"] == pytest.approx(2.0)
    assert wd["hf"]["passes_per_doc"] == pytest.approx(1.0)
    assert wd["hf"]["model_share"] == pytest.approx(0.75)
    assert wd["hf"]["requests_match"] is True
    assert wd["vllm"]["passes_per_doc"] == pytest.approx(10.0)
    assert wd["vllm"]["ratio_to_raw"] == pytest.approx(600 / 4.0 / 2000.0)
    assert wd["vllm"]["requests_match"] is False  # 39 requests seen, 40 counted
    assert cot["hf"] == {"error": "RuntimeError: boom"}
    assert cot["vllm"]["ratio_to_raw"] == pytest.approx(120 / 2.0 / 100.0)

    table = bench.markdown_table(rows).splitlines()
    assert table[0].startswith("| task | docs | requests |")
    assert table[2] == "| opinionqa_wd | 4 | 40 | fwd 1.00 / 10.00* | 2.00 | 1.00 | 0.30 | 0.07 | 75 % / 75 % | 3.0 / 3.0 |"
    assert table[3] == "| wom_cot | 4 | 4 | gen failed / 30.00 | failed | 2.00 | failed | 0.60 | failed / 75 % | failed / 3.0 |"


def test_backend_not_run_shows_dashes(bench):
    rows = bench.suite_rows(COUNTS[:1], {"hf": {"raw": RAW, "tasks": {"opinionqa_wd": measured()}}, "vllm": None})
    assert rows[0]["vllm"] is None
    assert bench.markdown_table(rows).splitlines()[2].endswith("| 2.00 | – | 0.30 | – | 75 % / – | 3.0 / – |")


def test_orchestrator_runs_each_worker_once_and_reports(bench, monkeypatch, tmp_path, capsys):
    """The orchestration without a model: canned plan and workers, the printed report and JSON."""
    spec = {"model_name": "m", "limit": 4, "max_gen_toks": 64, "batch_size": 16, "counts": COUNTS,
            "tasks": [c["task"] for c in COUNTS], "counted_s": 1.0,
            "skipped": {"smartvote_cot": "ConfigError: no answers file"}}
    hw = {"cpu": "Xeon", "cores": 2, "gpu": None, "versions": {"torch": "2.13.0+cpu"}}
    raw = RAW | {"prefill_len": 150, "prefill_seqs": 32, "prefill_batch": 16, "decode_batch": 4,
                 "decode_tokens": 64, "decode_context": 140}
    calls = []

    def fake_worker(backend, python, spec_, workdir):
        calls.append((backend, python))
        tasks = {"opinionqa_wd": measured(results={"wd,none": 0.25 if backend == "hf" else 0.2502}),
                 "wom_cot": measured(output_type="generate_until", gen_tokens=256, requests=4, doc_tokens=0)}
        return {"raw": raw, "tasks": tasks, "hardware": hw, "model_class": backend, "device": "cpu",
                "dtype": "float32", "load_s": 1.0, "prefix_caching": backend == "vllm" or None}

    monkeypatch.setattr(bench, "plan", lambda args: spec)
    monkeypatch.setattr(bench, "run_worker", fake_worker)
    args = bench.parse_args(["--vllm-python", "/v/python", "--hf-python", "/h/python",
                             "--log-dir", str(tmp_path / "logs"), "--json", str(tmp_path / "out.json")])
    assert bench.orchestrate(args) == 0
    assert calls == [("hf", "/h/python"), ("vllm", "/v/python")]
    out = capsys.readouterr().out
    assert "smartvote_cot: not run: ConfigError: no answers file" in out
    assert "vllm (vllm, cpu, float32, prefix caching on" in out
    assert "| wom_cot | 4 | 4 | gen 64.00 / 64.00 |" in out
    assert "largest metric difference 0.0002 (opinionqa_wd/wd,none)" in out
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["rows"][0]["vllm"]["docs_per_s"] == pytest.approx(2.0)

    # without --vllm-python the vllm side is left out, with a note saying how to get it
    calls.clear()
    assert bench.orchestrate(bench.parse_args(["--log-dir", str(tmp_path / "l2")])) == 0
    assert [c[0] for c in calls] == ["hf"]
    assert "vllm: not run (no --vllm-python" in capsys.readouterr().out
