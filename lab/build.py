"""Config → objects, in one place: device, data and views, model parts, target, online probes.

Each registry maps a config `kind` to a builder taking that kind's sub-config (the kinds
themselves are validated by `lab.config`); a new variant adds a config class and an entry here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from lab.config import ConfigError, ModelConfig, RunConfig
from lab.data.registry import load_dataset
from lab.data.views import ViewSampler, build_view_sampler
from lab.models.action_embed import LinearBNActionEmbed
from lab.models.aggregators.transformer import TransformerAggregator
from lab.models.encoders import ConvNet, ResNet18
from lab.models.predictors import mlp_predictor
from lab.models.seqjepa import SeqJEPA
from lab.models.target import EMATarget
from lab.train.probes import OnlineProbes

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "convnet": lambda c: ConvNet(c.width),
    "resnet18_cifar": lambda c: ResNet18(cifar_stem=True),
    "resnet18": lambda c: ResNet18(cifar_stem=False),
}
ACTION_EMBEDS: dict[str, Callable[..., nn.Module]] = {
    "linear_bn": lambda c, in_dim: LinearBNActionEmbed(in_dim, c.dim),
}
AGGREGATORS: dict[str, Callable[..., nn.Module]] = {
    "transformer": lambda c, dim: TransformerAggregator(dim, layers=c.layers, heads=c.heads, ffn_mult=c.ffn_mult,
                                                        dropout=c.dropout),
}
PREDICTORS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda c, in_dim, out_dim: mlp_predictor(in_dim, out_dim, c.hidden),
}
TARGETS: dict[str, Callable[..., nn.Module]] = {
    "ema": lambda c, encoder: EMATarget(encoder),
}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return torch.device(name)


def autocast_for(device: torch.device, bf16: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU runs stay float32)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and bf16 else contextlib.nullcontext()


def build_sampler(cfg: RunConfig, split: str, device: torch.device) -> ViewSampler:
    """The configured dataset split behind its view sampler, images on `device`."""
    num = cfg.data.num_train if split == "train" else cfg.data.num_test
    ds = load_dataset(cfg.data.name, cfg.data.root, split, image_size=cfg.data.image_size, num=num, seed=cfg.data.seed)
    return build_view_sampler(ds, cfg.data.views, device)


def build_seqjepa(cfg: ModelConfig, action_in_dim: int) -> SeqJEPA:
    """Encoder, action embedding (if act_cond), aggregator over [z; e] tokens, predictor on [z_AGG; e_M]."""
    encoder = ENCODERS[cfg.encoder.kind](cfg.encoder)
    action_embed = ACTION_EMBEDS[cfg.action_embed.kind](cfg.action_embed, action_in_dim) if cfg.act_cond else None
    d_e = action_embed.out_dim if action_embed is not None else 0
    aggregator = AGGREGATORS[cfg.aggregator.kind](cfg.aggregator, encoder.out_dim + d_e)
    predictor = PREDICTORS[cfg.predictor.kind](cfg.predictor, aggregator.out_dim + d_e, encoder.out_dim)
    return SeqJEPA(encoder, action_embed, aggregator, predictor)


def build_parts(cfg: RunConfig, sampler: ViewSampler, device: torch.device) -> tuple[SeqJEPA, nn.Module, OnlineProbes]:
    """Model, target and online probes sized to the sampler's actions and classes, on `device`."""
    model = build_seqjepa(cfg.model, sampler.action_dim).to(device)
    target = TARGETS[cfg.objective.target.kind](cfg.objective.target, model.encoder).to(device)
    probes = OnlineProbes(model.encoder.out_dim, model.aggregator.out_dim, sampler.num_classes, sampler.action_dim,
                          hidden=cfg.train.probe_hidden)
    return model, target, probes.to(device)
