"""`opinbench data fetch NAME`: download public originals, verified against pinned checksums.

Every openly downloadable source is pinned in ``resources/sources.json`` to a
repository commit, with each file's size and sha256. A file is fetched from the
first mirror that answers, written to a temporary name, checked, and renamed
into place, so an interrupted fetch leaves no half-written file and a rerun only
fetches what is missing or wrong.

Mirrors, tried in order:

1. ``--mirror URL`` / ``$OPINBENCH_MIRRORS`` (space-separated): a base URL under
   which files are found by ``{repo}/{commit}/{path}``;
2. ``raw.githubusercontent.com/{repo}/{commit}/{path}``;
3. ``cdn.jsdelivr.net/gh/{repo}@{commit}/{path}`` (serves GitHub by commit, useful
   when a maintainer deletes files from the branch, as OpinionQA's was).

``--from DIR`` takes files from a local copy instead (any folder whose files
sit at the same relative places as in the data directory, or at their paths in
the original repository); they are verified the same way.

ANES (registration required) and the full SubPOP distributions (gated on the
Hugging Face hub) are not openly downloadable: fetching them explains how to
obtain them instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from opinbench.errors import OpinbenchError

log = logging.getLogger(__name__)

NOT_OPEN = {
    "anes": "ANES files require accepting the ANES terms of use: register at https://electionstudies.org, "
    "download the 2022 and 2024 pilot study CSVs and place them under <data dir>/anes/pilot_2022/ and "
    "<data dir>/anes/pilot_2024/.",
    "subpop_distributions": "The SubPOP distributions are gated on the Hugging Face hub (jjssuh/subpop): "
    "accept its terms, download subpop_train.jsonl and subpop_eval.jsonl and place them under <data dir>/subpop/.",
}


class FetchError(OpinbenchError):
    """A source could not be fetched or did not match its pinned checksum."""


@dataclass(frozen=True)
class PinnedFile:
    repo: str
    commit: str
    path: str  # in the repository
    dest: str  # under the data directory
    size: int
    sha256: str


def cache_dir() -> Path:
    """Where fetched data goes when ``$OPINBENCH_DATA_DIR`` is not set."""
    base = os.environ.get("OPINBENCH_CACHE", Path.home() / ".cache" / "opinbench")
    return Path(base).expanduser() / "data"


def manifest() -> dict[str, list[PinnedFile]]:
    raw = json.loads(resources.files("opinbench.data").joinpath("resources/sources.json").read_text())
    return {
        name: [
            PinnedFile(s["repo"], s["commit"], f["path"], f["dest"], f["bytes"], f["sha256"])
            for s in sources
            for f in s["files"]
        ]
        for name, sources in raw.items()
    }


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mirror_urls(f: PinnedFile, extra: list[str]) -> list[str]:
    urls = [f"{m.rstrip('/')}/{f.repo}/{f.commit}/{f.path}" for m in extra]
    urls.append(f"https://raw.githubusercontent.com/{f.repo}/{f.commit}/{f.path}")
    urls.append(f"https://cdn.jsdelivr.net/gh/{f.repo}@{f.commit}/{f.path}")
    return urls


def _download(url: str, to: Path, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "opinbench-fetch"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, to.open("wb") as out:
        shutil.copyfileobj(resp, out)


def _local_candidates(f: PinnedFile, local: Path) -> list[Path]:
    return [local / f.dest, local / f.path, local / f.repo.split("/")[-1] / f.path]


def fetch(
    name: str,
    dest: Path,
    *,
    mirrors: list[str] | None = None,
    local: Path | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> list[Path]:
    """Fetch data set ``name`` into ``dest``; returns the files now in place."""
    table = manifest()
    if name in NOT_OPEN:
        raise FetchError(f"{name} is not openly downloadable. {NOT_OPEN[name]}")
    if name not in table:
        raise FetchError(
            f"unknown source {name!r}; fetchable: {', '.join(sorted(table))}; "
            f"not openly downloadable: {', '.join(sorted(NOT_OPEN))}"
        )
    if local is not None and not local.is_dir():
        raise FetchError(f"{local}: no such folder (the local copy to fetch from)")
    dest.mkdir(parents=True, exist_ok=True)  # an unwritable destination fails here, before any download
    extra = list(mirrors or []) + os.environ.get("OPINBENCH_MIRRORS", "").split()
    files = table[name]
    done: list[Path] = []
    from tqdm import tqdm

    for f in tqdm(files, desc=f"fetch {name}", unit="file", disable=not progress):
        target = dest / f.dest
        if target.is_file() and target.stat().st_size == f.size and sha256_of(target) == f.sha256:
            done.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        errors: list[str] = []
        try:
            sources = (
                [("local", p) for p in _local_candidates(f, local)] if local is not None else []
            ) + [("url", u) for u in mirror_urls(f, extra)]
            for kind, src in sources:
                try:
                    if kind == "local":
                        if not Path(src).is_file():
                            continue
                        shutil.copyfile(src, tmp)
                    else:
                        _download(str(src), tmp, timeout)
                except (urllib.error.URLError, OSError, TimeoutError) as exc:
                    errors.append(f"{src}: {exc}")
                    continue
                digest = sha256_of(tmp)
                if digest != f.sha256:
                    errors.append(f"{src}: sha256 {digest} does not match the pinned {f.sha256}")
                    continue
                tmp.replace(target)
                done.append(target)
                break
            else:
                offline = all("urlopen error" in e or "Name or service" in e or "timed out" in e for e in errors if "sha256" not in e)
                hint = (
                    " No mirror could be reached: are you offline? Pass --from DIR with a local copy, "
                    "or --mirror URL, or set OPINBENCH_DATA_DIR to a folder that already holds the data."
                    if offline
                    else ""
                )
                raise FetchError(
                    f"{name}: could not fetch {f.path} from {f.repo}@{f.commit[:7]}.{hint}\n  " + "\n  ".join(errors)
                )
        finally:
            tmp.unlink(missing_ok=True)
    return done
