"""Reading lm-eval output folders: runs, their results files and samples files.

lm-eval (0.4.x) writes each evaluation into one folder per model::

    <output_path>/<model_name_sanitized>/results_<timestamp>.json
    <output_path>/<model_name_sanitized>/samples_<task>_<timestamp>.jsonl   (--log_samples; either file may be gzipped, .gz)

with ``timestamp = datetime.now().isoformat().replace(":", "-")``, shared by the
results and samples files of one ``lm_eval`` call. A later call adds files beside
the old ones and never overwrites them. A `Run` is one such folder.

**Newest-run rule** (the only one): within a folder, a task's samples file is
the one with the newest timestamp (a name without a timestamp counts as the
oldest; equal timestamps are ordered by file name), and the folder's results file
is its newest ``results_<timestamp>.json``. Older files are left out with an
info log line. Files other programs write beside them (``opinbench judge``'s
``results_judge-<kind>_<timestamp>.json``) are not lm-eval results and are ignored;
`judge_files` finds the judges' own files (``judge-<kind>_verdicts_<timestamp>.jsonl``
and the results file of the same timestamp), the newest per judge kind by the same rule.

**Several folders** (a path holding the runs of several models) are read two ways:

* `find_runs`: one `Run` per folder, every model kept (what the judges read);
* `samples_by_task`: one samples file per task, and a task found in several
  folders is refused, naming them (what ``opinbench compare`` reads: a side of a
  comparison is one model).

Rows of a samples file come from `read_rows` (`Run.rows`): one JSON object per
document and filter, ``doc_id, doc, target, arguments, resps, filtered_resps,
metrics, doc_hash, prompt_hash``; `generations` flattens the text ``resps`` of
generation tasks (repeats included).

The file names are parsed here rather than with ``lm_eval.utils.get_file_task_name``
/ ``get_file_datetime``: those cut at the first and last ``_`` without checking the
format, so a file not named by lm-eval gets a wrong task name instead of none.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError, DataError, SkipLog

log = logging.getLogger(__name__)

_TIMESTAMP = r"(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)"
# lm-eval: f"samples_{task_name}_{date_id}.jsonl" and f"results_{date_id}.json"
# Either may be gzipped (``.jsonl.gz``, ``.json.gz``: a run folder archived to save space).
_SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_{_TIMESTAMP}\.jsonl(\.gz)?$")
_RESULTS_NAME = re.compile(rf"^results_{_TIMESTAMP}\.json(\.gz)?$")
# opinbench.judging.results.write_results: f"{kind}_verdicts_{date_id}.jsonl" with kind "judge-<kind>"
_VERDICTS_NAME = re.compile(rf"^judge-(?P<kind>.+)_verdicts_{_TIMESTAMP}\.jsonl$")


def parse_samples_name(path: Path) -> tuple[str, str | None]:
    """(task, timestamp) from ``samples_<task>_<timestamp>.jsonl``.

    Another name gives (its stem without a leading ``samples_``, None).
    """
    m = _SAMPLES_NAME.match(path.name)
    if m:
        return m.group("task"), m.group("date")
    return path.name.removesuffix(".gz").rsplit(".", 1)[0].removeprefix("samples_"), None


def _newest_first(files: list[Path], stamp: dict[Path, str]) -> list[Path]:
    # The timestamps are ISO dates with fixed-width fields: text order is time order.
    return sorted(files, key=lambda f: (stamp[f], f.name), reverse=True)


@dataclass(frozen=True)
class SampleRow:
    """One line of a samples file: ``data`` is the parsed JSON value (an object for every row lm-eval writes)."""

    file: Path
    line: int
    data: Any

    @property
    def key(self) -> str:
        """Where the row is, for `DataError`'s ``key``: ``"line N"``."""
        return f"line {self.line}"


