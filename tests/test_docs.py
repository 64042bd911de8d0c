"""The README and docs/: links that resolve, the set-up commands on the first screen and in CI,
and numbers that match the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    out = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(page):
    broken = []
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or an anchor of the page itself
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def _commands(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_the_first_screen_holds_both_set_up_commands_as_ci_runs_them():
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    blocks = _commands(first_screen)
    assert len(blocks) >= 2, "the README's first 40 lines must hold both set-up commands"
    install_and_run, install_and_test = blocks[:2]
    assert install_and_run.endswith("&& opinbench eval") and "pip install -e . " in install_and_run
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_line = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    # CI runs the second command with the project's regression check before pytest
    assert ci_line == install_and_test.replace(" && python -m pytest", " && bash scripts/ci_regress.sh && python -m pytest")


def test_the_docs_say_how_many_opinionqa_groups_the_results_show(shared_data, monkeypatch):
    # The README said "the 22 standard subpopulations" where every result shows 17.
    from opinbench.data import registry

    monkeypatch.setenv("OPINBENCH_DATA_DIR", str(shared_data))
    groups = {(r.attribute, r.group) for r in registry.load("opinionqa")}
    text = (ROOT / "docs" / "tasks.md").read_text(encoding="utf-8")
    assert f"scores the other {len(groups)}" in text and f"x {len(groups)} groups" in text
    assert len(groups) + 5 == 22  # the five religious groups of the standard 22 are absent
