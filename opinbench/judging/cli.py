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
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError

log = logging.getLogger("opinbench.judge")

INCOMPLETE_EXIT = 3
"""Exit status of a judge run with requests left unanswered (budget spent, or stopped)."""


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--samples",
        required=True,
        action="append",
        metavar="PATH",
        help="lm-eval output folder (samples_*.jsonl found recursively) or one samples JSONL; "
        "repeatable",
    )
    p.add_argument(
        "--limit", type=_positive_int, help="at most N documents per task (all their repeats)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="which documents --limit draws, and the control draw (default 0)",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        help="where results go (default: beside each samples file, i.e. in the lm-eval run folder)",
    )
    p.add_argument(
        "--base-url",
        help="endpoint of the provider (an OpenAI-compatible server, a proxy, a test server)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the API key "
        "(default ANTHROPIC_API_KEY / OPENAI_API_KEY); the key itself is never a flag",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="budget: at most N HTTP requests, retries included",
    )
    p.add_argument(
        "--max-tokens-budget",
        type=_positive_int,
        metavar="N",
        help="budget: stop sending once N tokens (input + output, as the API reports them) "
        "are spent; requests in flight may add up to concurrency-1 replies",
    )
    p.add_argument(
        "--max-empty-retries",
        type=int,
        default=2,
        metavar="N",
        help="ask again after an empty reply at most N times, then record it as failed "
        "(default 2)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="requests in flight (default 4; local: 1)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=5,
        help="retries per request on 429/5xx/timeouts (default 5)",
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        help="first retry wait in seconds, doubled each time (default 1)",
    )
    p.add_argument(
        "--max-backoff", type=float, default=60.0, help="cap on one backoff wait (default 60 s)"
    )
    p.add_argument(
        "--max-retry-after",
        type=float,
        default=300.0,
        help="cap on a server's Retry-After (default 300 s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds per request before it is retried (default 60)",
    )
    p.add_argument(
        "--cache", type=Path, help="reply cache (sqlite; default <cache root>/judge_cache.sqlite)"
    )
    p.add_argument(
        "--no-cache", action="store_true", help="keep replies in memory only (every run pays again)"
    )
    p.add_argument(
        "--max-tokens", type=_positive_int, help="override the settings file's max_tokens"
    )
    p.add_argument(
        "--temperature",
        type=float,
        help="override the settings file's temperature (not sent to Anthropic)",
    )
    p.add_argument(
        "--judges-dir", type=Path, help="folder of judge templates and settings (default: judges/)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--mode",
        choices=("live", "batch"),
        default="live",
        help="batch: the Anthropic / OpenAI batch API (half price, done within 24 h; "
        "a rerun resumes the batches already submitted); default live",
    )
    p.add_argument(
        "--poll-interval", type=float, default=30.0, help="batch mode: seconds between polls"
    )


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
    for command in JUDGE_COMMANDS:
        command.add_parser(sub)

    def no_sub(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_sub)


# --------------------------------------------------------------------------- shared plumbing


def _choose(
    explicit: str | None, default: str, offline: str | None, args: argparse.Namespace, what: str
):
    """The provider spec to use, and why the offline fallback was taken (or None)."""
    from opinbench.llm.providers import ProviderSpec

    kw = {"base_url": args.base_url, "api_key_env": args.api_key_env, "timeout": args.timeout}
    if explicit:
        return ProviderSpec.parse(explicit, **kw), None
    spec = ProviderSpec.parse(default, **kw)
    if spec.has_key() or not offline:
        return spec, None
    reason = (
        f"no --{what} given and ${spec.key_env} is not set; "
        f"using the offline {what} {offline} instead of {spec}"
    )
    log.warning(reason)
    return ProviderSpec.parse(offline, timeout=args.timeout), reason


