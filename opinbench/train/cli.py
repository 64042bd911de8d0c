"""``opinbench train sft|grpo|wd``: the training commands.

Every key of `opinbench.train.config.SFTConfig` / `GRPOConfig` is both a YAML
key of ``--config`` and a flag (``--learning_rate 1e-4``, ``--lora_target_modules
q_proj,v_proj``, ``--task_metadata '{"elections": 2021}'``); a flag beats the
file. ``--print-defaults`` lists every key with its default and help.

    opinbench train sft --config configs/train/opinionqa_sft_distributional_cpu.yaml
    opinbench train grpo --config configs/train/wom_grpo_cpu.yaml --max_steps 10
    opinbench train wd --checkpoint runs/train/opinionqa_sft_cpu --limit 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from typing import Any

from opinbench.errors import ConfigError
from opinbench.train.config import GRPOConfig, SFTConfig, describe, load_config, parse_flag_value

COMMANDS = {"sft": SFTConfig, "grpo": GRPOConfig}


def _add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    parser.add_argument("--config", help="YAML file whose keys are the flags below")
    parser.add_argument("--print-defaults", action="store_true", help="print every key, default and help, and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    group = parser.add_argument_group("config keys (YAML keys of --config)")
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        group.add_argument(
            f"--{f.name}",
            dest=f"cfg_{f.name}",
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=f"{f.metadata.get('help', '')} (default: {json.dumps(default)})",
        )


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    hints = typing.get_type_hints(cls)
    overrides = {
        key[4:]: parse_flag_value(key[4:], hints[key[4:]], value)
        for key, value in vars(args).items()
        if key.startswith("cfg_")
    }
    return load_config(cls, getattr(args, "config", None), overrides)


def _run_train(args: argparse.Namespace) -> int:
    cls = COMMANDS[args.train_command]
    if args.print_defaults:
        sys.stdout.write(describe(cls))
        return 0
    config = config_from_args(cls, args)
    if args.print_config:
        import yaml

        from opinbench.train.config import to_dict

        sys.stdout.write(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True))
        return 0
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"training needs the train extra: pip install 'opinbench[train]' ({exc})") from None
    if args.train_command == "sft":
        from opinbench.train.sft import train_sft

        dirs = train_sft(config)
    else:
        from opinbench.train.grpo import train_grpo

        dirs = train_grpo(config)
    for d in dirs:
        print(d)
    return 0


def _run_wd(args: argparse.Namespace) -> int:
    from opinbench.train.evaluate import heldout

    result = heldout(args.checkpoint, limit=args.limit, batch_size=args.batch_size, task=args.task,
                     out=args.samples, progress=not args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['task']} on {result['n_docs']} held-out documents ({result['n_clusters']} questions), "
          f"metadata {json.dumps(result['metadata'])}")
    print(f"{'metric':<12} {'base':>16} {'checkpoint':>16} {'diff':>10} {'±doc':>8} {'±question':>10}")
    for m in ("wd", "kl", "onehot", "letter_mass", "acc", "p_gold"):
        if m in result:
            r = result[m]
            print(f"{m:<12} {r['base']:>9.4f}±{r['base_stderr']:.4f} {r['checkpoint']:>9.4f}±{r['checkpoint_stderr']:.4f} "
                  f"{r['diff']:>+10.4f} {r['diff_stderr']:>8.4f} {r['diff_stderr_clustered']:>10.4f}")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    parser = sub.add_parser(name, help=help_, description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    tsub = parser.add_subparsers(dest="train_command", metavar="COMMAND")
    for cmd, cls in COMMANDS.items():
        p = tsub.add_parser(cmd, help=(cls.__doc__ or "").splitlines()[0],
                            description=cls.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_config_flags(p, cls)
        p.set_defaults(func=_run_train)
    wd = tsub.add_parser("wd", help="held-out scores of a checkpoint vs its base model, in process")
    wd.add_argument("--checkpoint", required=True, help="checkpoint folder (with opinbench_train.json)")
    wd.add_argument("--limit", type=int, default=None, help="first N held-out documents (lm-eval's --limit order)")
    wd.add_argument("--batch-size", type=int, default=8)
    wd.add_argument("--task", default=None, help="another first-token task than the checkpoint's eval task")
    wd.add_argument("--samples", default=None, help="write per-document scores to this JSONL file")
    wd.add_argument("--json", action="store_true", help="print the result as JSON")
    wd.add_argument("--quiet", action="store_true", help="no progress bar")
    wd.set_defaults(func=_run_wd)
    parser.set_defaults(func=lambda a: parser.print_help() or 2)
