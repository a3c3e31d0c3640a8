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
from lab.data.base import ImageDataset
from lab.data.registry import load_dataset
from lab.data.views import ViewSampler, build_view_sampler
from lab.models.action_embed import LinearBNActionEmbed, LinearLNActionEmbed
from lab.models.aggregators.crate import CrateAggregator
from lab.models.aggregators.tost import ToSTAggregator
from lab.models.aggregators.transformer import TransformerAggregator
from lab.models.encoders import ConvNet, ResNet18
from lab.models.predictors import mlp_predictor
from lab.models.seqjepa import SeqJEPA
from lab.models.target import EMATarget, StopGradTarget
from lab.models.blockwise import BlockwiseEncoder, LocalObjective
from lab.models.probes import OnlineProbes

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "convnet": lambda c: ConvNet(c.width, norm=c.norm),
    "resnet18_cifar": lambda c: ResNet18(cifar_stem=True, norm=c.norm),
    "resnet18": lambda c: ResNet18(cifar_stem=False, norm=c.norm),
}
ACTION_EMBEDS: dict[str, Callable[..., nn.Module]] = {
    "linear_bn": lambda c, in_dim: LinearBNActionEmbed(in_dim, c.dim),
    "linear_ln": lambda c, in_dim: LinearLNActionEmbed(in_dim, c.dim),
}
AGGREGATORS: dict[str, Callable[..., nn.Module]] = {
    "transformer": lambda c, dim: TransformerAggregator(dim, layers=c.layers, heads=c.heads, ffn_mult=c.ffn_mult,
                                                        dropout=c.dropout),
    "crate": lambda c, dim: CrateAggregator(dim, layers=c.layers, heads=c.heads, eta=c.eta, lambd=c.lambd),
    "crate_alpha": lambda c, dim: CrateAggregator(dim, layers=c.layers, heads=c.heads, eta=c.eta, lambd=c.lambd,
                                                  overcomplete=c.overcomplete),
    "tost": lambda c, dim: ToSTAggregator(dim, layers=c.layers, heads=c.heads, mlp_mult=c.mlp_mult, causal=c.causal,
                                          dropout=c.dropout, layerscale=c.layerscale),
}
PREDICTORS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda c, in_dim, out_dim: mlp_predictor(in_dim, out_dim, c.hidden, c.norm),
}
TARGETS: dict[str, Callable[..., nn.Module]] = {
    "ema": lambda c, encoder: EMATarget(encoder),
    "stopgrad": lambda c, encoder: StopGradTarget(),
}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's message lists twenty device types; say what this lab runs on
        raise ConfigError(f"device {name!r} is not a device name: use auto, cpu, cuda or cuda:N") from None


def autocast_for(device: torch.device, bf16: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU runs stay float32)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and bf16 else contextlib.nullcontext()


def build_sampler(cfg: RunConfig, split: str, device: torch.device,
                  transform: Callable[[ImageDataset], ImageDataset] | None = None) -> ViewSampler:
    """The configured dataset split (passed through `transform` if given) behind its view sampler, images on `device`."""
    d = cfg.data
    num = d.num_train if split == "train" else d.num_test
    ds = load_dataset(d.name, d.root, split, image_size=d.image_size, num=num, seed=d.seed, stream=d.stream,
                      memory_gib=d.memory_gib, cache_dir=d.cache_dir, progress=cfg.logging.progress)
    return build_view_sampler(transform(ds) if transform else ds, d.views, device, seq_len=d.seq_len)


def accelerate(cfg: RunConfig, model: SeqJEPA, target: nn.Module, device: torch.device) -> None:
    """On CUDA: channels_last memory format and torch.compile of the encoders, as the config asks."""
    if device.type != "cuda":
        return
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
        target.to(memory_format=torch.channels_last)
    if cfg.train.compile:
        model.encoder.compile()
        if isinstance(target, EMATarget):  # the teacherless target runs the online encoder
            target.encoder.compile()


def build_seqjepa(cfg: ModelConfig, action_in_dim: int, views_kind: str = "rotation") -> SeqJEPA:
    """Encoder, action embedding (if act_cond), aggregator over [z; e] tokens, predictor on [z_AGG; e_M]."""
    encoder = ENCODERS[cfg.encoder.kind](cfg.encoder)
    action_embed = ACTION_EMBEDS[cfg.action_embed.kind](cfg.action_embed, action_in_dim) if cfg.act_cond else None
    d_e = action_embed.out_dim if action_embed is not None else 0
    aggregator = AGGREGATORS[cfg.aggregator.kind](cfg.aggregator, encoder.out_dim + d_e)
    predictor = PREDICTORS[cfg.predictor.kind](cfg.predictor, aggregator.out_dim + d_e, encoder.out_dim)
    # LayerNorm has no batch statistics: one call or two give the same embeddings
    calls = cfg.action_embed.calls if cfg.action_embed.kind == "linear_bn" else "joint"
    return SeqJEPA(encoder, action_embed, aggregator, predictor, action_calls=calls,
                   released_last="action" if views_kind == "quat" else "zero")


def build_parts(cfg: RunConfig, sampler: ViewSampler, device: torch.device) -> tuple[SeqJEPA, nn.Module, OnlineProbes]:
    """Model, target and online probes sized to the sampler's actions and classes, on `device`.

    Seeds torch with `train.seed` first, so every call gives the run's initial weights: `lab eval`
    builds the untrained twin this way. Local learning (`objective.local.enabled`) wraps the
    encoder for stop-gradient between stages and adds the stages' light predictors as
    `model.local`, so the optimiser, the checkpoint and the evaluation's rebuilt model all include
    them; the target then copies the wrapped encoder.
    """
    torch.manual_seed(cfg.train.seed)
    model = build_seqjepa(cfg.model, sampler.action_dim, cfg.data.views.kind)
    if cfg.objective.local.enabled:
        local = cfg.objective.local
        model.encoder = BlockwiseEncoder(model.encoder, local.blocks)
        model.local = LocalObjective(model.encoder.block_dims, sampler.action_dim, local.hidden, local.anti_collapse,
                                     local.weight, local.eps_sq, local.center_target)
    model = model.to(device)
    target = TARGETS[cfg.objective.target.kind](cfg.objective.target, model.encoder).to(device)
    probes = OnlineProbes(model.encoder.out_dim, model.aggregator.out_dim, sampler.num_classes, sampler.action_dim,
                          hidden=cfg.train.probe_hidden)
    return model, target, probes.to(device)