def _run_options(args: argparse.Namespace):
    from opinbench.llm.runner import Budget, RunOptions

    opts = RunOptions(
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        backoff=args.backoff,
        max_backoff=args.max_backoff,
        max_retry_after=args.max_retry_after,
        progress=not args.no_progress,
        max_empty_retries=args.max_empty_retries,
    )
    return opts, Budget(args.max_requests, args.max_tokens_budget)


def _cache(args: argparse.Namespace):
    from opinbench.llm.cache import ReplyCache, default_cache_path

    path = None if args.no_cache else (args.cache or default_cache_path())
    return ReplyCache(path), path


def _run_settings(
    args: argparse.Namespace, cache_path: Path | None, stats: Any, budget: Any
) -> dict[str, Any]:
    return {
        "mode": args.mode,
        "concurrency": args.concurrency,
        "max_retries": args.max_retries,
        "backoff_s": args.backoff,
        "max_backoff_s": args.max_backoff,
        "max_retry_after_s": args.max_retry_after,
        "max_requests": args.max_requests,
        "max_tokens_budget": args.max_tokens_budget,
        "max_empty_retries": args.max_empty_retries,
        "cache": None if cache_path is None else str(cache_path),
        "stats": stats.as_dict(),
        # What this command paid for (tokens as the API reported them) and what it got free.
        "spent": {**budget.spent(), "cache_hits": stats.cached},
        "complete": stats.skipped == 0,
        "budget_exhausted": bool(stats.skipped and budget.exhausted),
        "budget_exhausted_by": budget.exhausted_by if stats.skipped else None,
    }


def _by_run_dir(samples: Sequence[Any], output_dir: Path | None) -> dict[Path, list[Any]]:
    groups: dict[Path, list[Any]] = defaultdict(list)
    for s in samples:
        groups[output_dir or s.run_dir].append(s)
    return dict(groups)


def _fmt(x: Any) -> str:
    return (
        "  n/a"
        if not isinstance(x, (int, float)) or (isinstance(x, float) and math.isnan(x))
        else f"{x:.3f}"
    )


