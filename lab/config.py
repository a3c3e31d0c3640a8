"""Run configuration: pydantic models loaded from YAML, with `--set key=value` overrides.

Every section forbids unknown keys, so a typo fails before any training starts with a
message that names the key and its section. Each model part (encoder, action embedding,
aggregator, predictor) and the target is its own sub-config chosen by `kind` (a pydantic
discriminated union), with only the fields that kind uses; `lab.build` turns them into modules.
This module imports nothing from `lab.models`, so the parts never depend on the config.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.errors import LabError
from lab.eval.gates import Gate, GateConfigError, parse_gate


class ConfigError(LabError, ValueError):
    """A config file or override is invalid; the message says which key and how to fix it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ViewsConfig(Section):
    """How the M+1 views of a sample are made, and so what the actions mean."""

    kind: Literal["rotation", "affine", "augment", "quat"] = "rotation"
    factors: list[Literal["rotation", "scale", "translate", "colour"]] = Field(
        ["rotation", "scale", "translate", "colour"], min_length=1,
        description="affine: which transformations vary between views (and so which action dimensions exist)",
    )
    rotation_deg: float = Field(180.0, gt=0, le=180, description="absolute angles drawn from ±this")
    scale: tuple[float, float] = (0.75, 1.25)
    translate: float = Field(0.15, ge=0, le=0.5, description="max shift as a fraction of the image")
    colour: float = Field(0.4, ge=0, le=1, description="per-channel gain drawn from 1±this")
    target_blur_p: float = Field(0.1, ge=0, le=1, description="augment: blur probability on the target view")
    context_blur_p: float = Field(1.0, ge=0, le=1, description="augment: blur probability on context views")
    target_solarize_p: float = Field(0.2, ge=0, le=1, description="augment: solarize probability on the target")
    normalize_across_views: bool = Field(
        False, description="augment: reproduce the released code's F.normalize over the view axis"
    )


class DataConfig(Section):
    name: str = "shapes"
    root: Path | None = Field(None, description="directory holding on-disk datasets (--data-root)")
    seq_len: int = Field(3, ge=1, le=16, description="M_tr: context views per sequence")
    image_size: int = Field(32, ge=8, le=256)
    num_train: int | None = Field(None, ge=16, description="shapes: images generated; others: seeded subset")
    num_test: int | None = Field(None, ge=16)
    seed: int = 0
    stream: Literal["auto", "memory", "disk"] = Field(
        "auto", description="3diebench: read renders per batch from a uint8 disk cache ('disk'), load them ('memory'), "
        "or stream exactly when the split exceeds memory_gib ('auto')",
    )
    memory_gib: float = Field(16.0, gt=0, description="largest split held in memory; above it 'auto' streams from disk")
    cache_dir: Path | None = Field(None, description="where the disk cache is built (default <root>/3DIEBench-cache)")
    views: ViewsConfig = ViewsConfig()


def _kind_shorthand(value: Any) -> Any:
    """`encoder: convnet` means `encoder: {kind: convnet}` (so `--set model.encoder=resnet18` works)."""
    return {"kind": value} if isinstance(value, str) else value


class ConvNetEncoderConfig(Section):
    num_stages: ClassVar[int] = 4  # the stages lab.models.encoders.ConvNet exposes (local.blocks splits them)
    kind: Literal["convnet"] = "convnet"
    width: int = Field(32, ge=4, description="channels of the first block (output 8× this)")
    norm: Literal["batch", "group", "layer"] = Field(
        "batch", description="batch: BatchNorm (the paper's); group / layer: GroupNorm / LayerNorm, no batch statistics (streams)"
    )


class ResNetEncoderConfig(Section):
    """`resnet18_cifar`: 3×3 stride-1 stem, no max-pool (32-px inputs); `resnet18`: ImageNet stem."""

    num_stages: ClassVar[int] = 4  # the stages lab.models.encoders.ResNet18 exposes (local.blocks splits them)
    kind: Literal["resnet18_cifar", "resnet18"] = "resnet18_cifar"
    norm: Literal["batch", "group", "layer"] = Field(
        "batch", description="batch: BatchNorm (the paper's); group / layer: GroupNorm / LayerNorm, no batch statistics (streams)"
    )


EncoderConfig = Annotated[ConvNetEncoderConfig | ResNetEncoderConfig, Field(discriminator="kind")]


