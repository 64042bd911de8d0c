"""Data sets by name: where their files live under the data directory and which
loader reads them. Loaders are imported lazily so that `opinbench --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from opinbench.errors import ConfigError

DATA_DIR_ENV = "OPINBENCH_DATA_DIR"


@dataclass(frozen=True)
class DataSet:
    name: str
    loader: str  # "module:function"
    subpath: str  # default location under the data directory
    kind: str  # "distribution" or "answer"
    description: str

    def load_fn(self) -> Callable[..., list[Any]]:
        module, _, fn = self.loader.partition(":")
        return getattr(importlib.import_module(module), fn)


DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in [
        DataSet("opinionqa", "opinbench.data.opinionqa:load_opinionqa", "opinionqa/human_resp", "distribution",
                "OpinionQA (Pew ATP), human_resp release of tatsu-lab/opinions_qa"),
        DataSet("opinionqa_steerable", "opinbench.data.opinionqa:load_opinionqa_steerable",
                "opinionqa/steerable/steerable_test_opinionqa_small.json", "distribution",
                "OpinionQA steerable JSON release (modular_pluralism)"),
        DataSet("subpop_train", "opinbench.data.subpop:load_subpop_train", "subpop", "distribution",
                "SubPOP-Train (ATP), public release layout"),
        DataSet("subpop_eval", "opinbench.data.subpop:load_subpop_eval", "subpop", "distribution",
                "SubPOP-Eval (GSS), public release layout"),
        DataSet("vk", "opinbench.data.vk:load_vk", "value_kaleidoscope", "answer",
                "Value Kaleidoscope steerable release / ValuePrism layout"),
        DataSet("wom", "opinbench.data.wahlomat:load_wahlomat", "wahl-o-mat", "answer",
                "Wahl-o-Mat, qual-o-mat data layout (parties' answers to theses)"),
        DataSet("smartvote", "opinbench.data.smartvote:load_smartvote", "smartvote", "answer",
                "smartvote questionnaire and candidate answer export"),
        DataSet("anes", "opinbench.data.anes:load_anes", "anes", "answer",
                "ANES respondent-level pilot studies, recoded by a shipped mapping"),
    ]
}


def get(name: str) -> DataSet:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$OPINBENCH_DATA_DIR``, else the fetch cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from opinbench.data.fetch import cache_dir

    return cache_dir()


def default_source(name: str, explicit_dir: str | os.PathLike | None = None) -> Path:
    """Where data set ``name`` is expected, with a clear error if it is not there."""
    ds = get(name)
    root = data_dir(explicit_dir)
    path = root / ds.subpath
    if not path.exists():
        raise ConfigError(
            f"{name}: {path} does not exist. Point {DATA_DIR_ENV} at the folder that holds "
            f"{ds.subpath!r} (e.g. ../shared/data), pass --source, or run `opinbench data fetch {name}`."
        )
    return path


def load(name: str, source: str | os.PathLike | None = None, **kwargs: Any) -> list[Any]:
    """Load data set ``name`` from ``source`` (default: its place under the data directory)."""
    path = Path(source) if source is not None else default_source(name)
    return get(name).load_fn()(path, **kwargs)
