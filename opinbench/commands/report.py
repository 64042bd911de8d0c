"""`opinbench report RUN_DIR [RUN_DIR ...] --out DIR`: figures and one HTML page from lm-eval runs.

Every number is recomputed from the runs' logged samples (`opinbench.runs`) with the
metrics code (`opinbench.analysis`, `opinbench.metrics`), never copied from a results
file. Sections, each with its figure (SVG and PNG under ``DIR/figures/``) and a table:

* representativeness of the default model per group and attribute, ranking and gap
  (``opinionqa_wd_default``);
* WD per group of each steered task, with the uniform and human bounds;
* steerability: best of QA/BIO/PORTRAY per group, each alone, gain over unsteered;
* topic x group WD map and consistency (topic taxonomy ``--topics``, default
  ``$OPINBENCH_DATA_DIR/opinionqa/human_resp/topic_mapping.json``);
* refusal mass beside the human non-substantive share, and its calibration per group (a scatter
  of the group's share against the model's mass, unsteered and per steering);
* WD by question difficulty: consensus, mixed and divided questions (entropy strata of
  `opinbench.metrics.strata`), per task;
* intergroup disagreement: humans vs humans and humans vs the model steered to each group;
* macro-F1 per ideology group of the stance tasks (``macro_f1_individual|<group>``);
* given several runs: per-group relative improvement of each later run over the first.

A section whose inputs the runs do not have carries a note saying so, not an error.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from opinbench.analysis import difficulty, disagreement, improvement, refusal, representativeness, steerability, topics
from opinbench.analysis.model_answers import UNSTEERED, ModelAnswer, from_rows, group_label
from opinbench.errors import ConfigError, DataError
from opinbench.runs import Run, find_runs, generations
from opinbench.scoring.answer import MACRO_F1_INDIVIDUAL
from opinbench.scoring.metric import ANSWER
from opinbench.scoring.rescore import rescore_rows

log = logging.getLogger(__name__)

STEERINGS = ("qa", "bio", "portray")


@dataclass
class RunAnswers:
    """What the report uses of one run: model answers per task, and the stance tasks' items."""

    label: str
    run: Run
    answers: dict[str, list[ModelAnswer]] = field(default_factory=dict)  # task -> answers
    kind: dict[str, str] = field(default_factory=dict)  # task -> "default" or a steering
    dataset: dict[str, str] = field(default_factory=dict)  # task -> data set
    stance: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)  # task -> group -> items

    def default(self, dataset: str) -> list[ModelAnswer]:
        return [a for t, k in self.kind.items() if k == "default" and self.dataset[t] == dataset for a in self.answers[t]]

    def steered(self, dataset: str) -> dict[str, list[ModelAnswer]]:
        out: dict[str, list[ModelAnswer]] = {}
        for t, k in self.kind.items():
            if k in STEERINGS and self.dataset[t] == dataset:
                out.setdefault(k, []).extend(self.answers[t])
        return out

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.dataset.values()))


def _label(run: Run) -> str:
    try:
        name = run.results.get("model_name") or ""
    except DataError:
        name = ""
    return str(name).rstrip("/").split("/")[-1] or run.folder.name


def read_run(run: Run) -> RunAnswers:
    """Sort one run's tasks into distribution tasks (by the shape of their documents) and stance tasks."""
    out = RunAnswers(_label(run), run)
    for task in run.tasks:
        rows = [r.data for r in run.rows(task)]
        if not rows or not isinstance(rows[0], dict) or "doc" not in rows[0]:
            continue
        doc = rows[0]["doc"]
        # generation tasks (*_wd_sampled) carry the same documents but text answers: not read here
        first_token = generations(rows[0].get("resps")) is None
        if first_token and ("groups" in doc or ("distribution" in doc and "letters" in doc and "ordinal" in doc)):
            out.answers[task] = from_rows(rows)
            out.kind[task] = "default" if "groups" in doc else doc.get("steering", UNSTEERED)
            out.dataset[task] = doc.get("dataset", task)
            continue
        # stance tasks: the per-ideology items re-scored from the logged answers, never the logged values
        scored = rescore_rows(task, run.rows(task), with_bounds=False)
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in scored.ordered() if scored is not None and scored.kind.name == ANSWER else []:
            for key, value in d.values.items():
                if key.startswith(f"{MACRO_F1_INDIVIDUAL.key}|"):
                    groups[key.split("|", 1)[1]].append(value)
        if groups:
            out.stance[task] = dict(groups)
    return out


