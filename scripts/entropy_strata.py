#!/usr/bin/env python
"""Compute the entropy tertile cut points of each distribution data set and write them to the package.

    OPINBENCH_DATA_DIR=../shared/data python scripts/entropy_strata.py [--check]

For every distribution data set with shipped tasks (`opinbench.data.registry`) whose data the
data directory has, loads every (question, group) record (groups ``every``: all groups and the
overall population), and writes the tertiles of the human distributions' normalised entropy
(`opinbench.metrics.strata.data_set_cuts`) to ``opinbench/data/resources/entropy_strata.json``.
A data set that cannot be loaded is reported and keeps no cut points. ``--check`` writes nothing
and exits 1 if the shipped file differs from the recomputation (``tests/test_strata.py`` does the
same per data set).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from opinbench.data import registry
from opinbench.errors import OpinbenchError
from opinbench.metrics import strata

OUT = Path(__file__).resolve().parents[1] / "opinbench" / "data" / strata.RESOURCE
GROUPS = "every"


def compute(name: str) -> dict:
    """One data set's entry: its cut points, counts and the groups they were computed over."""
    records = registry.load(name, groups=GROUPS)
    return strata.data_set_cuts(records) | {"groups": GROUPS, "source": registry.get(name).subpath}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = ap.parse_args(argv)
    out: dict[str, dict] = {}
    for name, ds in registry.DATASETS.items():
        if ds.kind != "distribution" or not ds.shipped_tasks:
            continue
        try:
            out[name] = compute(name)
        except (OpinbenchError, OSError, ValueError) as err:
            print(f"{name}: no cut points ({err})", file=sys.stderr)
            continue
        print(f"{name}: cuts {out[name]['cuts']} over {out[name]['records']} records, {out[name]['questions']} questions")
    doc = {"about": "Tertiles of the human distributions' normalised entropy per data set "
                    "(opinbench/metrics/strata.py); written by scripts/entropy_strata.py.", "datasets": out}
    if args.check:
        same = json.loads(OUT.read_text(encoding="utf-8")) == json.loads(json.dumps(doc))
        print("shipped cut points match" if same else f"{OUT} differs from the recomputation")
        return 0 if same else 1
    OUT.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
