"""The price table of judge models (``opinbench/llm/prices.yaml``), with user overrides.

Rows name models as their providers list their prices, undated
(``anthropic:claude-sonnet-4-5``); a pinned snapshot (``anthropic:claude-sonnet-4-5-20250929``,
``openai:gpt-4o-2024-08-06``) costs what its undated row says unless a row names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opinbench.errors import ConfigError

DEFAULT_PRICES = Path(__file__).resolve().parents[1] / "llm" / "prices.yaml"

# The date suffix of a model snapshot: Anthropic's -YYYYMMDD, OpenAI's -YYYY-MM-DD.
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Price:
    """US dollars per million input / output tokens."""

    input: float
    output: float

    def cost(self, input_tokens: float, output_tokens: float, factor: float = 1.0) -> float:
        return factor * (input_tokens * self.input + output_tokens * self.output) / 1e6


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, Price]
    batch_discount: float = 0.5

    def row(self, model: str) -> str | None:
        """The row that prices ``PROVIDER:MODEL``: its own, else, for a dated snapshot, its
        undated model's (None: neither is in the table).

        >>> load_prices().row("anthropic:claude-sonnet-4-5-20250929")
        'anthropic:claude-sonnet-4-5'
        >>> load_prices().row("openai:gpt-4o-2024-08-06"), load_prices().row("anthropic:claude-9")
        ('openai:gpt-4o', None)
        """
        if model in self.models:
            return model
        undated = _SNAPSHOT.sub("", model)
        return undated if undated in self.models else None

    def get(self, model: str) -> Price | None:
        """The price of ``PROVIDER:MODEL`` (`row`; None: not in the table)."""
        row = self.row(model)
        return None if row is None else self.models[row]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read prices from {path}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with `models: {{PROVIDER:MODEL: ...}}`")
    return data


def load_prices(override: Path | None = None) -> PriceTable:
    """The shipped table, with the rows (and ``batch_discount``) of ``override`` on top.

    >>> load_prices().get("openai:omni-moderation-latest").cost(1e6, 0)
    0.0
    """
    data = _read(DEFAULT_PRICES)
    models = dict(data.get("models", {}))
    discount = data.get("batch_discount", 0.5)
    if override is not None:
        extra = _read(override)
        models.update(extra.get("models", {}))
        discount = extra.get("batch_discount", discount)
    try:
        table = {
            str(k): Price(float(v["input"]), float(v["output"])) for k, v in models.items()
        }
    except (TypeError, KeyError, ValueError) as err:
        raise ConfigError(f"a price row needs numbers `input` and `output`: {err}") from err
    return PriceTable(table, float(discount))
