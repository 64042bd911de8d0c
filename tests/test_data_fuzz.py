"""Property: a loader fed a corrupted copy of a small file in its real format either
returns valid records or raises `DataError`, never another exception.

The clean files come from the writers the per-loader tests use. Each example
corrupts one of them: bytes (flipped, dropped, inserted, repeated), a JSON value
(replaced by another JSON value, NaN and duplicates included, or removed) or a
CSV cell / row (replaced, dropped, repeated).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (the `test` extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from opinbench.data.anes import load_anes  # noqa: E402
from opinbench.data.opinionqa import load_opinionqa  # noqa: E402
from opinbench.data.records import AnswerRecord, DistributionRecord  # noqa: E402
from opinbench.data.subpop import load_subpop  # noqa: E402
from opinbench.data.vk import load_vk  # noqa: E402
from opinbench.data.wahlomat import load_wahlomat  # noqa: E402
from opinbench.errors import DataError, SkipLog  # noqa: E402
from tests.helpers.opinionqa_files import write_tiny_release  # noqa: E402
from tests.test_data_anes import NUMERIC_CSV, NUMERIC_MAPPING  # noqa: E402
from tests.test_data_subpop import ROW  # noqa: E402
from tests.test_data_vk import GOOD, VP_COLUMNS, VP_ROWS, write_csv, write_json  # noqa: E402
from tests.test_data_wahlomat import write_release  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- corruptions

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["[1.0, nan]", "Refused", "Yes", "Stimme zu", "", "A"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value, delete=False):
    if not path:
        return value
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


@st.composite
def corrupt(draw, data: bytes, kind: str) -> bytes:
    """``data`` with one corruption suited to its ``kind`` (``json``, ``jsonl``, ``csv``, ``bytes``)."""
    how = draw(st.sampled_from(["bytes", "structure", "structure"]))
    if how == "bytes" or kind == "bytes":
        edits = draw(st.lists(st.tuples(st.sampled_from("fdir"), st.integers(0, len(data)), st.binary(min_size=1, max_size=6)), min_size=1, max_size=3))
        out = bytearray(data)
        for op, pos, blob in edits:
            pos = min(pos, len(out))
            if op == "f":
                out[pos : pos + len(blob)] = blob
            elif op == "d":
                del out[pos : pos + len(blob)]
            elif op == "i":
                out[pos:pos] = blob
            else:  # repeat a slice
                out[pos:pos] = out[pos : pos + len(blob) * 4]
        return bytes(out)
    if kind == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        i = draw(st.integers(0, len(rows) - 1))
        op = draw(st.sampled_from(["cell", "cell", "droprow", "duprow", "dropcell"]))
        if op == "droprow":
            del rows[i]
        elif op == "duprow":
            rows.insert(i, list(rows[i]))
        elif rows[i]:
            j = draw(st.integers(0, len(rows[i]) - 1))
            if op == "dropcell":
                del rows[i][j]
            else:
                rows[i][j] = draw(st.text(max_size=12) | st.sampled_from(["[1.0, nan]", "[]", "['a', 'a']", "nan", "-1", "5"]))
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode("utf-8", "surrogatepass")
    lines = data.decode("utf-8").splitlines() if kind == "jsonl" else [data.decode("utf-8")]
    n = draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[n])
    paths = list(_paths(obj))
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
    if op == "duplicate" and path and isinstance(path[-1], str):
        # the same key twice in one object: only visible in the text
        text = json.dumps(obj, allow_nan=True)
        key = json.dumps(path[-1])
        text = text.replace(f"{key}: ", f"{key}: {json.dumps(draw(json_values), allow_nan=True)}, {key}: ", 1)
        lines[n] = text
    else:
        obj = _set(obj, path, draw(json_values), delete=(op == "delete" and bool(path)))
        lines[n] = json.dumps(obj, allow_nan=True)
    return ("\n".join(lines) + ("\n" if kind == "jsonl" else "")).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- the property


def check(load: Callable[[Path], list], root: Path, target: str, data: bytes) -> None:
    """Write ``data`` over ``target`` in a copy of ``root``, load, and check the outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(root, copy)
        (copy / target).write_bytes(data)
        for strict in (False, True):
            try:
                records = load(copy, strict)
            except DataError:
                continue
            assert records, "a load with no records must raise"
            for r in records:
                assert isinstance(r, (DistributionRecord, AnswerRecord))
                json.dumps(r.to_json(), allow_nan=False)  # plain, finite JSON
                if isinstance(r, DistributionRecord):
                    assert all(math.isfinite(v) for v in r.ordinal + r.distribution)


