"""Run a judge kind over lm-eval runs: ``run_judge(kind, options) -> JudgeOutcome``.

The one way to judge: ``opinbench judge KIND`` parses its flags into the kind's options
dataclass and calls `run_judge`, then prints the outcome; the leaderboard worker builds the
same options from a definition's pinned judge (`opinbench.judging.options`) and reads the
outcome's `status`. The steps every judge shares, in order: load the samples, pick the
provider (the role's option, else the settings' default with its offline fallback), check
that the cache and every results folder can be used (before anything is paid for), send
everything through the reply cache and the runner, then write lm-eval-shaped results into
each run folder (`opinbench.judging.results.write_results`). What differs per kind is the
kind's `JudgeKind` (`opinbench.judging.kinds`), found in `opinbench.judging.registry`.

``status``: ``complete``; ``incomplete`` (requests left unanswered: a budget ran out or the
run was stopped; the results are written, marked ``complete: false``); ``failed`` (not one
request was answered, some failed: nothing is written, since a results file of failures
would read as a judged run).
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError
from opinbench.judging import registry
from opinbench.judging.kinds import JudgeKind, JudgeReport, metric_value
from opinbench.judging.options import JudgeOptions

log = logging.getLogger("opinbench.judge")


@dataclass
class JudgeOutcome:
    """What a `run_judge` call did.

    Attributes:
        entry: the judge kind's registry entry.
        judge: the kind's instance (its state after the run: settings, control set).
        status: ``complete``, ``incomplete`` or ``failed`` (see the module docstring).
        headline: the provider line (``judge: anthropic:...``).
        judge_config: the results' ``config.judge``.
        stats: the runner's counts (`opinbench.llm.jobs.RunStats`).
        reports: run folder -> (its `JudgeReport`, its tasks), written or not.
        written: (results file, verdicts file) per run folder written.
        why: one line on what went wrong (``status`` not complete), else "".
    """

    entry: registry.JudgeEntry
    judge: JudgeKind
    status: str
    headline: str
    judge_config: dict[str, Any]
    stats: Any
    reports: dict[Path, tuple[JudgeReport, list[str]]] = field(default_factory=dict)
    written: list[tuple[Path, Path]] = field(default_factory=list)
    why: str = ""

    @property
    def judged(self) -> int:
        """Distinct requests answered (sent now or from the cache)."""
        return self.stats.sent + self.stats.cached

    @property
    def failed(self) -> int:
        return self.stats.failed

    @property
    def unanswered(self) -> int:
        """Requests left unsent (budget or stop)."""
        return self.stats.skipped

    @property
    def metric(self) -> dict[Path, float | None]:
        """The kind's metric over all tasks, per run folder."""
        return {d: metric_value(r, self.entry.metric.key) for d, (r, _) in self.reports.items()}


def run_judge(kind: str, options: JudgeOptions) -> JudgeOutcome:
    """Judge ``options.samples`` with the judge ``kind``; see the module docstring.

    Raises:
        ConfigError: an unknown kind, options of another kind, no samples, a cache that is
            not SQLite or whose folder is missing, a results folder that cannot be written.
        AuthError, LLMError: the provider cannot be used (replies so far stay cached).
    """
    from opinbench.llm.providers import make_provider

    entry = registry.get(kind)
    if not isinstance(options, entry.options):
        raise ConfigError(
            f"judge {kind} takes {entry.options.__name__}, not {type(options).__name__}"
        )
    judge = entry.judge(options)
    samples, files = _load(options)
    defaults = judge.prepare(samples)
    judge.spec, fallback = _choose(options, entry.role, defaults)
    groups = _by_run_dir(samples, options.output_dir)
    for folder in groups:
        _check_writable(folder)
    cache, cache_path = _open_cache(options)
    provider = make_provider(judge.spec)
    run_options, budget = _run_options(options, provider)
    try:
        with cache:
            run = judge.send(samples, provider=provider, cache=cache, options=run_options,
                             budget=budget)
    finally:
        provider.close()
    judge_config = {
        "kind": kind,
        **provider.describe(),
        entry.role: str(judge.spec),
        "offline_fallback": fallback,
        **judge.config(run),
        **_run_settings(options, cache_path, run.stats, budget),
        "samples_files": files,
    }
    outcome = JudgeOutcome(entry, judge, _status(run.stats), judge.headline(run, entry.role),
                           judge_config, run.stats)
    _report(outcome, run, samples, groups)
    outcome.why = _why(outcome, budget)
    if outcome.status == "incomplete":  # a failed run is the caller's to report (one line)
        log.warning("%s", outcome.why)
    return outcome


def _status(stats: Any) -> str:
    if stats.unique and not (stats.sent + stats.cached) and stats.failed:
        return "failed"
    return "complete" if stats.skipped == 0 else "incomplete"


def _why(outcome: JudgeOutcome, budget: Any) -> str:
    s = outcome.stats
    if outcome.status == "failed":
        errors = ", ".join(f"{k} x{n}" for k, n in s.errors.most_common(3)) or "see the log"
        return (f"{outcome.entry.kind}: none of {s.unique} requests was answered "
                f"({s.failed} failed: {errors}); no results written")
    if outcome.status == "incomplete":
        return (
            f"incomplete: {s.skipped} of {s.unique} requests were not answered "
            f"({'budget: ' + str(budget.exhausted_by) if budget.exhausted else 'stopped'}); "
            "the results are partial; rerun to finish, cached replies are reused"
        )
    return ""