@dataclass(frozen=True)
class Run:
    """One lm-eval output folder (one model).

    Attributes:
        folder: the folder.
        samples_files: task -> its newest samples file in the folder, by task name.
        results_files: the folder's lm-eval results files, oldest first.
        older_samples: task -> its older samples files in the folder, left out (newest first).
    """

    folder: Path
    samples_files: dict[str, Path]
    results_files: tuple[Path, ...] = ()
    older_samples: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return list(self.samples_files)

    @property
    def results_file(self) -> Path | None:
        """The newest ``results_<timestamp>.json`` of the folder, None if there is none."""
        return self.results_files[-1] if self.results_files else None

    @cached_property
    def results(self) -> dict[str, Any]:
        """The parsed `results_file`: ``results``, ``configs``, ``versions``, ``n-samples``,
        ``config``, ``task_hashes``, ... as lm-eval wrote them.

        Raises:
            DataError: no results file, or one that is not a JSON object.
        """
        path = self.results_file
        if path is None:
            raise DataError("no results_<timestamp>.json in this folder", file=self.folder)
        return read_results(path)

    def rows(self, task: str, *, skips: SkipLog | None = None) -> Iterator[SampleRow]:
        """The rows of ``task``'s samples file (see `read_rows`)."""
        return read_rows(self.samples_files[task], skips=skips)


def read_rows(path: Path, *, skips: SkipLog | None = None) -> Iterator[SampleRow]:
    """Every non-blank line of a samples file, parsed, with its line number.

    Lines are split at ``\\n`` only: lm-eval writes JSON lines with
    ``ensure_ascii=False``, so a generation may hold characters that
    ``str.splitlines`` would also split at (U+2028, U+0085, ...).

    Raises:
        DataError: the file cannot be read, or a line is not JSON (unless
            ``skips`` is given: the line is then recorded there and left out).
    """
    try:
        lines = read_text(path).split("\n")
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read: {err}", file=path) from err
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            error = DataError(f"not JSON: {err.msg}", file=path, key=f"line {n}")
            if skips is None:
                raise error from None
            skips.skip(error)
            continue
        yield SampleRow(path, n, data)