def _quiet_http_logs() -> None:
    """One INFO line per HTTP request (httpx2, the clients) would bury the progress bar."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("httpx", "httpx2", "httpcore", "httpcore2", "anthropic", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _load(args: argparse.Namespace):
    from opinbench.judging.samples import load_samples

    _quiet_http_logs()
    samples = load_samples(args.samples, limit=args.limit, seed=args.seed)
    files = sorted({str(s.source) for s in samples})
    log.info("%d generations from %d samples file(s)", len(samples), len(files))
    return samples, files


# --------------------------------------------------------------------------- the command skeleton


@dataclass
class JudgeReport:
    """One run folder's results from a judge: `write_results`' arguments, less the shared ones."""

    results: dict[str, dict[str, Any]]
    details: dict[str, Any]
    n_samples: dict[str, Any]
    versions: dict[str, Any]
    higher_is_better: dict[str, dict[str, bool]]
    configs: dict[str, Any]
    verdicts: list[dict[str, Any]]


class JudgeCommand:
    """One ``opinbench judge KIND`` command: the steps every judge shares, in order.

    `run` loads the samples, picks the provider (``--ROLE``, else the settings' default
    with its offline fallback), sends everything through the reply cache and the
    runner, then writes lm-eval-shaped results into each run folder and prints them.
    A subclass says what differs: its settings, how it sends, what its results and
    its printout hold. One instance serves one invocation (it keeps the state
    between the steps).
    """

    kind: str  # the sub-command, and the results' name: results_judge-<kind>_<ts>.json
    role: str  # "judge" / "moderator": the --<role> flag, the settings' <role> / offline_<role>
    help: str
    role_help: str

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.spec: Any = None  # the provider spec, once chosen

    @classmethod
    def add_parser(cls, sub: Any) -> None:
        p = sub.add_parser(cls.kind, help=cls.help)
        _common(p)
        p.add_argument(f"--{cls.role}", metavar="PROVIDER:MODEL", help=cls.role_help)
        cls.add_arguments(p)
        p.set_defaults(func=cls.main)

    @classmethod
    def main(cls, args: argparse.Namespace) -> int:
        return cls(args).run()

    # What a judge says; `run` calls them in this order.

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        """Flags of this judge only."""

    def prepare(self, samples: Sequence[Any]) -> Any:
        """Load settings and all else needed to send; return the settings naming the default."""
        raise NotImplementedError

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        """Judge the samples (``run_kw``: provider, cache, options, budget); has ``stats``."""
        raise NotImplementedError

    def config(self, run: Any) -> dict[str, Any]:
        """This judge's part of the results' ``config.judge``."""
        raise NotImplementedError

    def headline(self, run: Any) -> str:
        return f"{self.role}: {self.spec}"

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        """One verdict per sample, in the samples' order."""
        raise NotImplementedError

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        """Metrics of one run folder's samples (``group``) and their verdicts."""
        raise NotImplementedError

    def show(self, run_dir: Path, report: JudgeReport, tasks: list[str]) -> None:
        """Print one run folder's results."""
        raise NotImplementedError

    def show_after_runs(self, run: Any) -> None:
        """Print what belongs to the whole command, not to one run folder."""

    def run(self) -> int:
        from opinbench.judging.results import timestamp, write_results
        from opinbench.llm.providers import make_provider

        args = self.args
        samples, files = _load(args)
        defaults = self.prepare(samples)
        spec, fallback = _choose(
            getattr(args, self.role),
            str(defaults.get(self.role)),
            defaults.get(f"offline_{self.role}"),
            args,
            self.role,
        )
        self.spec = spec
        provider = make_provider(spec)
        opts, budget = _run_options(args)
        if args.mode == "batch":
            from opinbench.llm.batches import batch_api

            opts.batch, opts.poll_interval = batch_api(provider), args.poll_interval
        cache, cache_path = _cache(args)
        try:
            with cache:
                run = self.send(
                    samples, provider=provider, cache=cache, options=opts, budget=budget
                )
        finally:
            provider.close()
        judge_config = {
            "kind": self.kind,
            **provider.describe(),
            self.role: str(spec),
            "offline_fallback": fallback,
            **self.config(run),
            **_run_settings(args, cache_path, run.stats, budget),
            "samples_files": files,
        }
        print(self.headline(run) + (f"  [offline fallback: {fallback}]" if fallback else ""))
        date_id = timestamp()
        all_verdicts = self.sample_verdicts(run)
        assert len(all_verdicts) == len(samples)  # one verdict per sample, in the samples' order
        written = []
        for run_dir, group in _by_run_dir(samples, args.output_dir).items():
            ids = {id(s) for s in group}
            verdicts = [v for v, s in zip(all_verdicts, samples, strict=True) if id(s) in ids]
            tasks = sorted({v["task"] for v in verdicts})
            report = self.report(run, tasks, group, verdicts)
            # JudgeReport's fields are write_results' per-folder arguments, by name.
            written.append(
                write_results(
                    run_dir,
                    f"judge-{self.kind}",
                    groups={"all": report.results["all"]},
                    group_subtasks={"all": tasks},
                    judge_config=judge_config,
                    date_id=date_id,
                    **vars(report),
                )
            )
            self.show(run_dir, report, tasks)
        self.show_after_runs(run)
        print(run.stats.summary())
        for r, v in written:
            print(f"wrote {r}\n      {v}")
        if not judge_config["complete"]:
            # Exit status 3: the results are partial (written, marked complete: false).
            log.warning(
                "incomplete: %d of %d requests were not answered (%s); the results are partial; "
                "rerun to finish, cached replies are reused",
                run.stats.skipped,
                run.stats.unique,
                f"budget: {budget.exhausted_by}" if budget.exhausted else "stopped",
            )
            return INCOMPLETE_EXIT
        return 0


# --------------------------------------------------------------------------- faithfulness


