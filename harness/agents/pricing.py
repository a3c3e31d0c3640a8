"""What tokens cost: a price table keyed by model-name prefix, overridable from a TOML or JSON file.

Prices are USD per million tokens, kept in `prices.toml` beside this module with the date they were
checked and their sources. Cache writes (5-minute ephemeral cache) and cache reads are priced
separately, as the APIs bill them. A model missing from the table is priced at the table's most
expensive entry, so a cost budget errs on the side of stopping early; the caller is told
(`PriceTable.lookup` returns `exact=False`, `unpriced_warning` words it) so it can say so.
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


PRICES_FILE = Path(__file__).with_name("prices.toml")  # list prices with the date and source they came from


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

    def unpriced_warning(self, model: str) -> str | None:
        """A warning for the record when `model` has no entry (its cost is an overestimate), else None."""
        price, exact = self.lookup(model)
        if exact:
            return None
        return (
            f"no price for model {model!r} in the price table; costed at the dearest entry "
            f"(${price.input:g}/${price.output:g} per million tokens): add it to {PRICES_FILE}"
        )

    @classmethod
    def default(cls) -> PriceTable:
        """The shipped table (prices.toml)."""
        return cls(_read_entries(PRICES_FILE))

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        """The shipped table overridden by `path` (.toml or .json).

        Shape: `{model_prefix: {input, output[, cache_write, cache_read]}}`, optionally under `models`.
        """
        table = cls.default()
        table.prices.update(_read_entries(Path(path)))
        return table


def _read_entries(path: Path) -> dict[str, Price]:
    try:
        raw = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PriceError(f"cannot read price table {path}: {exc}") from None
    entries = raw.get("models", raw) if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise PriceError(
            f'{path}: expected a table of models, e.g. [models."claude-sonnet-4"] input = 3.0, output = 15.0'
        )
    prices = {}
    for model, entry in entries.items():
        try:
            base = Price.from_input_output(float(entry["input"]), float(entry["output"]))
            prices[model] = Price(
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
    return prices