def cases(root: Path, files: dict[str, str]):
    """(target, kind, clean bytes) of each file to corrupt."""
    return [(t, k, (root / t).read_bytes()) for t, k in files.items()]


@st.composite
def one_corruption(draw, files):
    target, kind, data = draw(st.sampled_from(files))
    return target, draw(corrupt(data, kind))


# --------------------------------------------------------------------------- per loader

_tmp = Path(tempfile.mkdtemp(prefix="opinbench-fuzz-"))

OQA = write_tiny_release(_tmp / "oqa", 2)
WAVE = "American_Trends_Panel_W1"
OQA_FILES = cases(OQA, {f"{WAVE}/info.csv": "csv", f"{WAVE}/metadata.csv": "csv", f"{WAVE}/SEX_data.json": "json"})


@SETTINGS
@given(one_corruption(OQA_FILES))
def test_opinionqa_corrupted(case):
    check(lambda p, s: load_opinionqa(p, groups="every", strict=s, skips=SkipLog(strict=s)), OQA, *case)


SUBPOP = _tmp / "subpop"
SUBPOP.mkdir()
(SUBPOP / "subpop_eval.jsonl").write_text(
    "\n".join(json.dumps(ROW | extra) for extra in ({}, {"attribute": "POLPARTY", "group": "Democrat"}, {"qkey": "q2"})) + "\n"
)
SUBPOP_FILES = cases(SUBPOP, {"subpop_eval.jsonl": "jsonl"})


@SETTINGS
@given(one_corruption(SUBPOP_FILES))
def test_subpop_corrupted(case):
    check(lambda p, s: load_subpop(p, split="eval", groups="every", strict=s), SUBPOP, *case)


VK = _tmp / "vk"
write_json(VK / "steerable_test_valuekaleidoscope_small.json", GOOD)
VK_FILES = cases(VK, {"steerable_test_valuekaleidoscope_small.json": "json"})
VP = _tmp / "vp"
write_csv(VP / "valence_test.csv", VP_COLUMNS, VP_ROWS)
VP_FILES = cases(VP, {"valence_test.csv": "csv"})


@SETTINGS
@given(one_corruption(VK_FILES))
def test_vk_steerable_corrupted(case):
    check(lambda p, s: load_vk(p, strict=s), VK, *case)


@SETTINGS
@given(one_corruption(VP_FILES))
def test_valueprism_corrupted(case):
    check(lambda p, s: load_vk(p, strict=s), VP, *case)


WOM = _tmp / "wom"
write_release(WOM, n_theses=4)
_E = "data/2099/testland"
WOM_FILES = cases(WOM, {"election.json": "json", **{f"{_E}/{n}.json": "json" for n in ("party", "statement", "answer", "opinion", "comment", "overview")}})


@SETTINGS
@given(one_corruption(WOM_FILES))
def test_wahlomat_corrupted(case):
    check(lambda p, s: load_wahlomat(p, strict=s), WOM, *case)


ANES = _tmp / "anes"
(ANES / "pilot_2098").mkdir(parents=True)
(ANES / "pilot_2098" / "anes_pilot_2098_20981231.csv").write_text(NUMERIC_CSV, encoding="utf-8")
(ANES / "anes_pilot_2098.yaml").write_text(NUMERIC_MAPPING, encoding="utf-8")
ANES_FILES = cases(ANES, {"pilot_2098/anes_pilot_2098_20981231.csv": "csv"})


@SETTINGS
@given(one_corruption(ANES_FILES))
def test_anes_corrupted(case):
    check(lambda p, s: load_anes(p / "pilot_2098", mapping=p / "anes_pilot_2098.yaml", strict=s), ANES, *case)