class LinearBNActionConfig(Section):
    """Linear (no bias) + BatchNorm1d (affine=False), as in the official code."""

    kind: Literal["linear_bn"] = "linear_bn"
    dim: int = Field(128, ge=1, description="width of the action embedding (each token's action slot)")
    calls: Literal["joint", "released"] = Field(
        "joint", description="training: 'joint' embeds the M actions in one BatchNorm call; 'released' as the "
        "released code: context actions plus a zero last slot (3DIEBench: the last action) in one call, the "
        "predictor's action in its own",
    )


class LinearLNActionConfig(Section):
    """Linear (no bias) + LayerNorm (no affine): per action, no batch statistics (tiny streaming batches)."""

    kind: Literal["linear_ln"] = "linear_ln"
    dim: int = Field(128, ge=1, description="width of the action embedding (each token's action slot)")


ActionEmbedConfig = Annotated[LinearBNActionConfig | LinearLNActionConfig, Field(discriminator="kind")]


class TransformerAggConfig(Section):
    """Post-norm nn.TransformerEncoderLayer stack and a final LayerNorm (the paper's g_φ)."""

    kind: Literal["transformer"] = "transformer"
    layers: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    ffn_mult: int = Field(4, ge=1, description="feed-forward width as a multiple of the token width")
    dropout: float = Field(0.1, ge=0, lt=1)


class CrateAggConfig(Section):
    """CRATE layers: MSSA (one projection per head as q, k and v) + one ISTA step (η, λ), no residual around ISTA.
    A layer holds ~3·d² weights against the transformer's ~(4 + 2·ffn_mult)·d²: compare at equal
    parameters by depth (experiments/step3-crate/README.md)."""

    kind: Literal["crate"] = "crate"
    layers: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    eta: float = Field(0.1, gt=0, description="ISTA step size η")
    lambd: float = Field(0.1, ge=0, description="ISTA sparsity weight λ")


class CrateAlphaAggConfig(CrateAggConfig):
    """CRATE-α layers: MSSA + two ISTA steps on an overcomplete dictionary (d × overcomplete·d),
    a separate decoder and a residual."""

    kind: Literal["crate_alpha"] = "crate_alpha"  # type: ignore[assignment]
    overcomplete: int = Field(4, ge=1, description="dictionary atoms per token dimension")



class ToSTAggConfig(Section):
    """Token Statistics Transformer blocks (TSSA + MLP, pre-LN, LayerScale): linear in the tokens.
    `causal: true` mixes the context in stream order with running statistics, so it can consume
    a stream one view at a time (lab.models.aggregators.tost)."""

    kind: Literal["tost"] = "tost"
    layers: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    mlp_mult: int = Field(4, ge=1, description="MLP width as a multiple of the token width")
    dropout: float = Field(0.0, ge=0, lt=1)
    causal: bool = False
    layerscale: float = Field(1.0, gt=0, description="initial LayerScale γ (ToST: 1.0 for shallow, 1e-5 for deep stacks)")


AggregatorConfig = Annotated[TransformerAggConfig | CrateAggConfig | CrateAlphaAggConfig | ToSTAggConfig,
                             Field(discriminator="kind")]


class MLPPredictorConfig(Section):
    kind: Literal["mlp"] = "mlp"
    hidden: int = Field(1024, description="≤ 0 gives Linear → BN")
    norm: Literal["batch", "layer"] = Field("batch", description="batch: BatchNorm1d (the paper's); layer: LayerNorm (streams)")


PredictorConfig = Annotated[MLPPredictorConfig, Field(discriminator="kind")]

_KIND_SECTIONS = {"encoder", "action_embed", "aggregator", "predictor", "target", "loss"}

# Flat keys of the first config layout, named in the error so an old file is easy to migrate.
_MOVED_MODEL_KEYS = {
    "convnet_width": "model.encoder.width", "action_dim": "model.action_embed.dim",
    "agg_layers": "model.aggregator.layers", "agg_heads": "model.aggregator.heads",
    "agg_ffn_mult": "model.aggregator.ffn_mult", "agg_dropout": "model.aggregator.dropout",
    "pred_hidden": "model.predictor.hidden", "ema_base": "objective.target.base", "ema_final": "objective.target.final",
}


