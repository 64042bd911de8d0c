"""Check an ``opinbench export eee`` output against Every Eval Ever's vendored JSON schemas."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema

from opinbench.export import eee


def _validator(path: Path) -> jsonschema.Draft7Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(aggregate: Path, out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The aggregate record and its instance records, each validated (every error listed), and
    the links between them checked as that project's validator does (path, checksum, rows, ids)."""
    record = json.loads(aggregate.read_text(encoding="utf-8"))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in _validator(eee.AGGREGATE_SCHEMA).iter_errors(record)]
    assert not errors, errors
    detail = record["detailed_evaluation_results"]
    samples = out / detail["file_path"]
    assert samples.parent == aggregate.parent and samples.name == f"{aggregate.stem}_samples.jsonl"
    assert hashlib.sha256(samples.read_bytes()).hexdigest() == detail["checksum"]
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == detail["total_rows"] > 0
    check = _validator(eee.INSTANCE_SCHEMA)
    ids = {r["evaluation_result_id"] for r in record["evaluation_results"]}
    for n, row in enumerate(rows, 1):
        errors = [f"line {n} {'/'.join(map(str, e.path))}: {e.message}" for e in check.iter_errors(row)]
        assert not errors, errors
        assert row["evaluation_id"] == record["evaluation_id"] and row["model_id"] == record["model_info"]["id"]
        assert row["evaluation_result_id"] in ids
    return record, rows
