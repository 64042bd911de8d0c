"""`opinbench regress BASELINE CANDIDATE`: fail a build when a model or the code gets measurably worse.

BASELINE and CANDIDATE are each an lm-eval output folder of one model written with
``--log_samples`` (`opinbench eval` does), a baseline file recorded with::

    opinbench regress record RUN_DIR --out baselines/NAME.json.gz

or a finished leaderboard entry, ``leaderboard:ID`` (the id `opinbench leaderboard status`
shows; ``--store URL`` picks the store): its stored lm-eval files are read as a run, and
the tolerances its leaderboard definition sets (``tolerance`` of a metric) replace the
defaults; ``--tolerance`` still overrides both.

The two sides are paired on the documents of the tasks they share; per-document
values are recomputed from the logged samples with opinbench's metrics code.
Every test is paired and clustered by question (the sampled unit, docs/statistics.md):
WD, KL and acc by a sign-flip permutation over questions of the paired differences;
macro-F1 by a paired bootstrap over questions; where ``opinbench judge`` judged both run
folders, cot_faithfulness and cot_offensive_rate by a sign-flip over questions of the
per-item verdict differences (the per-item verdicts are kept in baselines); Holm's
correction across all of them. A regression is a worsening beyond the metric's tolerance
(``--tolerance wd=0.005``) that is significant at ``--alpha`` after the correction;
improvements are reported too. Each row states its minimum detectable effect (80 % power);
where it exceeds the tolerance the check could not have seen a regression of that size.

Exit status: 0 no regression, 1 regression, 2 the sides cannot be compared (different
task versions, data, prompts, judge settings, a baseline task missing on the candidate's
side, fewer than --min-questions shared questions; the message names the difference),
cannot be read, or the comparison is underpowered (a minimum detectable effect above its
tolerance: the message says how many questions would be needed; --allow-underpowered
accepts it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from opinbench.errors import ConfigError, DataError
from opinbench.io import atomic_open
from opinbench.regress import baseline, check, report
from opinbench.regress.values import RunValues, read_run
from opinbench.runs import find_runs, task_results

EXIT_OK, EXIT_REGRESSION, EXIT_INCOMPARABLE = 0, 1, 2


def load_side(path: str | Path) -> RunValues:
    """A baseline file or a run folder -> `RunValues`.

    (A leaderboard entry is the third kind of side the issue names; leaderboards
    do not exist yet: add its reader here, returning `RunValues`, and let its
    definition supply tolerances to `check.parse_tolerances` as ``base``.)
    """
    if str(path).startswith(ENTRY_PREFIX):
        return entry_side(str(path))[0]
    if baseline.is_baseline_file(path):
        return baseline.read(path)
    return read_run(path)


ENTRY_PREFIX = "leaderboard:"


def entry_side(spec: str, store_url: str | None = None) -> tuple[RunValues, str]:
    """``leaderboard:ID`` -> (the entry's stored lm-eval files read as a run, its leaderboard's name).

    Raises:
        ConfigError: as `entry_files`.
    """
    folder, row = entry_files(spec, store_url)
    values = read_run(folder)
    values.source = spec
    return values, str(row["leaderboard"])


def entry_files(spec: str, store_url: str | None = None) -> tuple[Path, dict]:
    """``leaderboard:ID`` -> (a temporary folder holding the entry's stored lm-eval files, its store row);
    ``opinbench export`` reads entries through it too.

    Raises:
        ConfigError: not ``leaderboard:<integer>``, no such entry, or one that has not FINISHED.
    """
    from opinbench.leaderboard.store import FINISHED, Store

    try:
        rid = int(spec[len(ENTRY_PREFIX):])
    except ValueError:
        raise ConfigError(f"{spec}: a leaderboard entry is leaderboard:ID, ID the integer `opinbench leaderboard status` shows") from None
    store = Store.open(store_url)
    try:
        row = store.get(rid)
        if row["state"] != FINISHED:
            raise ConfigError(f"{spec}: entry {rid} is {row['state']}, not FINISHED: it has no results to read")
        folder = store.export_files(rid, tempfile.mkdtemp(prefix=f"opinbench-entry-{rid}-"))
    finally:
        store.engine.dispose()
    return Path(folder), row


def definition_tolerances(name: str) -> dict[str, float]:
    """The ``tolerance`` of each metric of leaderboard ``name`` that regress tests, by regress's metric name."""
    from opinbench.leaderboard.definition import load_definition

    out: dict[str, float] = {}
    for m in load_definition(name).metrics:
        if m.tolerance is not None and m.metric in check.METRICS:  # judge rows name their judge's metric
            out[m.metric] = m.tolerance
    return out


def _sides(specs: list[str], store_url: str | None) -> tuple[list[RunValues], Mapping[str, float], int | None]:
    """The two sides, the tolerances the leaderboard of an entry side sets over the defaults, and
    its fewest questions per task (``regress: {min_questions: N}`` of the definition; None: regress's default)."""
    from opinbench.leaderboard.definition import load_definition

    sides, base, min_questions = [], dict(check.DEFAULT_TOLERANCES), None
    for spec in specs:
        if spec.startswith(ENTRY_PREFIX):
            values, board = entry_side(spec, store_url)
            base.update(definition_tolerances(board))
            min_questions = load_definition(board).regress_min_questions or min_questions
            sides.append(values)
        else:
            sides.append(load_side(spec))
    return sides, base, min_questions


def record(run_dir: str, out: str) -> int:
    values = read_run(run_dir)
    run = find_runs(run_dir)[0]
    info = next((task_results(run, t) for t in values.tasks if task_results(run, t)), None) or {}
    baseline.write(out, values, baseline.source_info(info))
    sizes = ", ".join(f"{t} {len(v.docs)}" for t, v in values.tasks.items())
    print(f"recorded {out} ({Path(out).stat().st_size} bytes): {sizes} documents", file=sys.stderr)
    return EXIT_OK


def _write(text: str, out: str | None) -> None:
    if out:
        with atomic_open(out) as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def _error_output(message: str, fmt: str) -> str | None:
    """What a CI system should see when the sides cannot be compared (JSON and JUnit; markdown prints to stderr)."""
    if fmt == "json":
        return report.to_json({"error": message, "exit_code": EXIT_INCOMPARABLE})
    if fmt == "junit":
        import xml.etree.ElementTree as ET

        suites = ET.Element("testsuites", name="opinbench regress", tests="1", errors="1")
        suite = ET.SubElement(suites, "testsuite", name="comparability", tests="1", errors="1", failures="0")
        case = ET.SubElement(suite, "testcase", classname="opinbench.regress", name="comparable")
        ET.SubElement(case, "error", message="runs cannot be compared", type="incomparable").text = message
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
    return None


def run(args: argparse.Namespace) -> int:
    sides = args.sides
    try:
        if sides[0] == "record":
            if len(sides) != 2 or not args.out:
                raise ConfigError("usage: opinbench regress record RUN_DIR --out FILE")
            return record(sides[1], args.out)
        if len(sides) != 2:
            raise ConfigError("usage: opinbench regress BASELINE CANDIDATE (or: regress record RUN_DIR --out FILE)")
        (base_side, candidate), base_tolerances, board_min_questions = _sides(sides, args.store)
        tolerances = check.parse_tolerances(args.tolerance, base=base_tolerances)
        result = check.regress(
            base_side,
            candidate,
            tolerances=tolerances,
            alpha=args.alpha,
            min_questions=(args.min_questions if args.min_questions is not None
                           else (board_min_questions or check.DEFAULT_MIN_QUESTIONS)),
            allow_underpowered=args.allow_underpowered,
            allow_missing_tasks=args.allow_missing_tasks,
            allow_prompt_change=args.allow_prompt_change,
            tasks=[t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None,
            seed=args.seed,
        )
    except (ConfigError, DataError) as err:
        print(f"opinbench regress: cannot compare: {err}", file=sys.stderr)
        text = _error_output(str(err), args.format)
        if text is not None:
            _write(text, args.out)
        return EXIT_INCOMPARABLE
    _write(report.render(result, args.format), args.out)
    if args.out and args.format != "markdown":  # the table on the log as well, for people
        sys.stderr.write(report.markdown(result))
    if result["underpowered"] and result["exit_code"] == EXIT_INCOMPARABLE:
        for line in result["underpowered"]:
            print(f"opinbench regress: underpowered: {line}", file=sys.stderr)
        print("opinbench regress: underpowered: \"no regression\" cannot be told from too little data; "
              "add questions, raise --tolerance, or pass --allow-underpowered", file=sys.stderr)
    return result["exit_code"]


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: alpha must lie strictly between 0 and 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= 1")
    return value


class _MinDocs(argparse.Action):
    """``--min-docs N``: the old name, now counting questions (warned once)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print("opinbench regress: --min-docs is deprecated and now counts questions; use --min-questions", file=sys.stderr)
        namespace.min_questions = values


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sides", nargs="+", metavar="BASELINE CANDIDATE", help="baseline and candidate (run folder, baseline file or leaderboard:ID); or: record RUN_DIR")
    p.add_argument("--out", help="write the report (or, with record, the baseline; .gz compresses) to this file")
    p.add_argument("--format", choices=report.FORMATS, default="markdown", help="report format (default markdown)")
    p.add_argument(
        "--tolerance", action="append", metavar="METRIC=X",
        help=f"worsening never flagged, per metric (repeatable or comma-separated; defaults: "
        f"{', '.join(f'{k}={v:g}' for k, v in check.DEFAULT_TOLERANCES.items())})",
    )
    p.add_argument("--alpha", type=_alpha, default=check.DEFAULT_ALPHA, help="significance level after Holm's correction, in (0, 1) (default 0.05)")
    p.add_argument("--min-questions", type=_count, default=None,
                   help=f"fewest shared questions per task (default {check.DEFAULT_MIN_QUESTIONS}, or a leaderboard entry's definition's regress.min_questions; documents of one question are not independent)")
    p.add_argument("--min-docs", type=_count, dest="min_questions", action=_MinDocs, help=argparse.SUPPRESS)
    p.add_argument("--allow-underpowered", action="store_true",
                   help="exit 0 even where a metric's minimum detectable effect exceeds its tolerance")
    p.add_argument("--allow-missing-tasks", action="store_true",
                   help="compare the shared tasks although the candidate lacks some of the baseline's (noted)")
    p.add_argument("--tasks", help="comma-separated tasks to compare (default: every task both sides have)")
    p.add_argument(
        "--allow-prompt-change", action="store_true",
        help="compare although prompts differ (a template change measured on purpose); the data must still match",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling tests (default 0)")
    p.add_argument("--store", help="leaderboard store URL for leaderboard:ID sides (default: $OPINBENCH_LEADERBOARD_URL or the local file)")
    p.set_defaults(func=run)