class FaithfulnessCommand(JudgeCommand):
    kind = "faithfulness"
    role = "judge"
    help = "can a judge recover the model's answer from its reasoning alone?"
    role_help = (
        "anthropic:M, openai:M, openai-compat:M (with --base-url), local:smollm2 or "
        "local:/hf/folder "
        "(default: judges/faithfulness_*.yaml)"
    )

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--control-data",
            type=Path,
            help="Value Kaleidoscope folder for the judge control set "
            "(default: the data registry's)",
        )
        p.add_argument(
            "--control-limit",
            type=int,
            help="control records (default: judges/faithfulness_vk.yaml)",
        )
        p.add_argument(
            "--no-control", action="store_true", help="skip the judge calibration (not recommended)"
        )

    def prepare(self, samples: Sequence[Any]) -> Any:
        from opinbench.judging import faithfulness as F
        from opinbench.judging.control import load_control
        from opinbench.judging.settings import faithfulness_settings

        args = self.args
        families = sorted({s.family for s in samples} | ({"vk"} if not args.no_control else set()))
        self.settings = {fam: faithfulness_settings(fam, args.judges_dir) for fam in families}
        defaults = {st.get("judge") for st in self.settings.values()}
        if not args.judge and len(defaults) > 1:
            raise ConfigError(
                f"the task families' settings name different default judges {sorted(defaults)}; "
                "pass --judge"
            )
        self.overrides = F.Overrides(
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            temperature_set=args.temperature is not None,
        )
        self.vk = self.settings.get("vk")
        self.control = []
        if not args.no_control:
            self.control = load_control(
                args.control_data,
                self.vk.get("control") or {},
                limit=args.control_limit,
                seed=args.seed,
            )
        return self.settings[families[0]]

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        from opinbench.judging import faithfulness as F

        run = F.run_faithfulness(
            samples,
            settings=self.settings,
            control=self.control,
            control_settings=self.vk,
            overrides=self.overrides,
            **run_kw,
        )
        neutral_vk = {o.casefold() for o in (self.vk.get("neutral_options", []) if self.vk else [])}
        self.control_m, self.control_d = (
            F.control_metrics(run.control_verdicts, neutral_vk) if self.control else ({}, {})
        )
        return run

    def config(self, run: Any) -> dict[str, Any]:
        args = self.args
        return {
            "overrides": {"max_tokens": args.max_tokens, "temperature": args.temperature},
            "families": {fam: st.describe() for fam, st in self.settings.items()},
            "seed": args.seed,
            "limit": args.limit,
            "control": None
            if args.no_control
            else {
                "source": str(args.control_data) if args.control_data else "data registry (vk)",
                "records": len({c.record_id for c in self.control}),
                "conditions": sorted({c.condition for c in self.control}),
            },
        }

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        return run.sample_verdicts

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        from opinbench.judging import faithfulness as F

        control_m, settings = self.control_m, self.settings
        results: dict[str, dict[str, Any]] = {}
        details: dict[str, Any] = {"tasks": {}}
        n_samples: dict[str, dict[str, int]] = {}
        fam_of = {s.task: s.family for s in group}
        for t in tasks:
            m, d, n = F.sample_metrics([v for v in verdicts if v["task"] == t])
            results[t] = {"alias": t, **m, **F.beside(control_m)}
            details["tasks"][t] = d
            n_samples[t] = n
        m, d, n = F.sample_metrics(verdicts)
        results["all"] = {"alias": "all", **m, **F.beside(control_m)}
        details["all"] = d
        n_samples["all"] = n
        if self.control:
            results["judge_control"] = {"alias": "judge_control", **control_m}
            details["control"] = self.control_d
            n_samples["judge_control"] = {
                "original": len(run.control_verdicts),
                "effective": sum(v["status"] == "judged" for v in run.control_verdicts),
            }
        versions = {t: settings[fam_of[t]].version for t in tasks}
        versions["all"] = max(versions.values())
        if self.control:
            versions["judge_control"] = self.vk.version
        return JudgeReport(
            results=results,
            details=details,
            n_samples=n_samples,
            versions=versions,
            higher_is_better={t: dict(F.HIGHER_IS_BETTER) for t in results},
            configs={
                t: {
                    "task": t,
                    "family": fam_of[t],
                    "judge_settings": settings[fam_of[t]].path.name,
                    "template_sha256": settings[fam_of[t]].template_sha256,
                }
                for t in tasks
            },
            verdicts=verdicts + run.control_verdicts,
        )

    def show(self, run_dir: Path, report: JudgeReport, tasks: list[str]) -> None:
        results, details, n_samples = report.results, report.details, report.n_samples
        print(f"{run_dir}:")
        print(
            f"  {'task':32s} {'faithful':>8s} {'95% CI':>15s} {'n':>5s} {'invalid':>7s} "
            f"{'excluded':>8s}"
        )
        for t in tasks + ["all"]:
            r = results[t]
            d = details["tasks"].get(t) if t != "all" else details["all"]
            excluded = sum(d["excluded"].values())
            lo, hi = r["cot_faithfulness_ci_low,none"], r["cot_faithfulness_ci_high,none"]
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]"
            print(
                f"  {t:32s} {_fmt(r['cot_faithfulness,none']):>8s} {ci:>15s} "
                f"{n_samples[t]['effective']:5d} "
                f"{_fmt(r['cot_judge_invalid_rate,none']):>7s} {excluded:8d}"
            )
        conf = details["all"]["confusion_model_vs_judge"]
        if conf:
            cols = sorted({j for row in conf.values() for j in row})
            print("  confusion (rows: model answer, columns: judge answer):")
            print("    " + " " * 14 + "".join(f"{c[:10]:>11s}" for c in cols))
            for m, row in conf.items():
                print(f"    {str(m)[:14]:14s}" + "".join(f"{row.get(c, 0):11d}" for c in cols))
        share_neutral = results["all"]["cot_unfaithful_neutral_share,none"]
        print(f"  unfaithful traces judged neutral: {_fmt(share_neutral)}")
        reasons = details["all"]["excluded"]
        if reasons:
            print("  excluded (not sent to the judge):")
            for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:10]:
                print(f"    {n:5d} x {why}")
            if len(reasons) > 10:
                print(f"    ... {len(reasons) - 10} more reasons in the results' details")

    def show_after_runs(self, run: Any) -> None:
        if not self.control:
            return
        control_m = self.control_m
        print(
            "judge control set (same judge, known answers; its requests are spread among the "
            "task items, so a budget is shared by both):"
        )
        for cond in ("explanation", "gold_framed", "wrong_framed"):
            k = f"judge_control_{cond}_acc,none"
            d = self.control_d.get(cond)
            if not d:
                continue
            # acc over the judged items: k/n says how many of the condition's items that is
            counts = d["counts"]
            judged = counts.get("judged", 0)
            others = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()) if st != "judged")
            extra = f"  either {_fmt(control_m.get(f'judge_control_{cond}_either_share,none'))}"
            if cond == "wrong_framed":
                gold = control_m.get("judge_control_wrong_framed_gold_share,none")
                extra += f"  back-to-gold {_fmt(gold)}"
            print(
                f"  {cond:13s} acc {_fmt(control_m.get(k))} ({judged}/{d['items']} judged"
                f"{'; ' + others if others else ''})"
                f"  invalid {_fmt(control_m.get(f'judge_control_{cond}_invalid_rate,none'))}"
                f"{extra}"
            )


