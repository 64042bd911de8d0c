#!/usr/bin/env python
"""Measure `opinbench regress`: false alarms with no true change and power against known drops.

    python scripts/regress_calibration.py [--n 200] [--out docs/regress_calibration.md]

Runs ``--n`` synthetic comparisons per row (`opinbench.regress.calibration`) at two sizes
(the CI subset: 17 questions x 4 groups and 60 VK documents; a larger run: 60 questions x
17 groups and 600 documents) and prints a markdown table (also written to ``--out``).
Resampling counts are lowered (2,000 sign flips, 500 bootstrap draws) to keep it to
minutes; the command's defaults are 10,000 and 2,000.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from opinbench.regress import calibration as K
from opinbench.regress import check

SIZES = {
    "CI subset (68 WD docs in 17 questions; 60 answers)": K.Setting(17, 4, 60),
    "larger (1,020 WD docs in 60 questions; 600 answers)": K.Setting(60, 17, 600),
}
EPS = (0.05, 0.1, 0.2, 0.3)
FLIPS = (0.02, 0.05, 0.1, 0.2)


def _rate(hits: list[bool]) -> str:
    n, k = len(hits), sum(hits)
    p = k / n
    half = 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / n)
    return f"{p:.3f} (±{half:.3f})"


def _flagged(report, metric: str) -> bool:
    return any(r["metric"] == metric and r["verdict"] == check.REGRESSION for r in report["rows"])


def _delta(reports, metric: str) -> float:
    return float(np.mean([r["delta"] for rep in reports for r in rep["rows"] if r["metric"] == metric]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="comparisons per row (default 200)")
    ap.add_argument("--out", type=Path, help="also write the tables here")
    args = ap.parse_args(argv)
    zero = {m: 0.0 for m in check.DEFAULT_TOLERANCES}
    lines = [
        f"{args.n} comparisons per row; alpha {check.DEFAULT_ALPHA}; default tolerances "
        + ", ".join(f"{m} {t:g}" for m, t in check.DEFAULT_TOLERANCES.items())
        + "; ± is a 95 % normal interval.",
        "",
    ]
    for name, setting in SIZES.items():
        t0 = time.time()
        lines += [f"**{name}**", ""]
        null = K.simulate(setting, args.n, seed=1)
        null0 = K.simulate(setting, args.n, seed=1, tolerances=zero)
        lines += [
            "| no true change | rate |",
            "|---|---|",
            f"| any metric flagged as regression (default tolerances) | {_rate([bool(r['regressions']) for r in null])} |",
            f"| any metric significant, Holm p < alpha, either direction (tolerance 0) | {_rate([K.any_significant(r) for r in null0])} |",
            "",
            "| injected drop | mean Δ | power: wd flagged | power: kl flagged |",
            "|---|---|---|---|",
        ]
        for eps in EPS:
            reps = K.simulate(setting, args.n, eps=eps, seed=2)
            lines.append(
                f"| toward uniform, ε = {eps:g} | wd {_delta(reps, 'wd'):+.4f} | {_rate([_flagged(r, 'wd') for r in reps])} "
                f"| {_rate([_flagged(r, 'kl') for r in reps])} |"
            )
        lines += ["", "| injected drop | mean Δ | power: acc flagged | power: macro_f1 flagged |", "|---|---|---|---|"]
        for k in FLIPS:
            reps = K.simulate(setting, args.n, flip=k, seed=3)
            lines.append(
                f"| {k:.0%} of answers flipped | acc {_delta(reps, 'acc'):+.4f} | {_rate([_flagged(r, 'acc') for r in reps])} "
                f"| {_rate([_flagged(r, 'macro_f1') for r in reps])} |"
            )
        lines.append("")
        print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
