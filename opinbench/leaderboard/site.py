"""The static leaderboard site: ``index.html`` (sortable ranking by column group), a page per entry,
``leaderboard.json`` and ``leaderboard.csv``; no server, no network, no CDN.

Built from the store's validated results (`opinbench.leaderboard.store`): the numbers shown are the
ones validation recomputed from the stored samples. Jinja2 with autoescape: every string a submitter
controls (model name, submitter, adapter path, reasons) is shown as text. Sorting is a small inline
script (no library); figures are drawn by `opinbench.reports.figures` and saved beside the pages.
"""

from __future__ import annotations

import csv
import functools
import http.server
import math
from pathlib import Path
from typing import Any

import jinja2

from opinbench.errors import ConfigError
from opinbench.io import write_json, write_text
from opinbench.leaderboard.audit import label
from opinbench.leaderboard.definition import Definition
from opinbench.leaderboard.store import FAILED, FINISHED, PENDING, RUNNING, Store
from opinbench.scoring import Metric, registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
SCORE_KEYS = ("raw", "stderr", "ci", "floor", "ceiling", "normalised", "missing", "per_question")


def fmt(x: Any) -> str:
    """A number for a table cell (4 significant digits); empty for None/NaN.

    >>> fmt(0.123456), fmt(None), fmt(float("nan"))
    ('0.1235', '', '')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["fmt"] = fmt
    return env


def _entry(row: dict[str, Any], definition: Definition) -> dict[str, Any]:
    result = row.get("result") or {}
    scores = {m.id: {k: None for k in SCORE_KEYS} | (result.get("scores") or {}).get(m.id, {})
              for m in definition.metrics}
    config, env = result.get("config") or {}, result.get("environment") or {}
    repro = [
        ("opinbench", (row.get("settings") or {}).get("opinbench_version") or _version("opinbench")),
        ("lm-eval", env.get("lm_eval_version")), ("transformers", env.get("transformers_version")),
        ("model", public_name(row)), ("revision", row.get("revision")), ("weights hash", row.get("weights_hash")),
        ("adapter hash", row.get("adapter_hash")), ("dtype", row["dtype"]), ("chat template", row["chat_template"]),
        ("seeds", ", ".join(f"{k}={config.get(k)}" for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed"))),
    ] + [(f"{task} (version {info.get('version')})", f"task hash {info.get('task_hash')}, "
          f"{info.get('documents')} documents") for task, info in (result.get("tasks") or {}).items()]
    return {
        "id": row["id"], "model": public_name(row), "submitter": row.get("submitter"), "adapter": row.get("adapter"),
        "self_reported": bool(row.get("self_reported")), "rerun_of": row.get("rerun_of"),
        "audit": label(row.get("audit"), bool(row.get("self_reported"))),
        "headline": result.get("headline"), "warnings": list(result.get("warnings") or []), "scores": scores,
        "command": result.get("command", ""), "repro": repro, "tasks": result.get("tasks") or {},
        "page": f"entries/{row['id']}.html",
    }


def _judge_rows(e: dict[str, Any], definition: Definition) -> list[dict[str, Any]]:
    """One row per pinned judge for the entry page: its metrics' scores (raw and CI) beside the
    judge's control-set accuracy per condition, or why it was not judged."""
    rows = []
    for name, spec in definition.judges.items():
        scores = [(m, e["scores"][m.id]) for m in definition.metrics if m.judge == name]
        missing = next((s["missing"] for _, s in scores if s.get("missing")), None)
        control = next((s.get("control") for _, s in scores if s.get("control")), None) or {}
        rows.append({"name": name, "spec": f"{spec['provider']}:{spec['model']}",
                     "scores": [{"display": m.display, "raw": s.get("raw"), "ci": s.get("ci")}
                                for m, s in scores if not s.get("missing")],
                     "control": sorted(control.items()), "status": missing or "judged"})
    return rows


