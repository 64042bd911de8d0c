"""`opinbench data {list,fetch,export}`."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
from pathlib import Path
from typing import Any

from opinbench.data import registry
from opinbench.errors import ConfigError, DataError, SkipLog

log = logging.getLogger("opinbench")


def _parse_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_list(args: argparse.Namespace) -> int:
    root = registry.data_dir(args.data_dir)
    print(f"data directory: {root}")
    for ds in registry.DATASETS.values():
        path = root / ds.subpath
        state = "found" if path.exists() else "missing"
        print(f"  {ds.name:20s} {ds.kind:12s} {state:8s} {path}  ({ds.description})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from opinbench.data.fetch import fetch

    dest = Path(args.dest) if args.dest else registry.data_dir()
    files = fetch(args.name, dest, mirrors=args.mirror, local=Path(args.local) if args.local else None)
    print(f"{args.name}: {len(files)} files verified under {dest}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from opinbench.io import write_jsonl

    out = Path(args.out)
    if out.is_dir():  # checked before loading, which can take minutes
        raise DataError("--out is a folder; give the path of the .jsonl file to write", file=out)
    ds = registry.get(args.name)
    kwargs = _parse_options(args.option)
    params = inspect.signature(ds.load_fn()).parameters
    if "groups" in ds.options and "groups" not in kwargs:
        kwargs["groups"] = args.groups
    skips = SkipLog(strict=args.strict)
    if "skips" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs["skips"] = skips
    source = registry.source_path(args.name, args.source, args.data_dir)
    records = registry.load(args.name, source, **kwargs)
    if not records:  # an empty export would score as a benchmark that ran
        raise DataError(f"no records to export ({skips.summary()})", file=source)
    n = write_jsonl(args.out, (r.to_json() for r in records))
    print(f"{args.name}: wrote {n} records to {args.out} ({skips.summary()})")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=help_)
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    pl = dsub.add_parser("list", help="data sets, and whether they are in the data directory")
    pl.add_argument("--data-dir", help="default: $OPINBENCH_DATA_DIR, else the fetch cache")
    pl.set_defaults(func=cmd_list)

    pf = dsub.add_parser("fetch", help="download a public original and verify its pinned checksums")
    pf.add_argument("name", help="opinionqa, opinionqa_steerable, vk, wom, subpop, smartvote (anes: see message)")
    pf.add_argument("--dest", help="data directory to fill (default: $OPINBENCH_DATA_DIR or ~/.cache/opinbench/data)")
    pf.add_argument("--mirror", action="append", default=[], help="extra base URL serving {repo}/{commit}/{path}")
    pf.add_argument("--from", dest="local", help="take the files from a local copy (verified the same way)")
    pf.set_defaults(func=cmd_fetch)

    pe = dsub.add_parser(
        "export",
        help="write canonical records as JSONL",
        description="Write one JSON object per record. Distribution records have: id, dataset, "
        "question_key, question, options, ordinal, attribute, group, distribution, n, "
        "n_nonsubstantive, source. Answer records have: id, dataset, subject, subject_group, "
        "question_key, question, options, answer, split, context, weight, meta, source.",
    )
    pe.add_argument("name", choices=sorted(registry.DATASETS))
    pe.add_argument("--source", help="file or folder in the original release format (default: under the data dir)")
    pe.add_argument("--out", required=True, help="output .jsonl (written atomically)")
    pe.add_argument("--groups", default="every", help="distribution data: every | all | standard | overall | ATTR:Group,...")
    pe.add_argument("--strict", action="store_true", help="fail on the first unusable question instead of skipping it")
    pe.add_argument("--data-dir", help="default: $OPINBENCH_DATA_DIR")
    pe.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="loader option, e.g. scheme=aggressive")
    pe.set_defaults(func=cmd_export)