# --------------------------------------------------------------------------- sections


def _labels(groups) -> list[str]:
    return [group_label(*g) for g in groups]


def _missing(title: str, note: str):
    from opinbench.reports.page import Section

    return Section(title, note=note)


def representativeness_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Whom the default model represents ({dataset})"
    answers = ra.default(dataset)
    if not answers:
        return _missing(title, "No default-model task (opinionqa_wd_default) in this run: "
                        "run it to score the unsteered model against every group.")
    scores = representativeness.by_group(answers)
    ranked = representativeness.ranking(scores)
    per_attr = representativeness.by_attribute(answers)
    groups = [g for g, _ in ranked.order]
    fig = figures.group_bars(_labels(groups), {"R = 1 − mean WD": [r for _, r in ranked.order]},
                             title=f"Representativeness of the unsteered model ({len({a.question_key for a in answers})} questions)",
                             xlabel="representativeness R(G) (higher: closer to the group)",
                             xlim=(min(0.5, min(scores.values()) - 0.05), 1.0))
    text = (f"Most represented: {group_label(*ranked.most[0])} (R = {ranked.most[1]:.3f}); least: "
            f"{group_label(*ranked.least[0])} (R = {ranked.least[1]:.3f}); max–min gap {ranked.gap:.3f}.")
    return Section(title, text=text, figure=figures.save(fig, figs, f"{prefix_slug(prefix)}repr_{dataset}"), tables=[
        Table(["rank", "group", "R"], [[i + 1, group_label(*g), r] for i, (g, r) in enumerate(ranked.order)]),
        Table(["attribute", "R"], [[a, r] for a, r in sorted(per_attr.items(), key=lambda kv: -kv[1])]),
    ])


def prefix_slug(prefix: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in prefix.strip(": ")).lower() + ("_" if prefix else "")


def wd_bounds_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}WD per group with bounds ({dataset})"
    steered = ra.steered(dataset)
    if not steered:
        return _missing(title, "No steered distribution task (opinionqa_wd, _bio, _portray, subpop_*_wd) in this run.")
    wd = {name: representativeness.mean_wd_by_group(a) for name, a in steered.items()}
    groups = list(dict.fromkeys(g for table in wd.values() for g in table))
    first = next(iter(steered.values()))
    uni: dict[Any, list[float]] = defaultdict(list)
    hum: dict[Any, list[float]] = defaultdict(list)
    for a in first:
        u, h = a.bounds()
        uni[(a.attribute, a.group)].append(u)
        if h is not None:
            hum[(a.attribute, a.group)].append(h)
    uniform = [float(np.mean(uni[g])) if uni[g] else None for g in groups]
    human = [float(np.mean(hum[g])) if hum[g] else None for g in groups]
    series = {name.upper(): [wd[name].get(g, np.nan) for g in groups] for name in wd}
    fig = figures.group_bars(_labels(groups), series, title="Mean WD per group, steered model (lower is better)",
                             xlabel="mean Wasserstein distance", bounds={"uniform": uniform, "human bootstrap": human})
    rows = [[group_label(*g), *[wd[n].get(g) for n in wd], uniform[i], human[i]] for i, g in enumerate(groups)]
    return Section(title, text="Bars: the model's mean WD to each group under each steering. Markers: the WD of the "
                   "uniform distribution (a model should beat it) and the human bootstrap bound (sampling noise: "
                   "no model can be expected to go below it).",
                   figure=figures.save(fig, figs, f"{prefix_slug(prefix)}wd_bounds_{dataset}"),
                   tables=[Table(["group", *[f"WD {n.upper()}" for n in wd], "uniform", "human"], rows)])