def _report(outcome: JudgeOutcome, run: Any, samples: Sequence[Any],
            groups: dict[Path, list[Any]]) -> None:
    """Each run folder's report, written unless the run failed."""
    from opinbench.judging.results import timestamp, write_results

    judge, kind = outcome.judge, outcome.entry.kind
    date_id = timestamp()
    all_verdicts = judge.sample_verdicts(run)
    assert len(all_verdicts) == len(samples)  # one verdict per sample, in the samples' order
    for run_dir, group in groups.items():
        ids = {id(s) for s in group}
        verdicts = [v for v, s in zip(all_verdicts, samples, strict=True) if id(s) in ids]
        tasks = sorted({v["task"] for v in verdicts})
        report = judge.report(run, tasks, group, verdicts)
        outcome.reports[run_dir] = (report, tasks)
        if outcome.status == "failed":
            continue
        # JudgeReport's fields are write_results' per-folder arguments, by name.
        outcome.written.append(
            write_results(
                run_dir,
                f"judge-{kind}",
                groups={"all": report.results["all"]},
                group_subtasks={"all": tasks},
                judge_config=outcome.judge_config,
                date_id=date_id,
                **vars(report),
            )
        )


# --------------------------------------------------------------------------- the shared steps


def _quiet_http_logs() -> None:
    """One INFO line per HTTP request (httpx2, the clients) would bury the progress bar."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("httpx", "httpx2", "httpcore", "httpcore2", "anthropic", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _load(options: JudgeOptions) -> tuple[list[Any], list[str]]:
    from opinbench.judging.samples import load_samples

    if not options.samples:
        raise ConfigError("no samples to judge (an lm-eval output folder or samples file)")
    _quiet_http_logs()
    samples = load_samples(options.samples, limit=options.limit, seed=options.seed)
    files = sorted({str(s.source) for s in samples})
    log.info("%d generations from %d samples file(s)", len(samples), len(files))
    return samples, files


def _choose(options: JudgeOptions, role: str, defaults: Any) -> tuple[Any, str | None]:
    """The provider spec to use, and why the offline fallback was taken (or None)."""
    from opinbench.llm.providers import ProviderSpec

    explicit, offline = getattr(options, role), defaults.get(f"offline_{role}")
    kw = {"base_url": options.base_url, "api_key_env": options.api_key_env,
          "timeout": options.timeout}
    if explicit:
        return ProviderSpec.parse(explicit, **kw), None
    spec = ProviderSpec.parse(str(defaults.get(role)), **kw)
    if spec.has_key() or not offline:
        return spec, None
    reason = (
        f"no --{role} given and ${spec.key_env} is not set; "
        f"using the offline {role} {offline} instead of {spec}"
    )
    log.warning(reason)
    return ProviderSpec.parse(offline, timeout=options.timeout), reason


def _check_writable(folder: Path) -> None:
    """Refuse a results folder that cannot be written before any request is paid for."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(
            f"cannot write results into {folder}: {err.strerror or err} (--output-dir)"
        ) from None


def _open_cache(options: JudgeOptions) -> tuple[Any, Path | None]:
    """The reply cache: in memory (``no_cache``), the one given (its folder must exist), or
    the default one under the cache root."""
    from opinbench.llm.cache import ReplyCache, default_cache_path

    if options.no_cache:
        return ReplyCache(None), None
    path = options.cache
    if path is not None and not path.expanduser().parent.is_dir():
        raise ConfigError(f"--cache {path}: its folder {path.parent} does not exist")
    path = path or default_cache_path()
    try:
        return ReplyCache(path), path
    except (OSError, sqlite3.Error) as err:
        raise ConfigError(f"--cache {path}: not a usable SQLite reply cache ({err})") from None


def _run_options(options: JudgeOptions, provider: Any) -> tuple[Any, Any]:
    from opinbench.llm.jobs import Budget, RunOptions

    run_options = RunOptions(
        concurrency=options.concurrency,
        max_retries=options.max_retries,
        backoff=options.backoff,
        max_backoff=options.max_backoff,
        max_retry_after=options.max_retry_after,
        progress=not options.no_progress,
        max_empty_retries=options.max_empty_retries,
    )
    if options.mode == "batch":
        from opinbench.llm.batches import batch_api

        run_options.batch, run_options.poll_interval = batch_api(provider), options.poll_interval
    return run_options, Budget(options.max_requests, options.max_tokens_budget)


def _run_settings(
    options: JudgeOptions, cache_path: Path | None, stats: Any, budget: Any
) -> dict[str, Any]:
    return {
        "mode": options.mode,
        "concurrency": options.concurrency,
        "max_retries": options.max_retries,
        "backoff_s": options.backoff,
        "max_backoff_s": options.max_backoff,
        "max_retry_after_s": options.max_retry_after,
        "max_requests": options.max_requests,
        "max_tokens_budget": options.max_tokens_budget,
        "max_empty_retries": options.max_empty_retries,
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