def read_text(path: Path) -> str:
    """A file's text, gunzipped when its name ends in ``.gz`` (newlines kept as written)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as fh:
            return fh.read()
    with path.open(encoding="utf-8", newline="\n") as fh:
        return fh.read()


def generations(resps: Any) -> list[str] | None:
    """Flatten ``resps`` = ``[[generation, ...], ...]`` into texts; None if they are not text
    (loglikelihood responses of a multiple-choice task, or no list at all)."""
    if not isinstance(resps, list):
        return None
    out: list[str] = []
    for group in resps:
        for item in group if isinstance(group, list) else [group]:
            if not isinstance(item, str):
                return None
            out.append(item)
    return out


def find_runs(path: str | Path) -> list[Run]:
    """The runs under ``path``: one `Run` per folder holding samples files, by folder.

    ``path`` is an lm-eval output folder (searched recursively) or one samples
    file (a run of that file alone, whatever its name). Within a folder the
    newest-run rule of the module docstring applies.

    Raises:
        DataError: the path does not exist, or a folder holds no samples file.
    """
    path = Path(path)
    if path.is_file():
        task, _ = parse_samples_name(path)
        return [Run(path.parent, {task: path}, results_files(path.parent))]
    if not path.is_dir():
        raise DataError("no such file or directory", file=path)
    by_folder: dict[Path, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    stamp: dict[Path, str] = {}
    for f in (*path.rglob("samples_*.jsonl"), *path.rglob("samples_*.jsonl.gz")):
        task, date = parse_samples_name(f)
        by_folder[f.parent][task].append(f)
        stamp[f] = date or ""
    if not by_folder:
        raise DataError("no samples_*.jsonl[.gz] under this folder (run lm_eval with --log_samples)", file=path)
    runs = []
    for folder in sorted(by_folder):
        newest: dict[str, Path] = {}
        older: dict[str, tuple[Path, ...]] = {}
        for task in sorted(by_folder[folder]):
            files = _newest_first(by_folder[folder][task], stamp)
            newest[task] = files[0]
            if files[1:]:
                older[task] = tuple(files[1:])
            for old in files[1:]:
                log.info("%s: an older run of task %s, left out (%s is newer)", old, task, files[0].name)
        runs.append(Run(folder, newest, results_files(folder), older))
    return runs


def samples_by_task(path: str | Path) -> dict[str, Path]:
    """``{task: samples file}`` of the one model under ``path`` (see `find_runs`).

    Raises:
        DataError: as `find_runs`.
        ConfigError: a task found in several folders (several models): the
            message names them; pass the folder of one model.
    """
    folders: dict[str, list[Path]] = defaultdict(list)
    out: dict[str, Path] = {}
    for run in find_runs(path):
        for task, file in run.samples_files.items():
            folders[task].append(run.folder)
            out[task] = file
    for task, found in folders.items():
        if len(found) > 1:
            raise ConfigError(
                f"{path}: task {task} was run in several folders ({', '.join(str(f) for f in found)}); "
                "pass the folder of one model"
            )
    return dict(sorted(out.items()))


def older_samples_by_task(path: str | Path) -> dict[str, tuple[Path, ...]]:
    """``{task: its older samples files, left out}`` under ``path`` (tasks with none omitted)."""
    out: dict[str, tuple[Path, ...]] = {}
    for run in find_runs(path):
        for task, files in run.older_samples.items():
            out[task] = out.get(task, ()) + files
    return out


def results_files(folder: Path) -> tuple[Path, ...]:
    """The lm-eval ``results_<timestamp>.json`` files of ``folder``, oldest first (others ignored)."""
    stamp = {}
    for f in (*folder.glob("results_*.json"), *folder.glob("results_*.json.gz")):
        m = _RESULTS_NAME.match(f.name)
        if m:
            stamp[f] = m.group("date")
    return tuple(reversed(_newest_first(list(stamp), stamp)))


def task_results(run: Run, task: str) -> dict[str, Any] | None:
    """The newest results file of ``run`` that lists ``task`` (in its ``versions`` or
    ``results``), parsed; None if no results file does.

    A folder may hold several ``lm_eval`` calls; a task's version, ``task_hashes``
    entry and ``config`` are those of the call that wrote it, which need not be the
    newest call (`Run.results`).

    Raises:
        DataError: such a results file is not a JSON object.
    """
    for path in reversed(run.results_files):
        data = run.results if path == run.results_file else read_results(path)
        if task in (data.get("versions") or {}) or task in (data.get("results") or {}):
            return data
    return None


def read_results(path: Path) -> dict[str, Any]:
    """One lm-eval results file, parsed (`DataError` when it is not a JSON object)."""
    try:
        data = json.loads(read_text(path))
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read: {err}", file=path) from err
    except json.JSONDecodeError as err:
        raise DataError(f"not JSON: {err.msg} (line {err.lineno})", file=path) from None
    if not isinstance(data, dict):
        raise DataError("not an lm-eval results file (expected a JSON object)", file=path)
    return data


@dataclass(frozen=True)
class JudgeFiles:
    """One ``opinbench judge <kind>`` call's files in a run folder.

    Attributes:
        kind: the judge (``faithfulness``, ``moderation``).
        verdicts: ``judge-<kind>_verdicts_<timestamp>.jsonl`` (one JSON object per judged item).
        results: ``results_judge-<kind>_<timestamp>.json`` of the same call (judge settings
            under ``config.judge``), None if it is missing.
    """

    kind: str
    verdicts: Path
    results: Path | None


def judge_files(run: Run) -> dict[str, JudgeFiles]:
    """``{kind: JudgeFiles}``: the newest verdicts file of each judge kind in ``run``'s folder
    (newest-run rule of the module docstring; older ones left out with an info log line)."""
    by_kind: dict[str, list[Path]] = defaultdict(list)
    stamp: dict[Path, str] = {}
    for f in run.folder.glob("judge-*_verdicts_*.jsonl"):
        m = _VERDICTS_NAME.match(f.name)
        if m:
            by_kind[m.group("kind")].append(f)
            stamp[f] = m.group("date")
    out = {}
    for kind in sorted(by_kind):
        files = _newest_first(by_kind[kind], stamp)
        for older in files[1:]:
            log.info("%s: an older judge-%s run, left out (%s is newer)", older, kind, files[0].name)
        results = run.folder / f"results_judge-{kind}_{stamp[files[0]]}.json"
        out[kind] = JudgeFiles(kind, files[0], results if results.is_file() else None)
    return out
