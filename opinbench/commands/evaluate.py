"""`opinbench eval ...`: lm_eval with opinbench's tasks on the include path.

Every argument goes to ``lm_eval run`` unchanged, with these additions:

* ``--include_path`` is set to `opinbench tasks-dir`;
* without ``--model``: the embedded default, SmolLM2-135M-Instruct from its PyPI
  package (``--model hf``, ``--apply_chat_template``, ``--batch_size 16``);
* ``pretrained=smollm2`` / ``pretrained=gemma3`` in ``--model_args`` name the
  packaged models;
* without ``--tasks``: ``opinionqa_wd``; without ``--output_path``: ``runs/``;
  ``--log_samples`` is on unless ``--no_log_samples`` is given, so that every
  score can be recomputed from what was saved;
* ``--limit`` defaults to 340 documents (20 whole questions x 17 groups, a
  few minutes on a laptop CPU) when neither ``--model`` nor ``--tasks`` is given;
  ``--limit none`` runs everything.
"""

from __future__ import annotations

import os
import sys

from opinbench.paths import tasks_dir

DEFAULT_TASK = "opinionqa_wd"
DEFAULT_LIMIT = "340"


def _value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _replace(argv: list[str], flag: str, value: str) -> list[str]:
    out = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == flag:
            out += [flag, value]
            skip = True
        elif a.startswith(flag + "="):
            out.append(f"{flag}={value}")
        else:
            out.append(a)
    return out


def _remove(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def build_argv(argv: list[str]) -> list[str]:
    """The ``lm_eval run`` arguments for ``opinbench eval argv``."""
    from opinbench.models import DEFAULT_MODEL, PACKAGED, resolve

    argv = list(argv)
    if _value(argv, "--include_path") is not None:
        raise SystemExit(
            "opinbench eval sets --include_path itself; to combine opinbench's tasks with your own, "
            "run lm_eval with --config listing both folders under include_path"
        )
    defaults = _value(argv, "--model") is None and _value(argv, "--tasks") is None
    if _value(argv, "--model") is None:
        argv += ["--model", "hf"]
        if _value(argv, "--model_args") is None:
            argv += ["--model_args", f"pretrained={DEFAULT_MODEL},dtype=float32"]
            if "--apply_chat_template" not in argv and PACKAGED[DEFAULT_MODEL].chat:
                argv.append("--apply_chat_template")
        if _value(argv, "--batch_size") is None:
            argv += ["--batch_size", "16"]
    model_args = _value(argv, "--model_args")
    if model_args:
        parts = []
        for kv in model_args.split(","):
            key, sep, val = kv.partition("=")
            if key in ("pretrained", "peft") and sep and val in PACKAGED:
                val = resolve(val)
            parts.append(f"{key}{sep}{val}")
        argv = _replace(argv, "--model_args", ",".join(parts))
    if _value(argv, "--tasks") is None:
        argv += ["--tasks", DEFAULT_TASK]
    if _value(argv, "--output_path") is None:
        argv += ["--output_path", "runs"]
    if "--no_log_samples" in argv:
        argv.remove("--no_log_samples")
    elif "--log_samples" not in argv and "-s" not in argv:
        argv.append("--log_samples")
    limit = _value(argv, "--limit")
    if limit is not None and limit.lower() == "none":
        argv = _remove(argv, "--limit")
    elif limit is None and defaults:
        argv += ["--limit", DEFAULT_LIMIT]
        print(
            f"opinbench eval: embedded defaults, limited to {DEFAULT_LIMIT} documents "
            f"(--limit none for the full task)",
            file=sys.stderr,
        )
    return ["run", *argv, "--include_path", str(tasks_dir())]


def run_lm_eval(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lm_argv = build_argv(argv)
    print("lm_eval " + " ".join(lm_argv), file=sys.stderr)
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *lm_argv]
    cli_evaluate()
    return 0


def register(sub, name, help_):  # pragma: no cover - `eval` is dispatched before argparse
    p = sub.add_parser(name, help=help_, add_help=False)
    p.set_defaults(func=lambda args: run_lm_eval([]))
