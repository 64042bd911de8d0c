"""The built leaderboard site in a real browser: Debian's chromium driven by Playwright's Python
package (``executable_path``; ``playwright install`` is never needed). Skips, with the reason,
where either is missing. Screenshots go to ``$OPINBENCH_SCREENSHOTS`` (default: the test's
temporary folder). ``docs/leaderboard/`` holds screenshots of real runs instead
(``scripts/leaderboard_screenshots.sh``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_leaderboard_worker import (  # noqa: F401 - fixtures of the smoke run and the site
    XSS, built_site, monkeypatch_module, smoke_run, tiny_model)

CHROMIUM = os.environ.get("OPINBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
    if not CHROMIUM:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_ranking_sorts_links_open_and_figures_show(browser, built_site, tmp_path):
    shots = Path(os.environ.get("OPINBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(built_site.as_uri())
    assert page.locator("#subset-banner").is_visible()

    def models() -> list[str]:
        return page.locator("#ranking tbody tr td:nth-child(2) a").all_inner_texts()

    assert sorted(models()) == sorted([XSS, "org/second"])
    header = page.locator("#ranking th.sortable.text", has_text="model")  # not a metric column naming the model
    header.click()
    assert models() == sorted(models()) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert models() == sorted(models(), reverse=True)
    page.screenshot(path=str(shots / "smoke.png"), full_page=True)
    page.locator("#ranking a", has_text="org/second").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "org/second"
    imgs = page.locator("img.figure")
    assert imgs.count() >= 1
    for i in range(imgs.count()):
        box = imgs.nth(i).bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0
        assert imgs.nth(i).evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(shots / "smoke-entry.png"), full_page=True)
    assert not errors, errors
    assert not dialogs  # the submitter's <img onerror=alert(1)> never ran
