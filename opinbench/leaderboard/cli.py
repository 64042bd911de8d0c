"""``opinbench leaderboard submit|worker|status|validate``: the queue from the command line.

Every subcommand takes ``--store URL`` (default ``$OPINBENCH_LEADERBOARD_URL``, else an SQLite
file in the user's data folder; a plain path is an SQLite file; ``postgresql://...`` a shared
server).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
import tempfile
import time
from typing import Any

from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.leaderboard")


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="Submit checkpoints, run evaluation workers, show the queue.")
    lb = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", metavar="URL", default=None,
                       help="database URL or SQLite file (default: $OPINBENCH_LEADERBOARD_URL or the user data folder)")

    s = lb.add_parser("submit", help="check a checkpoint and queue it (or ingest a self-reported run)")
    s.add_argument("name", help="leaderboard (leaderboards/<name>.yaml) or a definition file")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="ORG/NAME[@REVISION] on the hub, or a local folder")
    what.add_argument("--results", metavar="RUN_DIR", help="ingest an lm-eval output folder as a self-reported entry")
    s.add_argument("--peft", metavar="ADAPTER", help="a PEFT adapter folder (e.g. made by opinbench train)")
    s.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16 (default: auto)")
    s.add_argument("--no-chat-template", action="store_true", help="evaluate without the model's chat template")
    s.add_argument("--submitter", help="who submits (shown beside the entry)")
    s.add_argument("--rerun", action="store_true", help="add a deliberate rerun of an existing identical entry")
    common(s)
    s.set_defaults(func=cmd_submit)

    w = lb.add_parser("worker", help="claim and evaluate queued requests")
    w.add_argument("--once", action="store_true", help="process at most one request, then exit")
    w.add_argument("--until-empty", action="store_true", help="exit when the queue is empty instead of waiting")
    w.add_argument("--backend", choices=("hf", "opinbench-hf", "vllm"), default="hf",
                   help="lm-eval model: hf, opinbench-hf (hf's numbers, continuation positions only: faster), vllm")
    w.add_argument("--lease", type=float, default=600.0, help="lease seconds, renewed while running (default 600)")
    w.add_argument("--poll", type=float, default=10.0, help="seconds between looks at an empty queue")
    common(w)
    w.set_defaults(func=cmd_worker)

    st = lb.add_parser("status", help="the queue, or one request in full")
    st.add_argument("id", nargs="?", type=int)
    st.add_argument("--leaderboard", help="only this leaderboard")
    st.add_argument("--json", action="store_true", help="print JSON")
    common(st)
    st.set_defaults(func=cmd_status)

    v = lb.add_parser("validate", help="validate a stored entry again from its stored lm-eval files")
    v.add_argument("id", type=int)
    common(v)
    v.set_defaults(func=cmd_validate)

    b = lb.add_parser("build", help="write the static site of a leaderboard")
    b.add_argument("name")
    b.add_argument("--out", required=True, metavar="DIR")
    common(b)
    b.set_defaults(func=cmd_build)

    sv = lb.add_parser("serve", help="preview a built site locally")
    sv.add_argument("dir")
    sv.add_argument("--port", type=int, default=8000)
    sv.set_defaults(func=cmd_serve)


def _store(args: argparse.Namespace):
    """The store of ``--store``; one that cannot be opened is a `ConfigError` naming it and why
    (missing database, unreachable server, not an SQLite file, unwritable folder, unknown scheme)."""
    import sqlalchemy.exc

    from opinbench.leaderboard.store import Store, default_url

    url = args.store or default_url()
    shown = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # never print a password
    try:
        return Store.open(url)
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ConfigError(f"store {shown}: {reason}") from None
    except OSError as err:
        raise ConfigError(f"store {shown}: {err.strerror or err}: {err.filename}") from None


def cmd_submit(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.definition import load_definition
    from opinbench.leaderboard.store import FAILED, FINISHED, RUNNING
    from opinbench.leaderboard.submit import ingest_fields, precheck
    from opinbench.leaderboard.validate import validate_run

    definition = load_definition(args.name)
    store = _store(args)
    if args.results:
        fields = ingest_fields(definition, args.results, submitter=args.submitter)
        rid = store.submit(fields, rerun=args.rerun, state=RUNNING)
        report = validate_run(args.results, definition)
        report["command"] = "self-reported: " + json.dumps(fields["settings"]["model_args"])
        store.put_files(rid, args.results)
        state = FAILED if report["errors"] else FINISHED
        reason = "validation failed: " + "; ".join(report["errors"][:5]) if report["errors"] else None
        store.set_result(rid, state=state, result=report, reason=reason)
        print(f"request {rid}: self-reported entry {state}" + (f" ({reason})" if reason else ""))
        if not report["errors"]:
            print(f"next: `opinbench leaderboard build {definition.name} --out site{_flag(args)}` "
                  "writes the site with it")
        return 1 if report["errors"] else 0
    fields = precheck(definition, args.model, adapter=args.peft, dtype=args.dtype,
                      chat_template=not args.no_chat_template, submitter=args.submitter)
    rid = store.submit(fields, rerun=args.rerun)
    print(f"request {rid}: PENDING ({fields['model']} on {definition.name} v{definition.version})")
    print(f"next: `opinbench leaderboard worker --until-empty{_flag(args)}` evaluates the queue; "
          f"`opinbench leaderboard status {rid}{_flag(args)}` follows this request")
    return 0


def _flag(args: argparse.Namespace) -> str:
    """The ``--store`` part of a command to run next (none for the default store)."""
    return "" if args.store is None else f" --store {shlex.quote(args.store)}"


def cmd_worker(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.worker import run_worker

    n = run_worker(_store(args), once=args.once, backend=args.backend, lease_s=args.lease,
                   poll_s=0 if args.until_empty else args.poll)
    print(f"processed {n} request(s)")
    return 0


def _age(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def cmd_status(args: argparse.Namespace) -> int:
    store = _store(args)
    # Which store: the default one is a file in the user data folder, easy to confuse with another.
    print(f"store: {store.url}", file=sys.stderr if args.json else sys.stdout)
    if args.id is not None:
        row = store.get(args.id)
        row["files"] = store.file_list(args.id)
        if args.json:
            print(json.dumps(row, indent=1, default=str))
            return 0
        for key in ("id", "leaderboard", "leaderboard_version", "state", "model", "revision", "weights_hash",
                    "adapter", "adapter_hash", "dtype", "chat_template", "submitter", "self_reported", "rerun_of",
                    "worker", "attempts", "reason"):
            print(f"{key:20} {row[key]}")
        result = row.get("result") or {}
        for w in result.get("warnings", []):
            print(f"warning              {w}")
        for e in result.get("errors", []):
            print(f"error                {e}")
        if result.get("headline") is not None:
            print(f"{'headline':20} {result['headline']:.4f}")
        if row.get("log_tail") and row["state"] == "FAILED":
            print("--- log tail ---\n" + row["log_tail"])
        return 0
    rows = store.list(args.leaderboard)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    print(f"{'id':>5}  {'state':8}  {'leaderboard':12}  {'submitted':16}  {'headline':>8}  model")
    for r in rows:
        head = (r.get("result") or {}).get("headline")
        extra = f"  [{r['reason']}]" if r["state"] == "FAILED" and r.get("reason") else ""
        tag = " (self-reported)" if r["self_reported"] else (" (rerun)" if r["rerun_of"] else "")
        print(f"{r['id']:>5}  {r['state']:8}  {r['leaderboard']:12}  {_age(r['created']):16}  "
              f"{'' if head is None else f'{head:.4f}':>8}  {r['model']}{tag}{extra}", file=sys.stdout)
    return 0


def revalidate(store: Any, request_id: int) -> dict[str, Any]:
    """Validate a stored entry again from its stored files (what the site is built from)."""
    from opinbench.leaderboard.definition import load_definition
    from opinbench.leaderboard.validate import validate_run

    row = store.get(request_id)
    definition = load_definition(row["leaderboard"])
    with tempfile.TemporaryDirectory() as tmp:
        store.export_files(request_id, tmp)
        return validate_run(tmp, definition)


def cmd_validate(args: argparse.Namespace) -> int:
    report = revalidate(_store(args), args.id)
    for e in report["errors"]:
        print(f"error: {e}")
    for w in report["warnings"]:
        print(f"warning: {w}")
    print("valid" if not report["errors"] else f"{len(report['errors'])} error(s)")
    return 1 if report["errors"] else 0


def cmd_build(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.site import build_site

    print(build_site(_store(args), args.name, args.out))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:  # pragma: no cover - interactive
    from opinbench.leaderboard.site import serve

    serve(args.dir, args.port)
    return 0
