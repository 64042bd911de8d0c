"""The report page: one self-contained HTML file rendered by Jinja2 with autoescape.

Figures are inlined as base64 SVG (no external file, script or CDN is needed to view
the page) and linked to their SVG/PNG files beside it; each figure has its numbers as
a table. A section whose inputs are missing carries a note instead of a figure.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Section:
    """One heading of the page: a figure (SVG and PNG path) with its table, or only a note."""

    title: str
    text: str = ""
    figure: tuple[Path, Path] | None = None
    tables: list[Table] = field(default_factory=list)
    note: str = ""


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("opinbench.reports", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = _cell
    return env


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.3f}"
    return "–" if value is None else str(value)


def render(title: str, header: list[tuple[str, str]], sections: list[Section], out: Path) -> Path:
    """Write ``out/index.html``; figure paths are made relative to ``out``."""
    items = []
    for s in sections:
        fig = None
        if s.figure:
            svg, png = s.figure
            fig = {
                "data": base64.b64encode(svg.read_bytes()).decode("ascii"),
                "svg": svg.relative_to(out).as_posix(),
                "png": png.relative_to(out).as_posix(),
            }
        items.append({"section": s, "figure": fig})
    html = _environment().get_template("report.html.j2").render(title=title, header=header, items=items)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(html, encoding="utf-8")
    return page
