"""``opinbench leaderboard define|submit|worker|status|validate|build``: the queue from the command line.

``define FILE`` (an admin's command) registers a definition with its digest; ``submit NAME`` names
a registered board (a shipped definition is registered on its first use). Every string a
submitter controls is printed through `printable` (control characters escaped), so a model
name cannot move the cursor, draw a row or hide a tag. Every subcommand takes ``--store URL`` (default ``$OPINBENCH_LEADERBOARD_URL``, else an SQLite
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
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.leaderboard")


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description="Submit checkpoints, run evaluation workers, show the queue.")
    lb = p.add_subparsers(dest="leaderboard_command", metavar="SUBCOMMAND")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", metavar="URL", default=None,
                       help="database URL or SQLite file (default: $OPINBENCH_LEADERBOARD_URL or the user data folder)")

    d = lb.add_parser("define", help="register a leaderboard definition file (admins)")
    d.add_argument("file", help="a definition YAML (format: leaderboards/*.yaml)")
    common(d)
    d.set_defaults(func=cmd_define)

    s = lb.add_parser("submit", help="check a checkpoint and queue it (or ingest a self-reported run)")
    s.add_argument("name", help="a registered leaderboard (the shipped ones register on first use)")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="ORG/NAME[@REVISION] on the hub, or a local folder")
    what.add_argument("--results", metavar="RUN_DIR", help="ingest an lm-eval output folder as a self-reported entry")
    s.add_argument("--peft", metavar="ADAPTER", help="a PEFT adapter folder (e.g. made by opinbench train)")
    s.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16 (default: auto)")
    s.add_argument("--no-chat-template", action="store_true", help="evaluate without the model's chat template")
    s.add_argument("--submitter", help="who submits (shown beside the entry)")
    s.add_argument("--name", dest="display_name", help="the entry's public name (default: the hub id or the "
                   "config's model name; required for a local folder that has neither)")
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


def printable(text: Any, *, newlines: bool = False) -> str:
    r"""A submitted string made safe for a terminal line: control characters (ESC, CR, ...) escaped.

    >>> printable("org/m\x1b[2K\rfake"), printable("a\nb"), printable("a\nb", newlines=True)
    ('org/m\\x1b[2K\\rfake', 'a\\nb', 'a\nb')
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch == "\n" and newlines:
            out.append(ch)
        elif code < 32 or 127 <= code < 160 or ch in "\u2028\u2029\u202e\u2066\u2067\u2068\u2069":
            out.append(repr(ch)[1:-1] if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def plural(n: int, word: str) -> str:
    """Counted nouns ("1 entry", "2 entries").

    >>> plural(1, "entry"), plural(2, "entry"), plural(0, "request")
    ('1 entry', '2 entries', '0 requests')
    """
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else f"{n} {word}s"


def cmd_define(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.definition import definition_path, load_definition

    if not str(args.file).endswith((".yaml", ".yml")):
        args.file = str(definition_path(args.file))
    definition = load_definition(args.file)
    new = _store(args).define(definition)
    state = "registered" if new else "already registered (same digest)"
    print(f"{definition.name} v{definition.version}: {state}, digest {definition.digest}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.submit import precheck
    from opinbench.leaderboard.worker import ingest

    store = _store(args)
    definition = store.board(args.name)
    if args.results:
        rid = ingest(store, definition, args.results, submitter=args.submitter, name=args.display_name,
                     rerun=args.rerun)
        print(f"request {rid}: self-reported run accepted on {definition.name} v{definition.version}; "
              "queued for its reproduction audit (ranked once reproduced)")
        print(f"next: `opinbench leaderboard worker --until-empty{_flag(args)}` runs the audit; "
              f"`opinbench leaderboard status {rid}{_flag(args)}` follows it")
        return 0
    fields = precheck(definition, args.model, adapter=args.peft, dtype=args.dtype,
                      chat_template=not args.no_chat_template, submitter=args.submitter, name=args.display_name)
    rid = store.submit(fields, rerun=args.rerun)
    print(f"request {rid}: PENDING ({printable(fields['display_name'])} on {definition.name} v{definition.version})")
    print(f"next: `opinbench leaderboard worker --until-empty{_flag(args)}` evaluates the queue; "
          f"`opinbench leaderboard status {rid}{_flag(args)}` follows this request")
    return 0


def _flag(args: argparse.Namespace) -> str:
    """The ``--store`` part of a command to run next (none for the default store)."""
    return "" if args.store is None else f" --store {shlex.quote(args.store)}"


def cmd_worker(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.worker import run_worker

    tally = run_worker(_store(args), once=args.once, backend=args.backend, lease_s=args.lease,
                       poll_s=0 if args.until_empty else args.poll)
    print(tally.summary())
    return 1 if tally.failed else 0


def _age(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


_DETAIL = ("id", "leaderboard", "leaderboard_version", "state", "display_name", "model", "revision", "weights_hash",
           "adapter", "adapter_hash", "dtype", "chat_template", "submitter", "self_reported", "rerun_of", "job",
           "worker", "attempts", "definition_digest", "reason")


def _status_one(store: Any, request_id: int, as_json: bool) -> int:
    from opinbench.leaderboard.audit import label

    row = store.get(request_id)
    row["files"] = store.file_list(request_id)
    if as_json:
        print(json.dumps(row, indent=1, default=str))
        return 0
    for key in _DETAIL:
        print(f"{key:20} {printable(row.get(key))}")
    if row.get("self_reported"):
        print(f"{'audit':20} {label(row.get('audit'), True)}")
    result = row.get("result") or {}
    for w in result.get("warnings", []):
        print(f"warning              {printable(w)}")
    for e in result.get("errors", []):
        print(f"error                {printable(e)}")
    if result.get("headline") is not None:
        print(f"{'headline':20} {result['headline']:.4f}")
    if row.get("log_tail") and row["state"] == "FAILED":
        print("--- log tail ---\n" + printable(row["log_tail"], newlines=True))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.audit import label

    store = _store(args)
    # Which store: the default one is a file in the user data folder, easy to confuse with another.
    print(f"store: {store.url}", file=sys.stderr if args.json else sys.stdout)
    if args.id is not None:
        return _status_one(store, args.id, args.json)
    rows = store.list(args.leaderboard)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    print(f"{'id':>5}  {'state':8}  {'leaderboard':12}  {'submitted':16}  {'headline':>8}  model")
    for r in rows:
        head = (r.get("result") or {}).get("headline")
        extra = f"  [{printable(r['reason'])}]" if r["state"] == "FAILED" and r.get("reason") else ""
        tag = (f" (self-reported, {label(r.get('audit'), True)})" if r["self_reported"]
               else (" (rerun)" if r["rerun_of"] else ""))
        print(f"{r['id']:>5}  {r['state']:8}  {printable(r['leaderboard']):12}  {_age(r['created']):16}  "
              f"{'' if head is None else f'{head:.4f}':>8}  {printable(r.get('display_name') or r['model'])}{tag}{extra}")
    print(plural(len(rows), "request"))
    return 0


def revalidate(store: Any, request_id: int) -> dict[str, Any]:
    """Validate a stored entry again from its stored files with the registered definition it was
    submitted to, and compare every stored number with the recomputed one (``stored_differences``)."""
    from opinbench.leaderboard.plan import Request
    from opinbench.leaderboard.validate import compare_stored
    from opinbench.leaderboard.worker import validated

    row = store.get(request_id)
    definition = store.board(row["leaderboard"], row["leaderboard_version"])
    stored = row.get("result") or {}
    with tempfile.TemporaryDirectory() as tmp:
        store.export_files(request_id, tmp)
        report = validated(definition, Path(tmp), Request.from_row(row), command=stored.get("command", ""))
    report["stored_differences"] = compare_stored(stored, report, definition, row.get("definition_digest"))
    report["errors"] += [f"stored number differs: {d}" for d in report["stored_differences"]]
    return report


def cmd_validate(args: argparse.Namespace) -> int:
    report = revalidate(_store(args), args.id)
    for e in report["errors"]:
        print(f"error: {printable(e)}")
    for w in report["warnings"]:
        print(f"warning: {printable(w)}")
    print("valid" if not report["errors"] else plural(len(report["errors"]), "error"))
    return 1 if report["errors"] else 0


def cmd_build(args: argparse.Namespace) -> int:
    from opinbench.leaderboard.site import build_site

    print(build_site(_store(args), args.name, args.out))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:  # pragma: no cover - interactive
    from opinbench.leaderboard.site import serve

    serve(args.dir, args.port)
    return 0