def steerability_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Steerability ({dataset})"
    steered = ra.steered(dataset)
    if not steered:
        return _missing(title, "No steered distribution task in this run.")
    default = ra.default(dataset)
    rows = steerability.steerability(steered, default or None)
    if not rows:
        return _missing(title, "The steered tasks share no (question, group) pair.")
    names = list(steered)
    series: dict[str, list[float]] = {}
    if default:
        series["unsteered"] = [r.unsteered if r.unsteered is not None else np.nan for r in rows]
    for n in names:
        series[n.upper()] = [r.each[n] for r in rows]
    series["best of " + "/".join(n.upper() for n in names)] = [r.best for r in rows]
    fig = figures.group_bars(_labels([r.group for r in rows]), series, title="Representativeness when steered to each group",
                             xlabel="1 − mean WD (higher is better)",
                             xlim=(max(0.0, min(min(v) for v in series.values() if v) - 0.05), 1.0))
    note = "" if default else "No default-model task in this run: the gain over the unsteered model is not shown."
    return Section(title, text="Per group, the mean over questions of the best steering's WD (and each steering alone), "
                   "as 1 − WD, over the questions every steering (and the unsteered model) answered.", note=note,
                   figure=figures.save(fig, figs, f"{prefix_slug(prefix)}steerability_{dataset}"),
                   tables=[Table(["group", "questions", "unsteered", *[n.upper() for n in names], "best", "gain"],
                                 [[group_label(*r.group), r.questions, r.unsteered, *[r.each[n] for n in names], r.best, r.gain]
                                  for r in rows])])


def topics_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str, mapping):
    from opinbench.data.topics import topic_key
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Consistency across topics ({dataset})"
    if mapping is None:
        return _missing(title, "No topic taxonomy: pass --topics PATH/topic_mapping.json or set OPINBENCH_DATA_DIR.")
    answers = ra.default(dataset)
    if not answers:
        return _missing(title, "No default-model task (opinionqa_wd_default) in this run.")
    t = topics.per_topic_wd(answers, lambda a: mapping[k].coarse if (k := topic_key(a.question, a.options)) in mapping else ())
    if not t.wd:
        return _missing(title, f"None of the run's {len(t.unmatched)} questions is in the topic taxonomy.")
    groups = list(t.overall)
    topic_names = list(t.wd)
    matrix = np.array([[t.wd[tp].get(g, np.nan) for g in groups] for tp in topic_names])
    overall = topics.consistency(t)
    by_attr = {attr: topics.consistency(t, [g for g in groups if g[0] == attr]) for attr in dict.fromkeys(g[0] for g in groups)}
    marks = [(i, groups.index(overall.closest[tp])) for i, tp in enumerate(topic_names) if tp in overall.closest]
    fig = figures.heatmap(matrix, topic_names, _labels(groups), title="Mean WD of the unsteered model per coarse topic and group",
                          colorbar="mean WD (lower: closer)", marks=marks)
    unmatched = len(t.unmatched)
    n_q = len({a.question_key for a in answers})
    cm = topics.c_m(t)
    headline = (f"C_m (Santurkar et al.: mean over {', '.join(cm.by_attribute)} of the share of topics whose closest "
                f"group is that attribute's overall closest group) {cm.value:.3f}"
                + (f"; {', '.join(cm.missing)} not in this run" if cm.missing else "") + ". "
                if cm else f"C_m: none of {', '.join(topics.C_M_ATTRIBUTES)} is in this run. ")
    text = (headline + f"Framed: the group the model is closest to in each topic among all groups. Over all questions it "
            f"is closest to {group_label(*overall.closest_overall)}; pooled consistency (share of topics where that group, "
            f"among all {len(groups)} groups, is also the closest) {overall.share:.2f} over {len(overall.closest)} topics. "
            f"{unmatched} of {n_q} questions have no topic in the taxonomy and are left out.")
    return Section(title, text=text, figure=figures.save(fig, figs, f"{prefix_slug(prefix)}topics_{dataset}"), tables=[
        Table(["attribute", "closest overall", "consistency", "topics"],
              ([["C_m", "", cm.value, ""]] if cm else [])
              + [[a, group_label(*c.closest_overall), c.share, len(c.closest)] for a, c in by_attr.items() if c]
              + [["pooled (all groups)", group_label(*overall.closest_overall), overall.share, len(overall.closest)]]),
        Table(["topic", "closest group", "WD"], [[tp, group_label(*overall.closest[tp]), t.wd[tp][overall.closest[tp]]]
                                               for tp in topic_names]),
        Table(["topic", *_labels(groups)], [[tp, *row] for tp, row in zip(topic_names, matrix.tolist())]),
    ])


