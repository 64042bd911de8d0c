"""`opinbench eval ...`: lm_eval with opinbench's tasks on the include path.

Every argument goes to ``lm_eval run`` unchanged, with these additions:

* ``--include_path`` is set to `opinbench tasks-dir`;
* without ``--model``: the embedded default, SmolLM2-135M-Instruct from its PyPI
  package (``--model hf``, ``--apply_chat_template``, ``--batch_size 16``);
* ``--model opinbench-vllm`` is lm-eval's vllm backend sending fewer requests that
  share vLLM's prefix cache (`opinbench.harness.vllm_model`, docs/vllm.md); with it
  and ``--model vllm``, ``--batch_size`` defaults to ``auto`` (lm-eval's default, 1,
  would hand vLLM one request at a time);
* ``pretrained=smollm2`` / ``pretrained=gemma3`` in ``--model_args`` name the
  packaged models, with their embedded defaults (``dtype=float32``, ``--batch_size 16``,
  the chat template for the chat model) unless given (``--no_apply_chat_template``
  turns the template off); what is used is printed; the output folder is named after
  the model (``runs/smollm2``), not its cache path;
* without ``--tasks``: ``opinionqa_wd``; without ``--output_path``: ``runs/``;
  ``--log_samples`` is on unless ``--no_log_samples`` is given, so that every
  score can be recomputed from what was saved;
* ``--limit`` defaults to 340 documents (20 whole questions x 17 groups, a
  few minutes on a laptop CPU) when neither ``--model`` nor ``--tasks`` is given;
  ``--limit none`` runs everything;
* ``--model opinbench-hf`` (`opinbench.harness.fast_hf`) is lm-eval's ``hf`` scoring
  only the continuation positions: the same numbers, faster; the printed command
  line then runs it as ``python -m opinbench.harness.fast_hf``.

Before lm-eval loads a model, the tasks are checked: a name close to an opinbench
task but not one gets a "did you mean" (``opinbench tasks`` lists them), and each
task's settings (its YAML metadata and ``--metadata``) are checked by
`opinbench.harness.settings.check`: unknown keys, bad values, a missing data folder.
A mistake is one line and exit status 2. After lm-eval's table, one line per
distribution task compares its WD with the uniform and human bounds.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path

from opinbench.paths import tasks_dir

DEFAULT_TASK = "opinionqa_wd"
DEFAULT_LIMIT = "340"
DEFAULT_BATCH_SIZE = "16"
DEFAULT_DTYPE = "float32"
NO_CHAT_TEMPLATE = "--no_apply_chat_template"
# vLLM schedules its own batches: lm-eval's --batch_size N would cut them into chunks of N.
VLLM_MODELS = ("vllm", "opinbench-vllm")

log = logging.getLogger(__name__)


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


def _split_model_args(model_args: str) -> list[tuple[str, str, str]]:
    return [kv.partition("=") for kv in model_args.split(",") if kv]


def build_argv(argv: list[str], notes: list[str] | None = None) -> list[str]:
    """The ``lm_eval run`` arguments for ``opinbench eval argv``.

    ``notes`` (if given) receives one line per default that was filled in.
    """
    from opinbench.models import DEFAULT_MODEL, PACKAGED, resolve

    notes = [] if notes is None else notes
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
            argv += ["--model_args", f"pretrained={DEFAULT_MODEL}"]
    if _value(argv, "--model") in VLLM_MODELS and _value(argv, "--batch_size") is None:
        argv += ["--batch_size", "auto"]
        notes.append("--batch_size auto: vLLM schedules the batches (lm-eval's default, 1, "
                     "would send one request at a time)")
    no_template = NO_CHAT_TEMPLATE in argv
    if no_template:
        argv.remove(NO_CHAT_TEMPLATE)
    model_args = _value(argv, "--model_args")
    if model_args:
        parts = _split_model_args(model_args)
        packaged = next((v for k, sep, v in parts if k == "pretrained" and sep and v in PACKAGED), None)
        if packaged:
            # A packaged model keeps its embedded defaults unless the user sets them.
            used = []
            if not any(k == "dtype" for k, _, _ in parts):
                parts.append(("dtype", "=", DEFAULT_DTYPE))
                used.append(f"dtype={DEFAULT_DTYPE}")
            if _value(argv, "--batch_size") is None:
                argv += ["--batch_size", DEFAULT_BATCH_SIZE]
                used.append(f"--batch_size {DEFAULT_BATCH_SIZE}")
            chat = "--apply_chat_template" in argv or any(a.startswith("--apply_chat_template=") for a in argv)
            if PACKAGED[packaged].chat and not chat and not no_template:
                argv.append("--apply_chat_template")
                used.append("--apply_chat_template")
            template = "with" if "--apply_chat_template" in argv else "without"
            notes.append(
                f"model {packaged} ({PACKAGED[packaged].description}), {template} chat template; "
                + (f"embedded defaults: {', '.join(used)}" if used else "no embedded default needed")
                + f" (override with --model_args dtype=..., --batch_size N, --apply_chat_template / {NO_CHAT_TEMPLATE})"
            )
        out = []
        for key, sep, val in parts:
            if key in ("pretrained", "peft") and sep and val in PACKAGED:
                val = resolve(val)
            out.append(f"{key}{sep}{val}")
        argv = _replace(argv, "--model_args", ",".join(out))
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
        notes.append(f"embedded defaults, limited to {DEFAULT_LIMIT} documents (--limit none for the full task)")
    return ["run", *argv, "--include_path", str(tasks_dir())]


def _user_metadata(lm_argv: list[str]) -> dict:
    """``--metadata`` as lm-eval reads it: a JSON object, or a path to a JSON file."""
    raw = _value(lm_argv, "--metadata")
    if not raw:
        return {}
    from opinbench.errors import ConfigError

    text = Path(raw).read_text(encoding="utf-8") if not raw.lstrip().startswith("{") and Path(raw).is_file() else raw
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--metadata is not a JSON object: {err.msg} at column {err.colno}: {raw}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--metadata must be a JSON object, got {raw}")
    return value


def preflight(lm_argv: list[str]) -> None:
    """Check task names and settings before lm-eval loads a model (`ConfigError`, one line).

    A name that is not opinbench's passes on to lm-eval (its own tasks, a YAML path),
    unless it is close to an opinbench name: then it is a typo, with suggestions.
    """
    from opinbench.errors import ConfigError
    from opinbench.harness import catalog, settings

    user = _user_metadata(lm_argv)
    tasks: list[str] = []
    for name in (_value(lm_argv, "--tasks") or "").split(","):
        name = name.strip()
        if not name:
            continue
        resolved = catalog.resolve(name)
        if resolved is None:
            close = catalog.suggest(name)
            if close and not any(c in name for c in "/*?."):
                raise ConfigError(
                    f"unknown task {name!r}; did you mean {' or '.join(close)}? (`opinbench tasks` lists them)"
                )
            continue
        tasks += [t for t in resolved if t not in tasks]
    infos = [catalog.tasks()[t] for t in tasks if catalog.tasks()[t].hook is not None]
    if not infos:
        return
    # A --metadata key goes to every task of the run: it is a mistake when no task takes it.
    for key in user:
        if not any(key in settings.accepted_keys(i.hook, user.get("data", i.metadata.get("data"))) for i in infos):
            settings.check(infos[0].name, infos[0].hook, {**infos[0].metadata, **user}, keys=[key])
    for info in infos:
        merged = {**info.metadata, **user}
        accepted = settings.accepted_keys(info.hook, merged.get("data"))
        own = [k for k in info.metadata if k not in accepted]  # a YAML's own key must be known too
        settings.check(info.name, info.hook, merged, keys=own)


def output_folder(lm_argv: list[str]) -> Path | None:
    """The folder lm-eval writes this run's files to (``<output_path>/<model name>``)."""
    output = _value(lm_argv, "--output_path")
    model_args = _value(lm_argv, "--model_args") or ""
    pretrained = next((v for k, sep, v in _split_model_args(model_args) if k == "pretrained" and sep), None)
    if not output or not pretrained or Path(output).suffix == ".json":
        return None
    return Path(output) / folder_name(pretrained)