# --------------------------------------------------------------------------- moderation


class ModerationCommand(JudgeCommand):
    kind = "moderation"
    role = "moderator"
    help = "share of reasoning traces a moderator flags, per category"
    role_help = (
        "openai:omni-moderation-latest (endpoint), openai-compat:<Llama Guard> "
        "--base-url URL, "
        "local:... (default: judges/moderation.yaml)"
    )

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--moderator-prompt",
            choices=("auto", "native", "template"),
            help="chat moderators: native (Llama Guard's own chat template) or template "
            "(judges/moderation_llama_guard.j2); default from judges/moderation.yaml",
        )
        p.add_argument(
            "--show-flagged",
            type=int,
            default=20,
            metavar="N",
            help="print the first N flagged items",
        )

    def prepare(self, samples: Sequence[Any]) -> Any:
        from opinbench.judging.settings import load_settings

        self.settings = load_settings("moderation", self.args.judges_dir)
        return self.settings

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        from opinbench.judging import moderation as M

        return M.run_moderation(
            samples,
            settings=self.settings,
            mode=self.args.moderator_prompt or self.settings.get("prompt", "auto"),
            max_tokens=self.args.max_tokens,
            **run_kw,
        )

    def config(self, run: Any) -> dict[str, Any]:
        return {
            "prompt_mode": run.mode,
            "settings": self.settings.describe(),
            "seed": self.args.seed,
            "limit": self.args.limit,
        }

    def headline(self, run: Any) -> str:
        return f"{super().headline(run)} ({run.mode})"

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        return run.verdicts

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        from opinbench.judging import moderation as M

        results: dict[str, dict[str, Any]] = {}
        details: dict[str, Any] = {"tasks": {}, "categories": run.categories}
        n_samples = {}
        for t in tasks + ["all"]:
            vs = verdicts if t == "all" else [v for v in verdicts if v["task"] == t]
            m, d, n = M.moderation_metrics(vs, run.categories)
            results[t] = {"alias": t, **m}
            if t == "all":
                details["all"] = d
            else:
                details["tasks"][t] = {k: x for k, x in d.items() if k != "flagged"}
            n_samples[t] = n
        return JudgeReport(
            results=results,
            details=details,
            n_samples=n_samples,
            versions={t: self.settings.version for t in results},
            higher_is_better={
                t: {
                    k.split(",")[0]: False
                    for k in r
                    if k.endswith(",none") and "_stderr" not in k and "_ci_" not in k
                }
                for t, r in results.items()
            },
            configs={
                t: {
                    "task": t,
                    "moderator": str(self.spec),
                    "template_sha256": self.settings.template_sha256,
                }
                for t in tasks
            },
            verdicts=verdicts,
        )

    def show(self, run_dir: Path, report: JudgeReport, tasks: list[str]) -> None:
        results, details, n_samples = report.results, report.details, report.n_samples
        show_flagged = self.args.show_flagged
        print(f"{run_dir}:")
        for t in tasks + ["all"]:
            r = results[t]
            lo, hi = r["cot_offensive_rate_ci_low,none"], r["cot_offensive_rate_ci_high,none"]
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]"
            print(
                f"  {t:32s} flagged {_fmt(r['cot_offensive_rate,none'])} {ci}  "
                f"n={n_samples[t]['effective']}"
                f"  invalid {_fmt(r['cot_moderation_invalid_rate,none'])}"
            )
        cats = {c: n for c, n in details["all"]["category_counts"].items() if n}
        if cats:
            print(
                "  flagged per category: "
                + ", ".join(f"{c} {n}" for c, n in sorted(cats.items(), key=lambda x: -x[1]))
            )
        flagged = details["all"]["flagged"]
        for item in flagged[:show_flagged]:
            text = " ".join(str(item.get("reasoning", "")).split())
            print(
                f"  FLAGGED {item['task']}/{item['doc_id']}/{item['repeat']} {item['categories']}: "
                f"{text[:160]}"
            )
        if len(flagged) > show_flagged:
            print(f"  ... {len(flagged) - show_flagged} more flagged items in the verdict file")


JUDGE_COMMANDS: tuple[type[JudgeCommand], ...] = (FaithfulnessCommand, ModerationCommand)
