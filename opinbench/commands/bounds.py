"""`opinbench bounds NAME`: the uniform upper bound and the human lower bound of a task's data.

Both are mean WDs over (question, group) pairs, exactly as the distribution
tasks average ``wd``: a model should land between them. ``human`` resamples each
group's respondents (see `opinbench.metrics.distribution.human_bootstrap_wd`)
and is ``null`` where the release has no respondent counts (SubPOP, steerable).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

import numpy as np
import yaml

from opinbench.data import registry
from opinbench.data.groups import OVERALL_ATTRIBUTE
from opinbench.errors import ConfigError
from opinbench.metrics import distribution as M
from opinbench.metrics.keys import key_part
from opinbench.paths import tasks_dir


def task_settings(name: str) -> tuple[str, str]:
    """(data set, groups) for a data set name or a distribution task name."""
    if name in registry.DATASETS:
        return name, "all"
    for path in tasks_dir().rglob(f"{name}.yaml"):
        # The task YAMLs use lm-eval's !function tag; only `metadata` is read here.
        loader = type("L", (yaml.SafeLoader,), {})
        loader.add_constructor("!function", lambda l, n: None)
        meta = (yaml.load(path.read_text(), Loader=loader) or {}).get("metadata", {})
        if "data" in meta:
            return meta["data"], meta.get("groups", registry.get(meta["data"]).options.get("groups"))
    raise ConfigError(f"{name!r} is neither a data set ({', '.join(registry.DATASETS)}) nor a distribution task")


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def compute_bounds(records: list[Any], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    usable = [r for r in records if r.has_scale]
    if not usable:
        raise ConfigError("no (question, group) pair with an ordinal scale")
    ordinal = M.pad([r.ordinal for r in usable])
    human_p = M.pad([r.distribution for r in usable], fill=0.0)
    n = np.array([np.nan if r.n is None else r.n for r in usable])
    uni = M.uniform_wd(human_p, ordinal)
    # per-record generators: each pair's value equals what the task reports for it
    hum = M.human_bootstrap_wd(human_p, n, ordinal, n_resamples=n_resamples, seed=seed, keys=[r.id for r in usable])
    by_group: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(usable):
        by_group[(r.attribute, r.group)].append(i)
    groups = {}
    for (attr, group), idx in by_group.items():
        # The key of the task's per-group metric (wd|ATTR=Group): commas dropped as lm-eval needs.
        groups[f"{key_part(attr)}={key_part(group)}"] = {
            "attribute": attr,
            "group": group,
            "n_questions": len(idx),
            "uniform": _mean(uni[idx]),
            "human": _mean(hum[idx]),
        }
    return {
        "uniform": _mean(uni),
        "human": _mean(hum),
        "uniform_ci95": list(M.bootstrap_ci(uni, seed=seed)),
        "human_ci95": list(M.bootstrap_ci(hum, seed=seed)) if np.isfinite(hum).any() else None,
        "n_pairs": len(usable),
        "n_questions": len({r.question_key for r in usable}),
        "n_without_scale": len(records) - len(usable),
        "human_resamples": n_resamples,
        "seed": seed,
        "groups": groups,
    }


def format_table(out: dict[str, Any], title: str) -> str:
    """The text table of `compute_bounds`: groups named as in the results (``ATTR: Group``,
    commas dropped), the first column as wide as the longest name."""
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    rows = [("overall", out["uniform"], out["human"])]
    for _, g in sorted(out["groups"].items(), key=lambda kv: (kv[1]["attribute"] != OVERALL_ATTRIBUTE, kv[1]["attribute"], kv[0])):
        rows.append((f"  {key_part(g['attribute'])}: {key_part(g['group'])}", g["uniform"], g["human"]))
    width = max(len(r[0]) for r in rows)
    lines = [title, f"{'':{width}s}  {'uniform':>8s}  {'human':>8s}   (mean WD; a model should land between)"]
    lines += [f"{name:{width}s}  {fmt(u):>8s}  {fmt(h):>8s}" for name, u, h in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    data, groups = task_settings(args.name)
    if args.groups:
        groups = args.groups
    source = registry.source_path(data, args.source)
    records = registry.load(data, source, groups=groups)
    out = compute_bounds(records, n_resamples=args.resamples, seed=args.seed)
    out = {"name": args.name, "data": data, "source": str(source), "groups_selected": groups} | out
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(format_table(out, f"{args.name}: {out['n_pairs']} (question, group) pairs, {out['n_questions']} questions ({source})"))
    if out["human"] is None:
        print("human bound: n/a (this release gives proportions without respondent counts)")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__)
    p.add_argument("name", help="a distribution task (opinionqa_wd, subpop_eval_wd, ...) or data set (opinionqa, ...)")
    p.add_argument("--source", help="file or folder in the original release format (default: under $OPINBENCH_DATA_DIR)")
    p.add_argument("--groups", help="override the task's groups: standard | all | overall | ATTR:Group,...")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per (question, group)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object (keys: uniform, human, groups, ...)")
    p.set_defaults(func=run)
