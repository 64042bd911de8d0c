"""Parts of lm-eval metric keys.

lm-eval writes a metric as ``<key>,<filter>`` in its results, so a value put
inside a key (a group, a class, an attribute) must not contain a comma.
"""

from __future__ import annotations

from typing import Any


def key_part(text: Any) -> str:
    """``text`` usable inside an lm-eval metric key: commas dropped."""
    return str(text).replace(",", "")