class ModelConfig(Section):
    """One sub-config per part, each chosen by its `kind` (a string alone is the kind with defaults).

    The [AGG] token belongs to the model, not to an aggregator: every aggregator mixes the
    token sequence [AGG], u_1..u_M and the model reads position 0.
    """

    encoder: EncoderConfig = ResNetEncoderConfig()
    action_embed: ActionEmbedConfig = LinearBNActionConfig()
    aggregator: AggregatorConfig = TransformerAggConfig()
    predictor: PredictorConfig = MLPPredictorConfig()
    act_cond: bool = Field(True, description="false: the no-action ablation (tokens and predictor see no actions)")

    @field_validator("encoder", "action_embed", "aggregator", "predictor", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _kind_shorthand(v)


class EMATargetConfig(Section):
    """EMA copy of the encoder; τ follows a per-epoch cosine from `base` to `final`, applied every step."""

    kind: Literal["ema"] = "ema"
    base: float = Field(0.996, ge=0, le=1)
    final: float = Field(1.0, ge=0, le=1)


class StopGradTargetConfig(Section):
    """Teacherless: the online encoder itself under stop-gradient, no EMA copy. Its forward pass on
    the target views uses batch statistics but leaves the online BatchNorm running statistics as they were."""

    kind: Literal["stopgrad"] = "stopgrad"


TargetConfig = Annotated[EMATargetConfig | StopGradTargetConfig, Field(discriminator="kind")]


class CosineLossConfig(Section):
    """1 − cos(ẑ, sg(z̄)), the paper's loss."""

    kind: Literal["cosine"] = "cosine"


class SharpenedLossConfig(Section):
    """Target sharpening (DINO-style, stateless): cross-entropy between softmax((z̄ − batch mean)/target_temp),
    detached, and log-softmax(ẑ/student_temp); a colder target than student sharpens it."""

    kind: Literal["sharpened"] = "sharpened"
    student_temp: float = Field(0.1, gt=0)
    target_temp: float = Field(0.04, gt=0)


LossConfig = Annotated[CosineLossConfig | SharpenedLossConfig, Field(discriminator="kind")]


class RateConfig(Section):
    """Coding-rate term: loss −= λ·R̃, R̃ = R(Z; ε²) / R_max(n, d) ∈ (0, 1] with R_max = (k/2)·log(1 + d/(kε²)),
    k = min(n, d), per context view's batch of features (averaged over views; every rank's rows under data
    parallel), on z, z_AGG or both (lab/losses/coding_rate.py, lab/losses/objective.py)."""

    weight: float = Field(0.0, ge=0, description="λ; 0 turns the term off")
    eps_sq: float = Field(0.5, gt=0, description="ε² (not ε), as MCR² and SimDINO pass it")
    features: Literal["z", "z_agg", "both"] = Field("z", description="which features the rate is computed on")
    warmup_epochs: float = Field(0.0, ge=0, description="λ ramps linearly from 0 over these epochs")


class LocalConfig(Section):
    """Blockwise (local) learning: every encoder stage trains on its own JEPA loss with
    stop-gradient between stages, a light predictor per stage, and an anti-collapse term
    (lab.train.local). Off: end-to-end backpropagation, as in the paper."""

    enabled: bool = False
    hidden: int = Field(128, ge=1, description="hidden width of each stage's light predictor")
    anti_collapse: Literal["rate", "varcov"] = Field(
        "varcov", description="rate: coding rate of normalised pooled features; varcov: LPL variance + covariance"
    )
    weight: float = Field(0.05, ge=0, description="weight of the anti-collapse term")
    eps_sq: float = Field(0.5, gt=0, description="ε² of the coding rate")
    center_target: bool = Field(
        False, description="predict the target block's features minus their batch mean: the mean direction that "
        "every pooled ReLU feature shares no longer lowers 1 − cos, and a collapsed block scores the worst loss"
    )
    blocks: list[int] | None = Field(
        None, description="encoder stages per block, bottom to top (e.g. [2, 2]): stop-gradient between blocks, every "
        "block but the top on its own local loss, the top one through the aggregator; null: one block per stage"
    )

    @field_validator("blocks")
    @classmethod
    def _two_blocks_or_more(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) < 2 or min(v) < 1):
            raise ValueError(f"local.blocks {v} needs two or more blocks of at least one stage each, e.g. [2, 2] "
                             "(one block is end-to-end training: set local.enabled false)")
        return v


