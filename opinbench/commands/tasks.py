"""`opinbench tasks-dir`: print the folder to pass to `lm_eval --include_path`."""

from __future__ import annotations

import argparse

from opinbench.paths import tasks_dir


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=help_ + "; e.g. lm_eval --include_path \"$(opinbench tasks-dir)\" ...")
    p.set_defaults(func=lambda args: print(tasks_dir()))
