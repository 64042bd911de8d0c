"""Renderings of a regression report (`opinbench.regress.check.regress`): a markdown table
for pull-request comments, JSON, and JUnit XML (one test case per task and metric, a
regression is a failure) that any CI system displays.

JUnit XML is written with the standard library's ``xml.etree.ElementTree`` (it escapes
text and attributes); the schema is the common Jenkins/Ant one that GitHub, GitLab and
Jenkins read (``testsuites/testsuite/testcase/failure``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from opinbench.regress.check import IMPROVEMENT, REGRESSION

FORMATS = ("markdown", "json", "junit")

_MARK = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement"}


def _num(x: Any, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _signed(x: Any) -> str:
    return "n/a" if x is None else f"{x:+.4f}"


def _p(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _mde(row: dict[str, Any]) -> str:
    """The minimum detectable effect (∞ where no test could reach the level), ⚠ when underpowered."""
    text = "∞" if row.get("mde") is None else _num(row["mde"])
    return text + (" ⚠" if row.get("underpowered") else "")


def _direction(row: dict[str, Any]) -> str:
    return "lower is better" if row["lower_is_better"] else "higher is better"


def markdown(report: dict[str, Any]) -> str:
    n_reg = len(report["regressions"])
    weak = report.get("underpowered") or []
    head = (
        f"**opinbench regress: {n_reg} regression{'s' if n_reg != 1 else ''}**"
        if n_reg
        else f"**opinbench regress: underpowered ({len(weak)} rows): no regression found, but one the size of the tolerance could have been missed**"
        if weak and report["exit_code"] == 2
        else "**opinbench regress: no regression**"
    )
    lines = [
        head,
        "",
        f"baseline `{report['baseline']}` vs candidate `{report['candidate']}`; "
        f"alpha {report['alpha']}, {report['correction']}",
        "",
        "| task | metric | docs (questions) | baseline | candidate | Δ | tolerance | MDE | p | p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['task']} | {r['metric']} ({'↓' if r['lower_is_better'] else '↑'}) | {r['n_docs']} ({r['n_questions']}) "
            f"| {_num(r['baseline'])} | {_num(r['candidate'])} | {_signed(r['delta'])} | {r['tolerance']:g} "
            f"| {_mde(r)} | {_p(r['pvalue'])} | {_p(r['pvalue_holm'])} | {_MARK.get(r['verdict'], 'ok')} |"
        )
    lines.append("")
    lines.append(
        "A regression is a worsening beyond the tolerance that is significant after Holm's correction "
        "(WD, KL, acc and judge metrics: sign-flip permutation over questions of the paired differences; macro-F1: "
        "paired bootstrap over questions; judge items counted in the docs column). MDE: the minimum detectable effect "
        f"at {int(100 * report.get('power', 0.8))} % power and Holm's first level; ⚠: above the tolerance (underpowered)."
    )
    for line in weak:
        lines.append(f"- underpowered: {line}")
    for note in report["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def junit(report: dict[str, Any]) -> str:
    rows = report["rows"]
    suites = ET.Element("testsuites", name="opinbench regress")
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    for task, task_rows in by_task.items():
        failures = sum(r["verdict"] == REGRESSION for r in task_rows)
        errors = sum(bool(r.get("underpowered")) and report["exit_code"] == 2 for r in task_rows)
        suite = ET.SubElement(
            suites, "testsuite", name=task, tests=str(len(task_rows)), failures=str(failures), errors=str(errors), skipped="0"
        )
        for r in task_rows:
            case = ET.SubElement(suite, "testcase", classname=f"opinbench.regress.{task}", name=r["metric"])
            summary = (
                f"{r['metric']} ({_direction(r)}): baseline {_num(r['baseline'])}, candidate {_num(r['candidate'])}, "
                f"delta {_signed(r['delta'])}, tolerance {r['tolerance']:g}, {r['test']} p = {_p(r['pvalue'])}, "
                f"Holm p = {_p(r['pvalue_holm'])}, {r['n_docs']} documents in {r['n_questions']} questions: {r['verdict']}"
            )
            if r["verdict"] == REGRESSION:
                ET.SubElement(case, "failure", message=f"{task}/{r['metric']} regressed", type="regression").text = summary
            elif r.get("underpowered") and report["exit_code"] == 2:
                ET.SubElement(case, "error", message=f"{task}/{r['metric']} underpowered", type="underpowered").text = (
                    f"{summary}; minimum detectable effect {_mde(r)} "
                    f"exceeds the tolerance; about {r.get('questions_needed')} questions needed")
            else:
                ET.SubElement(case, "system-out").text = summary
    suites.set("tests", str(len(rows)))
    suites.set("failures", str(len(report["regressions"])))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def render(report: dict[str, Any], fmt: str) -> str:
    return {"markdown": markdown, "json": to_json, "junit": junit}[fmt](report)