class ObjectiveConfig(Section):
    loss: LossConfig = CosineLossConfig()
    target: TargetConfig = EMATargetConfig()
    symmetric: bool = Field(False, description="also predict x_1 from the reversed sequence x_{M+1}..x_2 (inverse actions); average")
    rate: RateConfig = RateConfig()
    local: LocalConfig = LocalConfig()

    @field_validator("target", "loss", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _kind_shorthand(v)


class OptimConfig(Section):
    """`paper`: AdamW, wd on ≥2-D weights only, warmup then cosine to final_lr.
    `released`: what hafezgh/seq-jepa main_transformed_views.py actually does: Adam, no weight
    decay, warmup then a constant lr (its cosine schedule is overwritten every epoch)."""

    style: Literal["paper", "released"] = "paper"
    lr: float = Field(4e-4, gt=0)
    weight_decay: float = Field(1e-3, ge=0)
    warmup_epochs: float = Field(20, ge=0)
    start_lr: float = Field(1e-5, ge=0)
    final_lr: float = Field(1e-5, ge=0)
    probe_lr: float = Field(1e-3, gt=0, description="online probes: own param group, no weight decay")


class TrainConfig(Section):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(512, ge=2, description="the global batch; with --nproc N each process takes batch_size / N")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (smoke runs)")
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    bf16: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA")
    compile: bool = Field(False, description="torch.compile the encoder on CUDA")
    sync_bn: bool = Field(True, description="data parallel on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)")
    probe_hidden: int = Field(1024, ge=1, description="hidden width of the online action-probe MLPs")
    log_every: int = Field(10, ge=1)
    ckpt_every: int = Field(1, ge=1, description="epochs between checkpoints")
    freeze_encoder: bool = Field(
        False, description="the frozen-random-encoder control arm: the encoder keeps its initial weights, its BatchNorm "
        "statistics re-estimated on training sequences as the evaluation's twin's and then fixed; the action embedding, "
        "aggregator and predictor train (lab.train.loop.freeze_encoder)",
    )


class EvalConfig(Section):
    m_val: list[int] = Field([1, 3, 5, 8], description="context lengths for the z_AGG probe; M_tr and 5 (the "
                             "released code's headline) are always added")
    num_train: int | None = Field(None, ge=16, description="cap on probe-train samples")
    num_test: int | None = Field(None, ge=16)
    batch_size: int = Field(256, ge=2, description="feature extraction batch")
    probe_max_iter: int = Field(1000, ge=10, description="lbfgs iterations of the logistic-regression probes")
    equi_head: Literal["mlp", "linear"] = Field("mlp", description="equivariance regressor (SIE deep-end MLP or ridge)")
    equi_hidden: int = Field(1024, ge=1)
    equi_epochs: int = Field(300, ge=1, description="MLP regressor epochs (paper: 300)")
    enc_probe_input: Literal["view1", "original"] = Field(
        "view1", description="linacc_enc on view 1's z, or ('original', as the released code) on the un-augmented image"
    )
    r2_heads: Literal["joint", "per_factor"] = Field(
        "joint", description="augment: one regressor for all 9 action dims, or the released code's per-factor heads "
        "(MLP crop, MLP jitter, linear blur) reported as eval.r2_equi_group@crop|jitter|blur",
    )
    fresh_view_probe: bool = Field(
        False, description="also train the released code's offline probe: linear on z_AGG, AdamW on views drawn "
        "afresh every epoch (eval.linacc_agg_fresh)",
    )
    fresh_epochs: int = Field(300, ge=1, description="epochs of the fresh-view probe (released code: 300)")
    fresh_lr: float = Field(4e-4, gt=0)
    fresh_weight_decay: float = Field(1e-3, ge=0)
    control_bn_sequences: int = Field(
        1024, ge=0, description="training sequences (of M_tr context views) the untrained twin's BatchNorm running "
        "statistics are re-estimated on before it is probed, no gradient step (lab.eval.controls); 0 keeps its "
        "initial statistics (mean 0, variance 1: the handicapped control of issue 22)",
    )
    seed: int = 1234
    at_end: bool = Field(True, description="`lab train` evaluates the run when training finishes")
    copy_to: Path | None = Field(None, description="also write results.json here (e.g. the experiment folder)")
    stages: bool = Field(False, description="per-stage probes (accuracy, R²) of the encoder, trained and untrained")

    @field_validator("m_val")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or min(v) < 1:
            raise ValueError("m_val needs at least one context length, each ≥ 1")
        return sorted(set(v))


_DRIFTABLE = ("rotation_deg", "scale", "translate", "colour")


class StreamConfig(Section):
    """`lab stream`: one pass over a non-IID stream instead of epochs (lab.train.stream).

    Class-incremental tasks arrive one after another in small batches, each sample once; the
    view distribution can drift; a replay buffer and distillation from the previous task's
    encoder (CaSSLe-style, through the JEPA cosine loss) fight forgetting."""

    tasks: int = Field(4, ge=1, description="class-incremental tasks (the classes split in a seeded order); 1 = no split")
    order: Literal["tasks", "iid"] = Field(
        "tasks", description="tasks: class-incremental, task after task; iid: the null stream — the same samples "
        "in one shuffled order, cut into segments as long as the tasks (no shift; its forgetting is the noise floor)")
    batch_size: int = Field(16, ge=2, description="samples arriving per batch, and samples in every optimiser step "
                            "of every arm (replay replaces part of a step's batch, never adds to it)")
    iterations: int = Field(1, ge=1, description="optimiser steps on each incoming batch before the next arrives")
    replay: Literal["none", "fifo", "reservoir", "minred"] = "none"
    buffer_size: int = Field(256, ge=1, description="replay buffer capacity (sample indices)")
    replay_batch: int = Field(8, ge=1, description="fifo / reservoir: of a step's batch_size samples, how many come "
                              "from the buffer (the rest from the incoming batch); minred draws the whole step from its buffer")
    eval_bn: Literal["reestimate", "running"] = Field(
        "reestimate", description="reestimate: each evaluation probes a copy whose BatchNorm statistics are "
        "re-estimated on the eval-train split's sequences, every task alike (lab.eval.controls; the untrained row too); "
        "running: the training running statistics (the last task's without replay — the unfair evaluation of issue 22)")
    noise_evals: int = Field(0, ge=0, description="extra evaluations of the final network with other probe seeds: "
                             "the probe-noise floor of forgetting (noise.forgetting); tasks − 1 gives the full statistic")
    distill: float = Field(0.0, ge=0, description="weight of distillation from the previous task's encoder; 0 = off")
    drift: dict[str, list] = Field({}, description="view field → [start, end], interpolated along the stream")
    task_tint: list[tuple[float, float, float]] | None = Field(
        None, description="per task [r, g, b] gains on its classes' images, in every split (a colour domain per task); "
        "a negative gain inverts the channel")
    warmup_steps: int = Field(10, ge=0)
    evals_per_task: int = Field(2, ge=1, description="points of the accuracy-vs-samples curve per task")

    @field_validator("drift")
    @classmethod
    def _drift(cls, v: dict[str, list]) -> dict[str, list]:
        for key, pair in v.items():
            if key not in _DRIFTABLE:
                raise ValueError(f"drift of {key!r} is not supported; drift one of {', '.join(_DRIFTABLE)}")
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"drift.{key} must be [start, end]")
            for value in pair:
                ViewsConfig(**{key: value})  # each end must be a valid setting
        return v

    @model_validator(mode="after")
    def _tint_per_task(self) -> StreamConfig:
        if self.task_tint is not None and len(self.task_tint) != self.tasks:
            raise ValueError(f"task_tint has {len(self.task_tint)} entries for {self.tasks} tasks; give one [r, g, b] per task")
        return self

    @model_validator(mode="after")
    def _equal_steps(self) -> StreamConfig:
        if self.replay in ("fifo", "reservoir") and self.replay_batch >= self.batch_size:
            raise ValueError(f"replay_batch ({self.replay_batch}) must be below batch_size ({self.batch_size}): replayed "
                             "samples replace part of each step's batch, so every arm trains on batch_size samples per step")
        if self.replay == "minred" and self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size ({self.buffer_size}) must be at least batch_size ({self.batch_size}): "
                             "MinRed draws every step's batch from its buffer")
        return self


