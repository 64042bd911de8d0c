"""The ``opinbench`` command line: a thin layer over the package.

Each command group lives in its own module that exposes ``register(subparsers)``;
the module is only imported when its command runs, so ``opinbench --help`` and
``opinbench tasks-dir`` stay instant.

Bad input ends every command the same way, here and nowhere else (`run_guarded`): one
line on stderr naming the problem and exit status 2, for opinbench's own errors, for a
file the system refuses (`OSError`: missing, unwritable, a name too long, a port in use)
and for a missing optional extra (the line names the ``pip install`` that brings it).
A usage error is one line too (`Parser.error`). ``--debug`` or ``OPINBENCH_DEBUG=1``
shows the traceback instead; anything else unexpected is a bug: one line asking for it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable

from opinbench.errors import OpinbenchError

# command -> (module with register(), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("opinbench.commands.data", "fetch, export and inspect data sets"),
    "tasks": ("opinbench.commands.tasks", "list opinbench's tasks: data set, kind and what each does"),
    "tasks-dir": ("opinbench.commands.tasks", "print the folder of opinbench's lm-eval task YAMLs"),
    "eval": ("opinbench.commands.evaluate", "run lm_eval with opinbench's tasks on the path"),
    "bounds": ("opinbench.commands.bounds", "uniform and human bounds of a distribution task's data"),
    "compare": ("opinbench.commands.compare", "paired significance tests between two lm-eval runs"),
    "report": ("opinbench.commands.report", "figures and an HTML page of the OpinionQA/SubPOP analyses of lm-eval runs"),
    "regress": ("opinbench.commands.regress", "fail when a candidate run is measurably worse than a baseline"),
    "export": ("opinbench.commands.export", "write a run in another schema (eee: Every Eval Ever)"),
    "judge": ("opinbench.judging.cli", "LLM-judge faithfulness and moderation of CoT reasoning"),
    "estimate": ("opinbench.commands.estimate", "documents, tokens, judge cost and GPU-hours of tasks"),
    "train": ("opinbench.train.cli", "SFT and GRPO training"),
    "leaderboard": ("opinbench.leaderboard.cli", "submit checkpoints, run evaluation workers, show the queue"),
}


DEBUG_ENV = "OPINBENCH_DEBUG"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (its own prints the usage lines first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(
        prog="opinbench",
        description="Opinion-alignment benchmarks for lm-evaluation-harness: data, tasks, judges, training.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error instead of one line (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module).register(sub, name, help_)
        else:
            sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    while argv and argv[0] == "--debug":  # `opinbench --debug eval ...`: eval is dispatched below
        debug = True
        argv.pop(0)
    # `opinbench eval ...` hands every argument to lm_eval untouched.
    if argv and argv[0] == "eval":
        from opinbench.commands.evaluate import run_lm_eval

        return run_guarded("eval", lambda: run_lm_eval(argv[1:]), debug=debug)
    parser = build_parser(argv)
    # A command that hands its arguments on (``train sft|grpo`` to TRL's parser) sets takes_extra_args.
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return stop.code if isinstance(stop.code, int) else 2
    command = " ".join(a for a in (args.command, getattr(args, f"{args.command}_command", None)) if a)
    if extra and not getattr(args, "takes_extra_args", False):
        print(f"opinbench {command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see opinbench {command} --help)", file=sys.stderr)
        return 2
    args.extra_args = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_guarded(command, lambda: args.func(args), debug=debug or args.debug)


def run_guarded(command: str, run: Callable[[], int | None], *, debug: bool = False) -> int:
    """``run()``'s exit status; an error it raises becomes one line on stderr (see the module
    docstring), re-raised instead when ``debug``."""
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        print("interrupted; everything finished so far is saved", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - the one place that turns errors into a line
        if debug:
            raise
        line, status = describe_error(err)
        print(f"opinbench {command}: error: {line}", file=sys.stderr)
        return status


def describe_error(err: BaseException) -> tuple[str, int]:
    """One line for ``err`` and the exit status: 2 for bad input or set-up, 1 for anything else."""
    if isinstance(err, OpinbenchError):
        return _one_line(str(err)), 2
    if isinstance(err, ImportError):
        missing = (err.name or "").split(".")[0]
        extra = extra_of(missing) if missing else None
        if extra:
            return f"{missing} is not installed: pip install \"opinbench[{extra}]\"", 2
        return _one_line(str(err)), 2
    if isinstance(err, OSError):
        return _os_error(err), 2
    # Not an error opinbench raises on purpose: a bug, or a library's error opinbench should name.
    hint = f"unexpected; rerun with --debug (or {DEBUG_ENV}=1) for the traceback"
    return f"{type(err).__name__}: {_one_line(str(err))} ({hint})", 1


def _short(value: object, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _one_line(text: str) -> str:
    """A message on one line, capped: a 5,000-character value must not flood the terminal."""
    return _short(" ".join(line.strip() for line in text.splitlines() if line.strip()), 1000)


def _os_error(err: OSError) -> str:
    why = err.strerror or _one_line(str(err)) or type(err).__name__
    names = [repr(_short(f)) for f in (err.filename, err.filename2) if f not in (None, "")]
    return f"{why}: {' -> '.join(names)}" if names else why


def extra_of(module: str) -> str | None:
    """The optional extra of opinbench (pyproject's ``[project.optional-dependencies]``) that
    brings ``module``; the test extra does not count.

    >>> extra_of("matplotlib"), extra_of("sqlalchemy"), extra_of("numpy")
    ('report', 'leaderboard', None)
    """
    wanted = module.lower().replace("_", "-")
    for extra, requirements in _extras().items():
        for req in requirements:
            name = re.match(r"[A-Za-z0-9_.-]+", req)
            if extra != "test" and name and name.group(0).lower().replace("_", "-") == wanted:
                return extra
    return None


def _extras() -> dict[str, list[str]]:
    """extra -> requirements, from the installed metadata, else from the checkout's pyproject.toml."""
    from importlib import metadata

    try:
        out: dict[str, list[str]] = {}
        for req in metadata.requires("opinbench") or []:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            if extra:
                out.setdefault(extra.group(1), []).append(req)
        return out
    except metadata.PackageNotFoundError:
        pass
    try:
        import tomllib
    except ImportError:  # Python 3.10 without opinbench installed: no hint, the plain error
        return {}
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("optional-dependencies", {})


if __name__ == "__main__":
    sys.exit(main())
