"""`opinbench tasks`: list opinbench's tasks; `opinbench tasks-dir`: the folder to pass to `lm_eval --include_path`."""

from __future__ import annotations

import argparse

from opinbench.paths import tasks_dir


def format_tasks() -> str:
    """One line per task (name, data set, kind, description) and one per group, aligned."""
    from opinbench.harness import catalog

    infos = catalog.tasks()
    rows = [("task", "data", "kind", "description")]
    rows += [(t.name, t.data or "-", t.kind, t.description) for t in sorted(infos.values(), key=lambda t: t.name)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
    lines.append("")
    lines.append("groups (run several tasks at once):")
    for name, members in sorted(catalog.groups().items()):
        lines.append(f"  {name}: {', '.join(members)}")
    lines.append("")
    lines.append('settings: --metadata \'{"key": value}\' (opinbench eval checks the keys each task accepts)')
    return "\n".join(line.rstrip() for line in lines)


def _list(args: argparse.Namespace) -> int:
    print(format_tasks())
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    if name == "tasks":
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=_list)
        return
    p = sub.add_parser(name, help=help_, description=help_ + "; e.g. lm_eval --include_path \"$(opinbench tasks-dir)\" ...")
    p.set_defaults(func=lambda args: print(tasks_dir()))