class LoggingConfig(Section):
    wandb: bool = True
    project: str = "seq-jepa-lab"
    entity: str | None = None
    runs_dir: Path = Path("runs")
    progress: bool = True


class RunConfig(Section):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="run directory runs/<name>/")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    gates: list[Gate] = []
    logging: LoggingConfig = LoggingConfig()
    stream: StreamConfig | None = Field(None, description="streaming / continual run (lab stream); none for lab train")

    @field_validator("gates", mode="before")
    @classmethod
    def _gates(cls, v: object) -> list[Gate]:
        if not isinstance(v, list):
            raise ValueError("gates must be a list of {key, op, value} or 'KEY OP VALUE' strings")
        try:
            return [parse_gate(g, f"gate #{i + 1}") for i, g in enumerate(v)]
        except GateConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.data.views.kind == "quat" and self.data.name != "3diebench":
            raise ValueError("data.views.kind 'quat' needs data.name '3diebench' (it reads rotation latents)")
        if self.eval.enc_probe_input == "original" and self.data.views.kind == "quat":
            raise ValueError("eval.enc_probe_input 'original' needs transformed views: 3DIEBench renders have no original")
        if self.eval.r2_heads == "per_factor" and self.data.views.kind != "augment":
            raise ValueError("eval.r2_heads 'per_factor' groups the augment actions (crop, jitter, blur); "
                             "use data.views.kind 'augment' or r2_heads 'joint'")
        if self.objective.local.enabled and (self.objective.symmetric or self.objective.target.kind != "ema"):
            raise ValueError("objective.local needs the EMA target and no symmetric loss (its stages' targets are the EMA copy's)")
        if self.objective.local.enabled and self.train.freeze_encoder:
            raise ValueError("train.freeze_encoder leaves nothing for objective.local to train: turn one of them off")
        blocks, stages = self.objective.local.blocks, self.model.encoder.num_stages
        if self.objective.local.enabled and blocks is not None and sum(blocks) != stages:
            raise ValueError(f"objective.local.blocks {blocks} covers {sum(blocks)} stages; the {self.model.encoder.kind} "
                             f"encoder has {stages}: give stages per block summing to {stages}, e.g. [2, 2]")
        if self.stream is not None and self.stream.drift and self.data.views.kind not in ("rotation", "affine"):
            raise ValueError("stream.drift needs data.views.kind rotation or affine (their settings are read per batch)")
        return self

    @property
    def run_dir(self) -> Path:
        return self.logging.runs_dir / self.name

    def digest(self) -> str:
        """Stable hash of the training-relevant config (12 hex chars)."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"logging", "gates", "eval"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _model_path(loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Field names in a pydantic error location (union tags and list indices dropped), and the
    section class that holds the last name (None when unknown)."""
    names: list[str] = []
    current: Any = RunConfig  # the section the next part is a field of; a list while a union's tag is pending
    holder = None
    for part in loc:
        if not isinstance(part, str):
            continue
        if isinstance(current, list):  # the union's tag picks the member
            current = next((m for m in current if m.model_fields["kind"].default == part), None)
            continue
        names.append(part)
        holder = current
        field = current.model_fields.get(part) if current is not None else None
        members = _union_members(field.annotation) if field is not None else []
        current = members[0] if len(members) == 1 else (members or None)
    return names, holder


