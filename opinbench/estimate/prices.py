"""The price table of judge models (``opinbench/llm/prices.yaml``), with user overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opinbench.errors import ConfigError

DEFAULT_PRICES = Path(__file__).resolve().parents[1] / "llm" / "prices.yaml"


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

    def get(self, model: str) -> Price | None:
        """The price of ``PROVIDER:MODEL`` (None: not in the table)."""
        return self.models.get(model)


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