def refusal_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Refusal mass ({dataset})"
    default = ra.default(dataset)
    if not default:
        return _missing(title, "No default-model task in this run: its documents carry the human non-substantive counts.")
    counts = {(a.question_key, a.attribute, a.group): (a.n, a.n_nonsubstantive) for a in default}
    series_rows = {"unsteered model": refusal.refusal_by_group(default)}
    for name, answers in ra.steered(dataset).items():
        filled = [replace(a, n=counts[k][0], n_nonsubstantive=counts[k][1])
                  for a in answers if (k := (a.question_key, a.attribute, a.group)) in counts]
        series_rows[f"model steered ({name.upper()})"] = refusal.refusal_by_group(filled)
    base = series_rows["unsteered model"]
    if not base:
        return _missing(title, "No question of the run offers a non-substantive option with known counts.")
    groups = [r.group for r in base]
    series = {"humans (non-substantive share)": [r.human for r in base]}
    for name, rows in series_rows.items():
        by = {r.group: r.model for r in rows}
        series[name] = [by.get(g, np.nan) for g in groups]
    fig = figures.group_bars(_labels(groups), series, title="Probability on non-substantive options (Refused, Not sure)",
                             xlabel="share")
    return Section(title, text="The model's probability on the options outside the ordinal scale, beside the share of "
                   "the group's respondents who gave such an answer, over the questions that offer one.",
                   figure=figures.save(fig, figs, f"{prefix_slug(prefix)}refusal_{dataset}"),
                   tables=[Table(["group", "questions", *series], [[group_label(*g), base[i].questions, *[s[i] for s in series.values()]]
                                                                   for i, g in enumerate(groups)])])


def difficulty_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.metrics import strata
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}WD by question difficulty ({dataset})"
    series_answers = {f"steered ({n.upper()})": a for n, a in ra.steered(dataset).items()}
    if ra.default(dataset):
        series_answers["unsteered (default model)"] = ra.default(dataset)
    if not series_answers:
        return _missing(title, "No distribution task in this run.")
    cuts = strata.cuts_for(dataset)
    if cuts is None:
        return _missing(title, f"No entropy cut points are shipped for {dataset} (scripts/entropy_strata.py).")
    rows = {name: {r.stratum: r for r in difficulty.wd_by_stratum(a, dataset)} for name, a in series_answers.items()}
    levels = [s for s in strata.STRATA if any(s in r for r in rows.values())]
    fig = figures.group_bars(levels, {n: [r[s].wd if s in r else np.nan for s in levels] for n, r in rows.items()},
                             title="Mean WD by the entropy of the group's answers", xlabel="mean WD (lower is better)")
    return Section(title, text=(f"Each (question, group) is put in a stratum by the normalised entropy of the group's "
                                f"answers, cut at the data set's tertiles ({cuts[0]:.4f}, {cuts[1]:.4f}; fixed with the "
                                "data): consensus questions below the first, divided ones above the second. The tasks "
                                "publish the same means as wd|entropy=<stratum>."),
                   figure=figures.save(fig, figs, f"{prefix_slug(prefix)}difficulty_{dataset}"),
                   tables=[Table(["task", "stratum", "mean WD", "documents", "questions"],
                                 [[n, s, r[s].wd, r[s].answers, r[s].questions] for n, r in rows.items()
                                  for s in levels if s in r])])