def folder_name(pretrained: str) -> str:
    """lm-eval's folder name for a model, a packaged model's cache folder named by its name."""
    from lm_eval.utils import sanitize_model_name

    from opinbench.models import PACKAGED, cache_root

    path = Path(pretrained)
    if path.name in PACKAGED and path.parent == cache_root() / "models":
        return path.name
    return sanitize_model_name(pretrained)


def _name_packaged_folders() -> None:
    """Make lm-eval name the output folder of a packaged model ``smollm2``, not after its cache path.

    lm-eval builds the folder name from ``pretrained=`` (`sanitize_model_name`) and has no
    option for another name; the packaged model has to be passed as its cache path. So its
    evaluation tracker gets opinbench's `folder_name`, in this process only.
    """
    from lm_eval.loggers import evaluation_tracker

    evaluation_tracker.sanitize_model_name = folder_name


def print_summary(folder: Path | None, before: set[Path]) -> None:
    """One line per distribution task of the results file this run wrote (`reports.summary`)."""
    from opinbench import runs
    from opinbench.reports.summary import distribution_lines

    if folder is None or not folder.is_dir():
        return
    new = [f for f in runs.results_files(folder) if f not in before]
    if not new:
        return
    lines = distribution_lines(runs.read_results(new[-1]))
    if lines:
        print("\n".join(lines))


def run_lm_eval(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from opinbench.errors import ConfigError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    notes: list[str] = []
    try:
        # Checked before build_argv, which may convert a packaged model on its first use.
        preflight(argv if _value(argv, "--tasks") else [*argv, "--tasks", DEFAULT_TASK])
        lm_argv = build_argv(argv, notes)
    except ConfigError as err:
        print(f"opinbench eval: error: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"opinbench eval: {note}", file=sys.stderr)
    from opinbench.harness import lm_models

    # Quoted, so that the line can be pasted back into a shell; opinbench's models through the
    # module that registers them.
    print(shlex.join([*lm_models.launcher(_value(lm_argv, "--model")), *lm_argv]), file=sys.stderr)
    from lm_eval.__main__ import cli_evaluate

    from opinbench.harness import quiet_logs

    quiet_logs.install()
    lm_models.register()  # --model opinbench-hf / opinbench-vllm (lazily: imported only if used)
    _name_packaged_folders()
    folder = output_folder(lm_argv)
    from opinbench import runs

    before = set(runs.results_files(folder)) if folder and folder.is_dir() else set()
    sys.argv = ["lm_eval", *lm_argv]
    try:
        cli_evaluate()
    except ValueError as err:  # lm-eval's own check of the task names: bad input, one line
        if not str(err).startswith("Tasks not found"):
            raise
        print(f"opinbench eval: error: {err} (`opinbench tasks` lists opinbench's; `lm_eval ls tasks` every one)",
              file=sys.stderr)
        return 2
    print_summary(folder, before)
    return 0


def register(sub, name, help_):  # pragma: no cover - `eval` is dispatched before argparse
    p = sub.add_parser(name, help=help_, add_help=False)
    p.set_defaults(func=lambda args: run_lm_eval([]))
