"""Every swappable model part by config field name, for validation and construction."""

from __future__ import annotations

from lab.models.action_embed import ACTION_EMBEDS
from lab.models.aggregators import AGGREGATORS
from lab.models.encoders import ENCODERS
from lab.models.predictors import PREDICTORS

REGISTRIES = {
    "encoder": ENCODERS,
    "action_embed": ACTION_EMBEDS,
    "aggregator": AGGREGATORS,
    "predictor": PREDICTORS,
}