def refusal_calibration_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Refusal calibration ({dataset})"
    series_answers = {"unsteered (default model)": ra.default(dataset)} if ra.default(dataset) else {}
    series_answers |= {f"steered ({n.upper()})": a for n, a in ra.steered(dataset).items()}
    per = {name: refusal.refusal_by_group(a) for name, a in series_answers.items()}
    per = {name: rows for name, rows in per.items() if rows}
    if not per:
        return _missing(title, "No question of the run offers a non-substantive option with known counts.")
    groups = list(dict.fromkeys(r.group for rows in per.values() for r in rows))
    by = {name: {r.group: r for r in rows} for name, rows in per.items()}
    first = next(iter(by.values()))
    fig = figures.calibration({n: ([r.human for r in rows], [r.model for r in rows]) for n, rows in per.items()},
                              title="Refusal calibration per group", labels=_labels([r.group for r in next(iter(per.values()))]),
                              xlabel="group's non-substantive share (respondents)",
                              ylabel="model's probability on non-substantive options")
    table = Table(["group", "human share", *[f"gap {n}" for n in by]],
                  [[group_label(*g), (first.get(g) or next(b[g] for b in by.values() if g in b)).human,
                    *[b[g].model - b[g].human if g in b else None for b in by.values()]] for g in groups])
    return Section(title, text="One point per group: the share of its respondents who gave a non-substantive answer "
                   "(Refused, Not sure) against the model's mean probability on those options, over the questions that "
                   "offer one. On the diagonal the model refuses as often as the group; the gap (model − humans) is the "
                   "tasks' refusal_gap.",
                   figure=figures.save(fig, figs, f"{prefix_slug(prefix)}refusal_calibration_{dataset}"), tables=[table])


