"""Silence lm-eval's warnings about opinbench's breakdown metrics.

The per-group and per-class keys (``wd|POLPARTY=Democrat``, ``recall|Yes``) are
only known once the data is read, so they cannot be declared in the YAML; lm-eval
then warns once per key that it falls back to ``mean`` (which is what we want)
and that not every document scored every key (by design: a document belongs to
one group and has one gold class). Other warnings pass through.

lm-eval also warns, for every task with a ``custom_dataset`` hook, that "Custom kwargs
can be passed to `--metadata`", with an example key (``max_seq_lengths``) that belongs to
another benchmark; opinbench's tasks document their own keys (``opinbench tasks``,
the task folders' READMEs), so that hint is dropped for them (`CustomKwargsHintFilter`).

opinbench's tasks are known by their names' beginnings, which the data registry gives
(`opinbench.data.registry.task_prefixes`), so a new data set's tasks are quiet too.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from opinbench.data.registry import task_prefixes

_EXPECTED = ("No aggregation function defined for metric", "not scored on the same number")


@lru_cache(maxsize=4)
def _patterns(prefixes: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    names = "|".join(re.escape(p) for p in prefixes)
    return re.compile(rf"^\[({names})_"), re.compile(rf"^({names})_\w*: Custom kwargs can be passed")


def _ours() -> re.Pattern[str]:
    return _patterns(task_prefixes())[0]


def _hint() -> re.Pattern[str]:
    return _patterns(task_prefixes())[1]


class BreakdownLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (_ours().match(msg) and any(e in msg for e in _EXPECTED))


class CustomKwargsHintFilter(logging.Filter):
    """Drop lm-eval's per-task ``max_seq_lengths`` hint for opinbench's tasks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _hint().match(record.getMessage())


_FILTERS = {"lm_eval.evaluator_utils": BreakdownLogFilter, "lm_eval.api.task": CustomKwargsHintFilter}


def install() -> None:
    """Add the filters to lm-eval's loggers (once each)."""
    for name, kind in _FILTERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
