"""What tokens cost: a price table keyed by model-name prefix, overridable from a TOML or JSON file.

Prices are USD per million tokens. Cache writes (5-minute ephemeral cache) and cache reads are
priced separately, as the Messages API bills them. A model missing from the table is priced at
the table's most expensive entry, so a cost budget errs on the side of stopping early; the
caller is told (`PriceTable.lookup` returns `exact=False`) so it can say so.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.agents.base import Usage


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float

    @classmethod
    def from_input_output(cls, input: float, output: float) -> Price:
        """Anthropic's usual ratios: cache writes 1.25x input, cache reads 0.1x input."""
        return cls(input, output, input * 1.25, input * 0.1)

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / 1_000_000


# Anthropic's published list prices (USD / MTok), longest matching prefix wins.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price.from_input_output(5.0, 25.0),
    "claude-opus-4": Price.from_input_output(15.0, 75.0),
    "claude-sonnet-4": Price.from_input_output(3.0, 15.0),
    "claude-3-7-sonnet": Price.from_input_output(3.0, 15.0),
    "claude-haiku-4": Price.from_input_output(1.0, 5.0),
    "claude-3-5-haiku": Price.from_input_output(0.8, 4.0),
}


class PriceError(ValueError):
    """A price file that cannot be read; the message says what to fix."""


@dataclass
class PriceTable:
    prices: dict[str, Price]

    def lookup(self, model: str) -> tuple[Price, bool]:
        """The price for `model` and whether it came from a matching entry (else the dearest one)."""
        matches = [prefix for prefix in self.prices if model.startswith(prefix)]
        if matches:
            return self.prices[max(matches, key=len)], True
        return max(self.prices.values(), key=lambda p: p.output), False

    def cost(self, model: str, usage: Usage) -> float:
        return self.lookup(model)[0].cost(usage)

    @classmethod
    def default(cls) -> PriceTable:
        return cls(dict(DEFAULT_PRICES))

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        """Defaults overridden by `path` (.toml or .json).

        Shape: `{model_prefix: {input, output[, cache_write, cache_read]}}`, optionally under `models`.
        """
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PriceError(f"cannot read price table {path}: {exc}") from None
        entries = raw.get("models", raw) if isinstance(raw, dict) else None
        if not isinstance(entries, dict):
            raise PriceError(
                f'{path}: expected a table of models, e.g. [models."claude-sonnet-4"] input = 3.0, output = 15.0'
            )
        table = cls.default()
        for model, entry in entries.items():
            try:
                base = Price.from_input_output(float(entry["input"]), float(entry["output"]))
                table.prices[model] = Price(
                    base.input,
                    base.output,
                    float(entry.get("cache_write", base.cache_write)),
                    float(entry.get("cache_read", base.cache_read)),
                )
            except (TypeError, KeyError, ValueError):
                raise PriceError(
                    f"{path}: entry {model!r} needs numeric 'input' and 'output' (USD per million tokens), "
                    "optionally 'cache_write' and 'cache_read'"
                ) from None
        return table