def disagreement_section(ra: RunAnswers, dataset: str, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Intergroup disagreement ({dataset})"
    steered = ra.steered(dataset)
    human_source = ra.default(dataset) or next(iter(steered.values()), [])
    if not human_source:
        return _missing(title, "No distribution task in this run.")
    h = disagreement.human_matrix(human_source)
    name = "qa" if "qa" in steered else next(iter(steered), None)
    s = disagreement.steered_matrix(steered[name]) if name else None
    # one colour scale for both matrices, so that they compare at a glance (SubPOP's Figure 13)
    vmax = float(np.nanmax([np.nanmax(h.values), *([np.nanmax(s.values)] if s is not None and s.values.size else [])]))
    sections = []
    fig = figures.heatmap(h.values, _labels(h.groups), _labels(h.groups), title="Humans vs humans: mean WD",
                          colorbar="mean WD", cmap="magma_r", vmin=0.0, vmax=vmax)
    sections.append(Section(title + ": humans", text="Mean WD between the answer distributions of two groups over the "
                            "questions both answered (same colour scale as the model matrix below).",
                            figure=figures.save(fig, figs, f"{prefix_slug(prefix)}disagreement_human_{dataset}"),
                            tables=[Table(["group", *_labels(h.groups)], [[group_label(*g), *row] for g, row in zip(h.groups, h.values.tolist())])]))
    if not steered:
        sections.append(_missing(title + ": model", "No steered task in this run."))
        return sections
    fig = figures.heatmap(s.values, _labels(s.groups), _labels(s.groups),
                          title=f"Humans of the row group vs model steered ({name.upper()}) to the column group",
                          colorbar="mean WD", cmap="magma_r", marks=[(i, i) for i in range(len(s.groups))],
                          vmin=0.0, vmax=vmax)
    sections.append(Section(title + f": humans vs steered model ({name.upper()})",
                            text="Row: a group's humans; column: the model steered to a group. The framed diagonal is "
                            "the model steered to the row's own group; a row flatter than the human matrix means "
                            "steering barely changes the model.",
                            figure=figures.save(fig, figs, f"{prefix_slug(prefix)}disagreement_model_{dataset}"),
                            tables=[Table(["humans \\ steered to", *_labels(s.groups)],
                                          [[group_label(*g), *row] for g, row in zip(s.groups, s.values.tolist())])]))
    return sections


def stance_section(ra: RunAnswers, figs: Path, prefix: str):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"{prefix}Stance tasks: macro-F1 per ideology"
    if not ra.stance:
        return _missing(title, "No stance task with ideology groups (wom_*, smartvote_*, anes_*) in this run.")
    tasks = list(ra.stance)
    groups = list(dict.fromkeys(g for t in tasks for g in ra.stance[t]))
    values = {t: [MACRO_F1_INDIVIDUAL.aggregate(ra.stance[t][g]) if g in ra.stance[t] else np.nan for g in groups] for t in tasks}
    fig = figures.group_bars(groups, values, title="Macro-F1 per individual, averaged within each ideology group",
                             xlabel="macro-F1", xlim=(0, 1))
    return Section(title, figure=figures.save(fig, figs, f"{prefix_slug(prefix)}stance"),
                   tables=[Table(["group", *tasks], [[g, *[values[t][i] for t in tasks]] for i, g in enumerate(groups)])])


def improvement_section(base: RunAnswers, tuned: RunAnswers, figs: Path, index: int):
    from opinbench.reports import figures
    from opinbench.reports.page import Section, Table

    title = f"Relative improvement: {tuned.label} over {base.label}"
    shared = [t for t in base.answers if t in tuned.answers]
    if not shared:
        return _missing(title, "The two runs share no distribution task.")
    per_task = {t: improvement.relative_improvement(base.answers[t], tuned.answers[t]) for t in shared}
    groups = list(dict.fromkeys(i.group for rows in per_task.values() for i in rows))
    series = {t: [next((i.relative for i in rows if i.group == g), np.nan) for g in groups] for t, rows in per_task.items()}
    fig = figures.group_bars(_labels(groups), series, title="(WD base − WD tuned) / (WD base − human bound) per group",
                             xlabel="share of the gap to the human bound closed (SubPOP's relative improvement)")
    return Section(title, figure=figures.save(fig, figs, f"improvement_{index}"),
                   tables=[Table(["group", *shared], [[group_label(*g), *[series[t][i] for t in shared]] for i, g in enumerate(groups)])])


# --------------------------------------------------------------------------- command


def build_report(run_dirs: list[str | Path], out: str | Path, *, topics_path: str | Path | None = None) -> Path:
    """Read the runs, compute every section and write ``out/index.html`` with ``out/figures/``."""
    from opinbench.data import topics as topic_data
    from opinbench.reports.page import render

    out = Path(out)
    figs = out / "figures"
    runs = [read_run(run) for d in run_dirs for run in find_runs(d)]
    if not runs:
        raise ConfigError("no run found")
    mapping = None
    path = Path(topics_path) if topics_path else None
    if path is None:
        try:
            candidate = topic_data.default_path()
            path = candidate if candidate.is_file() else None
        except Exception:  # no data directory configured: the section says so
            path = None
    if path is not None:
        mapping = topic_data.load_topic_mapping(path)
    sections: list[Any] = []
    header = []
    for i, ra in enumerate(runs):
        prefix = f"run {i + 1} ({ra.label}): " if len(runs) > 1 else ""
        header.append((f"run {i + 1}", f"{ra.label} — {ra.run.folder} — tasks: {', '.join(ra.run.tasks)}"))
        datasets = ra.datasets or ["opinionqa"]
        for ds in datasets:
            for build in (representativeness_section, wd_bounds_section, steerability_section):
                sections.append(build(ra, ds, figs, prefix))
            sections.append(topics_section(ra, ds, figs, prefix, mapping))
            sections.append(refusal_section(ra, ds, figs, prefix))
            sections.append(refusal_calibration_section(ra, ds, figs, prefix))
            sections.append(difficulty_section(ra, ds, figs, prefix))
            sections.extend(disagreement_section(ra, ds, figs, prefix))
        sections.append(stance_section(ra, figs, prefix))
    if len(runs) > 1:
        for j, tuned in enumerate(runs[1:], 1):
            sections.append(improvement_section(runs[0], tuned, figs, j))
    else:
        sections.append(_missing("Relative improvement (base vs fine-tuned)", "Give two runs (base first) to compare them."))
    return render("opinbench report", header, sections, out)


def run(args: argparse.Namespace) -> int:
    # The figures need the report extra: find out before reading the runs, not after.
    import opinbench.reports.figures  # noqa: F401 - ImportError: `opinbench.cli` names the pip install

    page = build_report(args.runs, args.out, topics_path=args.topics)
    print(page)
    return 0


def register(sub: argparse._SubParsersAction, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="lm-eval output folders (with --log_samples); with two, the first is the base")
    p.add_argument("--out", required=True, help="folder for index.html and figures/")
    p.add_argument("--topics", help="OpinionQA topic_mapping.json (default: under $OPINBENCH_DATA_DIR)")
    p.set_defaults(func=run)