def _union_members(annotation: Any) -> list[type[BaseModel]]:
    """The section classes of a field annotation: [cls] for a section, its members for a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    args = getattr(annotation, "__args__", ())
    found: list[type[BaseModel]] = []
    for arg in args:
        found += _union_members(arg)
    return found


def _describe(err: dict) -> str:
    names, holder = _model_path(err["loc"])
    if err["type"] == "extra_forbidden":
        key, section = names[-1], ".".join(names[:-1]) or "top level"
        moved = _MOVED_MODEL_KEYS.get(key) if section in ("model", "objective") else None
        if moved:
            return f"key {key!r} in section {section!r} has moved: use {moved}"
        allowed = f"; allowed keys: {', '.join(holder.model_fields)}" if holder is not None else ""
        return f"unknown key {key!r} in section {section!r}{allowed}"
    if err["type"] == "missing":
        return f"missing required key {names[-1]!r} in section {'.'.join(names[:-1]) or 'top level'!r}"
    if err["type"] == "union_tag_invalid":
        tags = err["ctx"]["expected_tags"]
        return f"{'.'.join(names)}: unknown kind {err['ctx']['tag']!r}; choose one of {tags}"
    if err["type"] == "union_tag_not_found":
        return f"{'.'.join(names)}: needs a 'kind' (or just the kind's name as a string)"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{'.'.join(names)}: {msg} (got {err.get('input')!r})"


def parse_config(raw: dict) -> RunConfig:
    """Validate a config dict; raise ConfigError listing every bad key."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None


def apply_override(raw: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (3, true, [1,2])."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. --set train.epochs=5")
    dotted, value = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if isinstance(child, str) and part in _KIND_SECTIONS:  # `encoder: convnet` then --set model.encoder.width=8
            child = node[part] = {"kind": child}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(value)


def load_config(path: Path | str, overrides: list[str] = ()) -> RunConfig:
    """Read YAML, apply `--set` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data, model, …) at top level")
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse_config(raw)


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
