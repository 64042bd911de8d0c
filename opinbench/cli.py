"""The ``opinbench`` command line: a thin layer over the package.

Each command group lives in its own module that exposes ``register(subparsers)``;
the module is only imported when its command runs, so ``opinbench --help`` and
``opinbench tasks-dir`` stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

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


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opinbench",
        description="Opinion-alignment benchmarks for lm-evaluation-harness: data, tasks, judges, training.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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
    # `opinbench eval ...` hands every argument to lm_eval untouched.
    if argv and argv[0] == "eval":
        from opinbench.commands.evaluate import run_lm_eval

        return run_lm_eval(argv[1:])
    parser = build_parser(argv)
    # A command that hands its arguments on (``train sft|grpo`` to TRL's parser) sets takes_extra_args.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OpinbenchError as err:
        print(f"opinbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything finished so far is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
