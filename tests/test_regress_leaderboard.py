"""`opinbench regress` with a leaderboard entry as a side (``leaderboard:ID``): the entry's stored
lm-eval files are read as a run, and its definition's tolerances replace the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the leaderboard store needs the leaderboard extra")

from opinbench.cli import main  # noqa: E402
from opinbench.commands.regress import definition_tolerances  # noqa: E402
from opinbench.leaderboard import store as S  # noqa: E402
from tests.test_regress import _tasks  # noqa: E402
from tests.helpers.paired_runs import write_run  # noqa: E402


def _entry(tmp_path: Path, run_root: Path | None, *, finish: bool = True) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path / 'board.sqlite'}"
    st = S.Store.open(url)
    identity = {"model": "org/m", "revision": "abc", "adapter_hash": None, "dtype": "float32",
                "chat_template": True, "leaderboard": "smoke", "leaderboard_version": 1}
    rid = st.submit({"leaderboard": "smoke", "leaderboard_version": 1, "identity": identity, "model": "org/m",
                     "revision": "abc", "dtype": "float32", "chat_template": True})
    if finish:
        claim = st.claim("worker-1")
        assert st.finish(claim, {"validated": True}, folder=run_root)
    st.engine.dispose()
    return url, rid


def _regress(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["regress", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_an_entry_compares_like_the_run_it_stores(tmp_path, capsys):
    stored = write_run(tmp_path / "stored", _tasks())
    url, rid = _entry(tmp_path, stored.parent)
    candidate = write_run(tmp_path / "cand", _tasks())
    rc, out, err = _regress(capsys, f"leaderboard:{rid}", candidate, "--store", url)
    assert rc == 0, err
    assert f"leaderboard:{rid}" in out and "no regression" in out
    # the smoke definition's tolerance for wd (0.01) replaces the default (0.005)
    wd_row = next(line for line in out.splitlines() if line.startswith("| opinionqa_wd | wd ("))
    assert "| 0.01 |" in wd_row


def test_definition_tolerances_by_regress_metric():
    assert definition_tolerances("smoke") == {"wd": 0.01, "macro_f1": 0.05}


def test_an_unfinished_or_malformed_entry_cannot_be_compared(tmp_path, capsys):
    url, rid = _entry(tmp_path, None, finish=False)
    candidate = write_run(tmp_path / "cand", _tasks())
    rc, _, err = _regress(capsys, f"leaderboard:{rid}", candidate, "--store", url)
    assert rc == 2 and "is PENDING, not FINISHED" in err
    rc, _, err = _regress(capsys, "leaderboard:first", candidate, "--store", url)
    assert rc == 2 and "leaderboard:ID" in err
    rc, _, err = _regress(capsys, f"leaderboard:{rid + 99}", candidate, "--store", url)
    assert rc == 2 and f"no request {rid + 99}" in err
