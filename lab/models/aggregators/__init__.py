"""Aggregators g_φ: tokens (B, M, D) → z_AGG (B, D). One module per variant, one registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch import nn

from lab.models.aggregators.transformer import TransformerAggregator

if TYPE_CHECKING:
    from lab.config import ModelConfig

AGGREGATORS: dict[str, Callable[[ModelConfig, int], nn.Module]] = {
    "transformer": lambda cfg, dim: TransformerAggregator(
        dim, layers=cfg.agg_layers, heads=cfg.agg_heads, ffn_mult=cfg.agg_ffn_mult, dropout=cfg.agg_dropout
    ),
}
