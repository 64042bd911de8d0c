"""``opinbench export eee RUN_DIR|leaderboard:ID``: a run in the Every Eval Ever schema.

Writes, per model folder of the run, ``<uuid>.json`` (aggregate results) and
``<uuid>_samples.jsonl`` (per-instance records) under ``--out``, laid out as that project's
datastore (``data/opinbench/<developer>/<model>/``; see `opinbench.export.eee`); prints the
aggregate files.
``leaderboard:ID`` reads a finished leaderboard entry's stored lm-eval files, as
``opinbench regress leaderboard:ID`` does. lm-eval's own files stay the primary format.
"""

from __future__ import annotations

import argparse
import sys

from opinbench.errors import ConfigError, DataError

FORMATS = ("eee",)
RELATIONSHIPS = ("first_party", "third_party", "collaborative", "other")


def run(args: argparse.Namespace) -> int:
    from opinbench.commands.regress import ENTRY_PREFIX, entry_files
    from opinbench.export import eee
    from opinbench.runs import find_runs

    try:
        folder = entry_files(args.run, args.store)[0] if args.run.startswith(ENTRY_PREFIX) else args.run
        source = eee.Source(args.organization, args.relationship, args.run)
        for found in find_runs(folder):
            print(eee.export_run(found, args.out, source=source))
    except (ConfigError, DataError) as err:
        where = "" if args.run in str(err) else f"{args.run}: "
        print(f"opinbench export: {where}{err}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("format", choices=FORMATS, help="eee: Every Eval Ever (evaleval/every_eval_ever, schema 0.3.0)")
    p.add_argument("run", metavar="RUN_DIR|leaderboard:ID", help="an lm-eval output folder (--log_samples) or a finished leaderboard entry")
    p.add_argument("--out", default="eee", help="folder for the exported files (default ./eee)")
    p.add_argument("--organization", default="unspecified", help="who ran the evaluation (source_organization_name)")
    p.add_argument("--relationship", choices=RELATIONSHIPS, default="other", help="the evaluator's relationship to the model (default other)")
    p.add_argument("--store", help="leaderboard store URL for leaderboard:ID (default: $OPINBENCH_LEADERBOARD_URL or the local file)")
    p.set_defaults(func=run)
