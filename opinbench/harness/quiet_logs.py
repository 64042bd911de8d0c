"""Silence lm-eval's warnings about opinbench's breakdown metrics.

The per-group and per-class keys (``wd|POLPARTY=Democrat``, ``recall|Yes``) are
only known once the data is read, so they cannot be declared in the YAML; lm-eval
then warns once per key that it falls back to ``mean`` (which is what we want)
and that not every document scored every key (by design: a document belongs to
one group and has one gold class). Other warnings pass through.
"""

from __future__ import annotations

import logging
import re

_OURS = re.compile(r"^\[(opinionqa|subpop|vk|wom|smartvote|anes)_")
_EXPECTED = ("No aggregation function defined for metric", "not scored on the same number")


class BreakdownLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (_OURS.match(msg) and any(e in msg for e in _EXPECTED))


def install() -> None:
    """Add the filter to lm-eval's aggregation logger (once)."""
    logger = logging.getLogger("lm_eval.evaluator_utils")
    if not any(isinstance(f, BreakdownLogFilter) for f in logger.filters):
        logger.addFilter(BreakdownLogFilter())
