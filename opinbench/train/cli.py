"""``opinbench train sft|grpo|wd``: the training commands.

Every field of `opinbench.train.config.SFTConfig` / `GRPOConfig` (TRL's config
classes with opinbench's fields) is both a YAML key of ``--config`` and a flag
(``--learning_rate 1e-4``, ``--lora_target_modules q_proj v_proj``,
``--task_metadata '{"elections": 2021}'``), parsed by ``trl.TrlParser``; a flag
beats the file. ``--help`` documents every flag, ``--print-defaults`` lists
every key with its default and help, ``--print-config`` the resolved config.

    opinbench train sft --config configs/train/opinionqa_sft_distributional_cpu.yaml
    opinbench train grpo --config configs/train/wom_grpo_cpu.yaml --max_steps 10
    opinbench train wd --checkpoint runs/train/opinionqa_sft_cpu --limit 300

On several processes (``configs/accelerate/``, ``docs/training.md``)::

    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml -m opinbench train sft --config CFG.yaml
"""

from __future__ import annotations

import argparse
import json
import sys

from opinbench.errors import ConfigError

# command -> (config class name in opinbench.train.config, one-line help); the classes are imported
# only when their command runs (they import TRL)
COMMANDS = {
    "sft": ("SFTConfig", "distributional, answer-only or chain-of-thought SFT"),
    "grpo": ("GRPOConfig", "TRL's GRPOTrainer on a CoT task's prompts"),
}


def _run_train(args: argparse.Namespace) -> int:
    try:
        from opinbench.train import config as cfg
    except ImportError as exc:
        raise ConfigError(f"training needs the train extra: pip install 'opinbench[train]' ({exc})") from None
    cls = getattr(cfg, COMMANDS[args.train_command][0])
    argv = list(args.extra_args)
    if "--print-defaults" in argv:  # before parsing: the defaults need no output_dir
        sys.stdout.write(cfg.describe(cls))
        return 0
    config, options = cfg.config_parser(cls).parse(argv)
    if options.print_config:
        import yaml

        sys.stdout.write(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
        return 0
    try:
        import peft  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"training needs the train extra: pip install 'opinbench[train]' ({exc})") from None
    if args.train_command == "sft":
        from opinbench.train.sft import train_sft

        dirs = train_sft(config)
    else:
        from opinbench.train.grpo import train_grpo

        dirs = train_grpo(config)
    if config.process_index == 0:  # under accelerate launch, one list of folders, not one per process
        for d in dirs:
            print(d)
    return 0


def _run_wd(args: argparse.Namespace) -> int:
    from opinbench.train.evaluate import METRICS, heldout

    result = heldout(args.checkpoint, limit=args.limit, batch_size=args.batch_size, task=args.task,
                     out=args.samples, progress=not args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['task']} on {result['n_docs']} held-out documents ({result['n_clusters']} questions), "
          f"metadata {json.dumps(result['metadata'])}")
    print(f"{'metric':<12} {'base':>16} {'checkpoint':>16} {'diff':>10} {'±doc':>8} {'±question':>10}")
    for m in METRICS:
        if m in result:
            r = result[m]
            print(f"{m:<12} {r['base']:>9.4f}±{r['base_stderr']:.4f} {r['checkpoint']:>9.4f}±{r['checkpoint_stderr']:.4f} "
                  f"{r['diff']:>+10.4f} {r['diff_stderr']:>8.4f} {r['diff_stderr_clustered']:>10.4f}")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    parser = sub.add_parser(name, help=help_, description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    tsub = parser.add_subparsers(dest="train_command", metavar="COMMAND")
    for cmd, (_, help_) in COMMANDS.items():
        # Everything after the command goes to TRL's parser (opinbench.train.config.config_parser),
        # --help included, as `trl sft` hands its arguments to its script's TrlParser.
        p = tsub.add_parser(cmd, help=help_, add_help=False)
        p.set_defaults(func=_run_train, takes_extra_args=True)
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