def _version(pkg: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _breakdown_metric(groups: dict[str, Any]) -> Metric:
    """The metric a task's per-group breakdown shows: the one registered metric key of its rows
    (validation writes ``wd`` with its ``uniform``/``human`` bounds, or ``macro_f1_individual``)."""
    row = next(iter(groups.values()))
    known = registry()
    return next(known[k] for k in row if k in known)


def _figures(entry: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    """Per-group bars of each task's breakdown metric, against its bounds where it has them, and WD by stratum."""
    from opinbench.reports import figures

    out = []
    for task, info in entry["tasks"].items():
        groups = info.get("breakdown") or {}
        if not groups:
            continue
        labels = list(groups)
        m = _breakdown_metric(groups)
        bounds = {b: [groups[g].get(b) for g in labels] for b in ("uniform", "human") if b in groups[labels[0]]}
        fig = figures.group_bars(labels, {"model": [groups[g][m.key] for g in labels]}, title=fig_title(task, groups),
                                 xlabel=f"{m.display} ({'higher' if m.higher_is_better else 'lower'} is better)",
                                 bounds=bounds or None, xlim=None if bounds else (0, 1))
        _, png = figures.save(fig, folder, f"{entry['id']}-{task}")
        out.append({"title": fig_title(task, groups), "png": png.name})
    return out + _strata_figures(entry, folder)


def _strata_figures(entry: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    """A small bar chart per distribution task: mean WD on consensus, mixed and divided questions."""
    from opinbench.reports import figures

    out = []
    for task, info in entry["tasks"].items():
        levels = info.get("strata") or {}
        if not levels:
            continue
        fig = figures.group_bars(list(levels), {"model": list(levels.values())}, title=f"{task}: WD by question difficulty",
                                 xlabel="mean WD (lower is better)")
        _, png = figures.save(fig, folder, f"{entry['id']}-{task}-strata")
        out.append({"title": f"{task}: WD on consensus, mixed and divided questions (entropy strata)", "png": png.name})
    return out


def fig_title(task: str, groups: dict[str, Any]) -> str:
    m = _breakdown_metric(groups)
    against = " against the uniform and human bounds" if "uniform" in next(iter(groups.values())) else ""
    return f"{task}: {m.display} per group{against}"


def _eee_export(store: Store, entry_id: int, out: Path) -> dict[str, str]:
    """The entry's stored lm-eval files written in the Every Eval Ever schema under ``out/eee/<id>/``:
    ``{"aggregate": ..., "samples": ...}`` relative to ``out``, empty when the entry has no such files."""
    import tempfile

    from opinbench.errors import OpinbenchError
    from opinbench.export import eee
    from opinbench.runs import find_runs

    with tempfile.TemporaryDirectory(prefix=f"opinbench-entry-{entry_id}-") as tmp:
        try:
            (run,) = find_runs(store.export_files(entry_id, tmp))
            path = eee.export_run(run, out / "eee" / str(entry_id), source=eee.Source(origin=f"leaderboard:{entry_id}"))
        except (OpinbenchError, ValueError):  # no lm-eval files stored (or several runs): no export
            return {}
    samples = path.with_name(path.stem + "_samples.jsonl")
    return {"aggregate": path.relative_to(out).as_posix(), "samples": samples.relative_to(out).as_posix()}


def public_name(row: dict[str, Any]) -> str:
    """What the site shows as an entry's model: its display name (never the local path it was loaded from)."""
    if row.get("display_name"):
        return str(row["display_name"])
    return "(local model)" if str(row["model"]).startswith("/") else str(row["model"])


def ranks(headlines: list[float | None]) -> list[int]:
    """Competition ranks of headlines sorted best first: equal headlines share a rank.

    >>> ranks([0.9, 0.5, 0.5, 0.1, None])
    [1, 2, 2, 4, 5]
    """
    out: list[int] = []
    for i, h in enumerate(headlines):
        out.append(out[-1] if i and h is not None and h == headlines[i - 1] else i + 1)
    return out


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: a string starting with ``= + - @``, a tab or a CR gets
    a leading apostrophe (OWASP's advice); numbers are left as they are.

    >>> csv_cell("=HYPERLINK(1)"), csv_cell("@SUM(A1)"), csv_cell(-0.5), csv_cell("org/m")
    ("'=HYPERLINK(1)", "'@SUM(A1)", -0.5, 'org/m')
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _unranked(rows: list[dict[str, Any]], definition: Definition) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows that may be ranked, rows shown apart with why): an entry scored with another digest
    than the board's is flagged, a self-reported one is ranked only once its audit reproduced it."""
    ranked, apart = [], []
    for r in rows:
        if r["state"] == FINISHED and r.get("definition_digest") != definition.digest:
            apart.append({"id": r["id"], "model": public_name(r), "why": "scored with another definition (digest "
                          f"{str(r.get('definition_digest'))[:12]}, the board's is {definition.digest[:12]})"})
        elif r["state"] in (PENDING, RUNNING) and r.get("self_reported"):
            apart.append({"id": r["id"], "model": public_name(r), "why": "self-reported, not audited yet"})
        elif r["state"] == FINISHED:
            ranked.append(r)
    return ranked, apart


def _rank_intervals(entries: list[dict[str, Any]], definition: Definition) -> None:
    """``rank`` (position), ``rank_text`` ("2–4") and ``headline_ci`` of each entry, from the paired
    bootstrap over questions of `opinbench.leaderboard.ranks` (fixed at the published normalised
    score where a metric has no per-question values)."""
    from opinbench.leaderboard.ranks import MetricValues, rank_intervals

    values = {}
    for e in entries:
        ms = {}
        for m in definition.metrics:
            s = e["scores"][m.id]
            if s.get("per_question") and s.get("floor") is not None and s.get("ceiling") is not None:
                ms[m.id] = MetricValues(m.task, s["per_question"], s["floor"], s["ceiling"])
            elif s.get("normalised") is not None:
                ms[m.id] = MetricValues(m.task, {}, 0.0, 1.0, fixed=s["normalised"])
        values[str(e["id"])] = ms
    intervals = rank_intervals(values) if entries else {}
    for e, rank in zip(entries, ranks([e["headline"] for e in entries])):  # ties share a rank
        r = intervals.get(str(e["id"]))
        e["rank"] = rank
        e["rank_text"] = r.rank_text if r and e["headline"] is not None else str(rank)
        e["headline_ci"] = list(r.headline_ci) if r and r.headline_ci and e["headline"] is not None else None
        e["interval_note"] = r.why if r and e["headline"] is not None else None


def build_site(store: Store, name: str, out: str | Path) -> Path:
    """Write the site of the registered leaderboard ``name`` into ``out``; returns the index page."""
    definition = store.board(name)
    out = Path(out)
    (out / "entries").mkdir(parents=True, exist_ok=True)
    rows = [r for r in store.list(definition.name) if r["leaderboard_version"] == definition.version]
    ranked, unranked = _unranked(rows, definition)
    entries = [_entry(r, definition) for r in ranked]
    entries.sort(key=lambda e: (e["headline"] is None, -(e["headline"] or 0.0), e["id"]))
    _rank_intervals(entries, definition)
    failed = [{"id": r["id"], "model": public_name(r), "reason": r.get("reason")} for r in rows if r["state"] == FAILED]
    groups = [{"id": g, "display": d, "metrics": [m for m in definition.metrics if m.group == g]}
              for g, d in definition.groups]
    groups = [g for g in groups if g["metrics"]]
    env = _env()
    common = {"subset": definition.subset, "title": definition.title}
    index = out / "index.html"
    write_text(index, env.get_template("index.html.j2").render(
        **common, name=definition.name, version=definition.version, description=definition.description,
        groups=groups, entries=entries, failed=failed, unranked=unranked,
        count_text=f"{len(entries)} ranked entr{'y' if len(entries) == 1 else 'ies'}"))
    for e in entries:
        e["eee"] = _eee_export(store, e["id"], out)
        jrows = _judge_rows(e, definition)
        write_text(out / e["page"], env.get_template("entry.html.j2").render(
            **(common | {"title": f"{e['model']} | {definition.title}"}), lb_title=definition.title, e=e,
            metrics=definition.metrics, figures=_figures(e, out / "entries"), judges=jrows))
    data = {"leaderboard": definition.name, "version": definition.version, "subset": definition.subset,
            "definition_digest": definition.digest,
            "entries": [{k: e[k] for k in ("rank", "rank_text", "id", "model", "submitter", "adapter", "self_reported",
                                           "audit", "rerun_of", "headline", "headline_ci", "interval_note", "warnings",
                                           "scores", "command", "eee")} for e in entries],
            "unranked": unranked, "failed": failed}
    write_json(out / "leaderboard.json", data, non_finite="null")
    _write_csv(out / "leaderboard.csv", entries, definition)
    return index


def _write_csv(path: Path, entries: list[dict[str, Any]], definition: Definition) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "id", "model", "submitter", "self_reported", "headline"]
                   + [f"{m.id}{suffix}" for m in definition.metrics for suffix in ("", "_ci_low", "_ci_high", "_norm")])
        for e in entries:
            cells = []
            for m in definition.metrics:
                s = e["scores"][m.id]
                ci = s["ci"] or [None, None]
                cells += [s["raw"], ci[0], ci[1], s["normalised"]]
            w.writerow([csv_cell(c) for c in [e["rank_text"], e["id"], e["model"], e["submitter"], e["self_reported"],
                                               e["headline"]] + cells])


def serve(folder: str | Path, port: int = 8000) -> None:  # pragma: no cover - interactive
    """Preview a built site at http://127.0.0.1:PORT/ (standard library server, local only).

    A folder without a built site, or a port in use, is refused before anything is served:
    a server that starts and answers 404 looks like a broken site."""
    if not (Path(folder) / "index.html").is_file():
        raise ConfigError(f"{folder}: no built site here (no index.html); "
                          f"write one with `opinbench leaderboard build NAME --out {folder}`")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise ConfigError(f"port {port}: {err.strerror or err}; choose another with --port") from None
    with server as httpd:
        print(f"serving {folder} at http://127.0.0.1:{port}/ (Ctrl-C stops)")
        httpd.serve_forever()
