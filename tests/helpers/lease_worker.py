"""A leaderboard worker process for the takeover test: ``python -m tests.helpers.lease_worker URL
RUN_DIR MARKER_DIR LEASE_S``. It claims requests until the one in the store is FINISHED or FAILED;
its "evaluation" writes a marker file, sleeps, and copies ``RUN_DIR`` under result and samples
file names of its own (as a real run would: lm-eval names them by the time), so that files stored
by two workers can be told apart."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def evaluator(run: Path, markers: Path):
    def run_copy(definition, request, out, backend="hf"):
        (markers / f"started-{os.getpid()}").write_text(str(time.time()))
        time.sleep(2.0)
        out = Path(out)
        shutil.copytree(run, out)
        stamp = f"{os.getpid()}"
        for f in list(out.rglob("*.json*")):
            stem, ext = f.name.rsplit(".", 1)
            f.rename(f.with_name(f"{stem[: stem.rfind('_') + 1]}2026-12-07T00-00-00.{stamp}.{ext}"))
        (markers / f"evaluated-{os.getpid()}").write_text(str(time.time()))
        return out
    return run_copy


def main(url: str, run: str, markers: str, lease_s: str) -> int:
    from opinbench.leaderboard.store import FAILED, FINISHED, Store
    from opinbench.leaderboard.worker import run_worker

    store = Store.open(url)
    tally = None
    while True:
        rows = store.list()
        if rows and all(r["state"] in (FINISHED, FAILED) for r in rows):
            break
        t = run_worker(store, once=True, poll_s=0, lease_s=float(lease_s),
                       evaluator=evaluator(Path(run), Path(markers)))
        if t.processed:
            tally = t
            print(f"pid {os.getpid()}: {t.summary()}", flush=True)
        time.sleep(0.2)
    store.engine.dispose()
    print(f"pid {os.getpid()}: done ({tally.summary() if tally else 'nothing claimed'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
