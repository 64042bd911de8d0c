"""``opinbench judge``: faithfulness and moderation of CoT reasoning from lm-eval samples.

Examples::

    # Claude as judge (ANTHROPIC_API_KEY), over an lm-eval --log_samples run
    opinbench judge faithfulness --samples runs/vk_cot/ --judge anthropic:claude-sonnet-4-6

    # offline: the packaged SmolLM2-135M as judge (no key, weak: read its control accuracy)
    opinbench judge faithfulness --samples runs/vk_cot/ --judge local:smollm2 --limit 20

    # OpenAI moderation endpoint (OPENAI_API_KEY), or Llama Guard behind vLLM
    opinbench judge moderation --samples runs/vk_cot/
    opinbench judge moderation --samples runs/vk_cot/ \\
        --moderator openai-compat:meta-llama/Llama-Guard-3-8B --base-url http://localhost:8000/v1

Without ``--judge`` / ``--moderator`` the default of ``judges/*.yaml`` is used
when its key is set, else the offline model named there (with a warning; the
results record it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from opinbench.errors import ConfigError
from opinbench.judging import registry

log = logging.getLogger("opinbench.judge")

INCOMPLETE_EXIT = 3
"""Exit status of a judge run with requests left unanswered (budget spent, or stopped)."""
FAILED_EXIT = 1
"""Exit status of a judge run in which not one request was answered (nothing written)."""
BAD_INPUT_EXIT = 2
"""Exit status of a judge run refused before it started (a bad option, cache or folder)."""


def register(subparsers: Any, name: str, help: str) -> None:  # noqa: A002 (cli.py's signature)
    """Add ``opinbench judge {faithfulness,moderation}`` to the top-level parser."""
    p = subparsers.add_parser(
        name,
        help=help,
        description="LLM judges over chain-of-thought samples: faithfulness and moderation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = p.add_subparsers(dest="judge_command", metavar="JUDGE")
    for entry in registry.JUDGES.values():
        kp = sub.add_parser(entry.kind, help=entry.help)
        entry.options.add_flags(kp)
        kp.set_defaults(func=main)

    def no_sub(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_sub)


def main(args: argparse.Namespace) -> int:
    """``opinbench judge KIND``: the flags as the kind's options, `run_judge`, the printout."""
    from opinbench.judging.api import run_judge
    from opinbench.judging.printing import show_outcome

    entry = registry.get(args.judge_command)
    try:
        options = entry.options.from_namespace(args)
        outcome = run_judge(entry.kind, options)
    except ConfigError as err:
        print(f"opinbench judge {entry.kind}: error: {err}", file=sys.stderr)
        return BAD_INPUT_EXIT
    if outcome.status == "failed":
        print(f"opinbench judge {entry.kind}: error: {outcome.why}", file=sys.stderr)
        return FAILED_EXIT
    show_outcome(outcome)
    return INCOMPLETE_EXIT if outcome.status == "incomplete" else 0
