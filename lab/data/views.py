"""Sequences of M+1 views with relative actions, generated batched on the dataset's device.

`ViewSampler.sample(idx, num_views)` returns views (B, V, 3, H, W) and actions (B, V−1, A),
where actions[:, i] takes view i to view i+1 (the last one is what the predictor is told).
There is no per-sample Python anywhere here: one kornia call or one `grid_sample` transforms
the whole batch. Random view parameters come from the sampler's own generator, seeded from the
global RNG when the sampler is built (kornia's augmentations draw from the global RNG), so a
`torch.manual_seed` before building makes the batches reproducible; inside `with sampler.seeded(s)`
the views are a function of `s` alone (what evaluation uses). `shard(rank, world)` makes
a sampler serve one data-parallel rank (see `ViewSampler.shard`).

Kinds:
- rotation: planar rotation by θ ~ U(±rotation_deg); action (sin Δθ, cos Δθ), 2-d.
- affine:   rotation, scale, translation and per-channel colour gain (`views.factors` picks which);
            action up to 8-d (see actions.py).
- augment:  the EquiMod protocol with kornia; action crop(4) + jitter(4) + blur σ(1) = 9-d,
            context and target views drawn from different pipelines as in the official code.
- quat:     3DIEBench: M+1 distinct renders of one object; action q(R_i⁻¹ R_{i+1}), 4-d.
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import kornia.augmentation as K
import torch
import torch.nn.functional as F

from lab.config import ViewsConfig
from lab.data.actions import affine_actions, consecutive_diff, relative_quats
from lab.data.base import ImageDataset
from lab.data.disk.cache import DiskImages


@dataclass
class Sequence:
    views: torch.Tensor  # (B, V, 3, H, W) float, normalised per channel
    actions: torch.Tensor  # (B, V−1, A) relative actions between consecutive views
    labels: torch.Tensor  # (B,) class ids


class ViewSampler(ABC):
    """Turns sample indices into view sequences, batched on its device.

    In-memory images are held on the device; streamed ones (`DiskImages`) stay on disk and
    only the rows of a batch are read and moved to the device (pinned first on CUDA).
    """

    action_names: list[str]  # one name per action dimension, for tables and plots
    CPU_CHUNK = 64
    STATS_IMAGES, STATS_CHUNK = 4096, 512

    def __init__(self, ds: ImageDataset, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.streamed = isinstance(ds.images, DiskImages)
        self.images = ds.images if self.streamed else ds.images.to(self.device)
        self.labels = ds.labels.to(self.device)
        self.num_classes = ds.num_classes
        self.mean, self.std = self._channel_stats()
        self.rank, self.world = 0, 1
        # View parameters come from this generator, seeded from the global RNG once: what a
        # `torch.manual_seed` before construction makes reproducible, and alike on every rank.
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(torch.randint(0, 2**62, (1,))))

    def _channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std (1, 3, 1, 1) over the first STATS_IMAGES images, read in chunks."""
        total = torch.zeros(2, 3, dtype=torch.float64, device=self.device)
        count = 0
        for start in range(0, min(len(self.images), self.STATS_IMAGES), self.STATS_CHUNK):
            rows = torch.arange(start, min(start + self.STATS_CHUNK, len(self.images), self.STATS_IMAGES))
            x = self._to_float(self._gather(rows.to(self.device))).double()
            total += torch.stack([x.sum(dim=(0, 2, 3)), x.pow(2).sum(dim=(0, 2, 3))])
            count += x.shape[0] * x.shape[2] * x.shape[3]
        mean = total[0] / count
        var = (total[1] - count * mean**2) / max(count - 1, 1)
        return mean.float().view(1, 3, 1, 1), var.clamp_min(0).sqrt().float().clamp_min(1e-3).view(1, 3, 1, 1)

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 images (n, C, H, W) on the device for image indices idx (n,)."""
        if not self.streamed:
            return self.images[idx]
        rows = self.images[idx]  # read from disk on the host
        return rows.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else rows.to(self.device)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def num_samples(self) -> int:
        return self.labels.shape[0]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @staticmethod
    def _to_float(img: torch.Tensor) -> torch.Tensor:
        """uint8 (n, C, H, W) → float (n, 3, H, W) in [0, 1]; grayscale is repeated to RGB."""
        img = img.float() / 255.0
        return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def originals(self, idx: torch.Tensor) -> torch.Tensor:
        """The un-transformed images of samples idx, normalised as the views: (B, 3, H, W)."""
        return self._normalise(self._to_float(self._gather(idx)))

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[ViewSampler]:
        """Views drawn inside depend on `seed` alone, not on what was drawn before: the sampler's
        generator and the global RNG (kornia's augmentations draw from it) are seeded with `seed`,
        and both are restored on exit. Evaluation draws the trained model's and the untrained
        twin's views this way, so both see the same views in every process."""
        saved = self.generator.get_state()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            self.generator.manual_seed(seed)
            try:
                yield self
            finally:
                self.generator.set_state(saved)

    def shard(self, rank: int, world: int) -> None:
        """Data parallel: this sampler serves rank `rank` of `world`. `sample` then takes the rank's
        own indices, and the random view parameters are drawn for the whole global batch (world ×
        the rank's batch, from the generator every rank seeds alike) and this rank's rows kept, so
        the ranks' views together are the views one process would make for the global batch."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0…{world - 1}")
        self.rank, self.world = rank, world

    def sample(self, idx: torch.Tensor, num_views: int) -> Sequence:
        """idx: (B,) sample indices on the device (this rank's, when sharded) → a Sequence of `num_views` views.

        On CPU the batch is made in chunks of `CPU_CHUNK` samples: whole-batch tensors of a few
        MB fall out of cache and made a 256-sample batch 3× slower per view than a 64-sample one
        (measured with `lab bench views`). On GPU the whole batch is one call.
        """
        b = idx.shape[0]
        drawn = self._draw(b * self.world, num_views)
        params = {k: v[self.rank * b : (self.rank + 1) * b] for k, v in drawn.items()}
        if self.device.type != "cpu" or b <= self.CPU_CHUNK:
            return self._render(idx, num_views, params)
        parts = [self._render(idx[start : start + self.CPU_CHUNK], num_views,
                              {k: v[start : start + self.CPU_CHUNK] for k, v in params.items()})
                 for start in range(0, b, self.CPU_CHUNK)]
        return Sequence(*(torch.cat(tensors) for tensors in zip(*(vars(p).values() for p in parts), strict=True)))

    def _rand(self, *shape: int) -> torch.Tensor:
        """U[0, 1) of `shape` from the sampler's own generator (seeded alike on every rank)."""
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _draw(self, n: int, num_views: int) -> dict[str, torch.Tensor]:
        """Random parameters for n samples, each (n, …); none by default (kornia draws its own)."""
        return {}

    @abstractmethod
    def _render(self, idx: torch.Tensor, num_views: int, params: dict[str, torch.Tensor]) -> Sequence:
        """The views of samples idx with their drawn parameters (rows matching idx); see `sample`."""


class AffineViews(ViewSampler):
    """Known geometric and colour transformations of one image, one `grid_sample` per batch.

    Each view draws an angle θ, a scale s, a shift t and per-channel gains g for the enabled
    factors (the others stay at identity); view = gain · (sR(θ)x + t). Actions keep only the
    enabled factors' dimensions.
    """

    _DIMS = {"rotation": ["sin_rot", "cos_rot"], "scale": ["log_scale"], "translate": ["shift_x", "shift_y"],
             "colour": ["log_gain_r", "log_gain_g", "log_gain_b"]}

    def __init__(self, ds: ImageDataset, device: torch.device | str, cfg: ViewsConfig, factors: list[str]) -> None:
        super().__init__(ds, device)
        self.cfg, self.factors = cfg, set(factors)
        self.action_names = [name for factor in self._DIMS if factor in self.factors for name in self._DIMS[factor]]
        all_names = [name for names in self._DIMS.values() for name in names]
        self._keep = torch.tensor([all_names.index(n) for n in self.action_names], device=self.device)

    def _draw(self, n: int, num_views: int) -> dict[str, torch.Tensor]:
        """θ, log s, shift and log gain for n samples × num_views views (zeros for disabled factors)."""
        cfg, v = self.cfg, num_views
        rot = math.radians(cfg.rotation_deg)

        def uniform(factor: str, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
            if factor not in self.factors:
                return torch.zeros(shape, device=self.device)
            return low + (high - low) * self._rand(*shape)

        return {
            "theta": uniform("rotation", (n, v), -rot, rot),
            "log_s": uniform("scale", (n, v), math.log(cfg.scale[0]), math.log(cfg.scale[1])),
            "shift": uniform("translate", (n, v, 2), -2 * cfg.translate, 2 * cfg.translate),  # [-1, 1] coords span 2
            "log_g": uniform("colour", (n, v, 3), math.log(1 - cfg.colour + 1e-3), math.log(1 + cfg.colour)),
        }

    def _render(self, idx: torch.Tensor, num_views: int, params: dict[str, torch.Tensor]) -> Sequence:
        v = num_views
        theta, log_s, shift, log_g = params["theta"], params["log_s"], params["shift"], params["log_g"]
        # Sampling grid: output pixel p reads input pixel A⁻¹(p − t), A = sR(θ), in [-1, 1] coordinates.
        # Written out with broadcasting rather than F.affine_grid, whose K=3 batched matmul made it
        # 4× slower on CPU here; the V grids of a sample are stacked along the height so one
        # grid_sample call reads each source image once (no V-fold copy of the input).
        cos, sin, inv_s = torch.cos(theta), torch.sin(theta), torch.exp(-log_s)  # (B, V)
        size = self.image_size
        axis = (torch.arange(size, device=self.device) * 2 + 1) / size - 1  # pixel centres
        px = (axis.view(1, 1, 1, size) - shift[..., 0, None, None]) * inv_s[..., None, None]  # (B, V, 1, W)
        py = (axis.view(1, 1, size, 1) - shift[..., 1, None, None]) * inv_s[..., None, None]  # (B, V, H, 1)
        c, s_ = cos[..., None, None], sin[..., None, None]
        grid = torch.stack([c * px + s_ * py, -s_ * px + c * py], dim=-1)  # (B, V, H, W, 2)
        img = self._to_float(self._gather(idx))  # (B, 3, H, W)
        out = F.grid_sample(img, grid.flatten(1, 2), mode="bilinear", padding_mode="border", align_corners=False)
        out = out.unflatten(2, (v, size)).transpose(1, 2)  # (B, V, 3, H, W)
        if "colour" in self.factors:
            out = (out * torch.exp(log_g)[..., None, None]).clamp_(0, 1)
        views = (out - self.mean) / self.std
        actions = affine_actions(theta, log_s, shift, log_g).index_select(-1, self._keep)
        return Sequence(views=views, actions=actions, labels=self.labels[idx])


class AugmentViews(ViewSampler):
    """EquiMod-protocol augmentations with kornia; the sampled parameters become the actions.

    Crop (top, left, height, width in pixels; flips happen but are not encoded), colour jitter
    (brightness, contrast, saturation, hue factors; (1, 1, 1, 0) when skipped; grayscale not
    encoded) and blur σ (0 when skipped). Context views blur with p=context_blur_p and never
    solarize; the target blurs with p=target_blur_p and solarizes with p=target_solarize_p.
    """

    action_names = ["crop_top", "crop_left", "crop_h", "crop_w", "brightness", "contrast", "saturation", "hue", "blur_sigma"]

    def __init__(self, ds: ImageDataset, device: torch.device | str, cfg: ViewsConfig, seq_len: int | None = None) -> None:
        """seq_len: M_tr, the context views of a training sequence; with `cfg.normalize_across_views`
        the parameters are normalised over the views a training sequence has (`_normalise_across_views`)."""
        super().__init__(ds, device)
        self.cfg, self.seq_len = cfg, seq_len
        size = self.image_size
        kernel = max(3, 2 * round((size - 10) / 20) + 1)

        def pipeline(blur_p: float, solarize_p: float) -> list[torch.nn.Module]:
            mods = [
                K.RandomResizedCrop((size, size), scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), resample="bicubic"),
                K.RandomHorizontalFlip(),
                K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8),
                K.RandomGrayscale(p=0.2),
                K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=blur_p),
            ]
            return mods + ([K.RandomSolarize(p=solarize_p)] if solarize_p > 0 else [])

        self.context = pipeline(cfg.context_blur_p, 0.0)
        self.target = pipeline(cfg.target_blur_p, cfg.target_solarize_p)

    @staticmethod
    def _run(x: torch.Tensor, mods: list[torch.nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply a pipeline; return images (n, 3, H, W) and parameters (n, 9)."""
        for mod in mods:
            x = mod(x)
        crop, jitter, blur = mods[0]._params, mods[2]._params, mods[4]._params
        src = crop["src"].to(x.device)  # (n, 4, 2) box corners as (x, y)
        top, left = src[:, 0, 1], src[:, 0, 0]
        height, width = src[:, 2, 1] - top + 1, src[:, 2, 0] - left + 1
        on = jitter["batch_prob"].to(x.device).bool()
        factors = torch.stack(
            [jitter[k].to(x.device) for k in ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")], -1
        )
        factors = torch.where(on[:, None], factors, torch.tensor([1.0, 1.0, 1.0, 0.0], device=x.device))
        sigma = blur["sigma"].to(x.device) * blur["batch_prob"].to(x.device) if "sigma" in blur else torch.zeros_like(top)
        params = torch.cat([torch.stack([top, left, height, width], -1), factors, sigma[:, None]], -1)
        return x, params.float()

    def _normalise_across_views(self, params: torch.Tensor) -> torch.Tensor:
        """params (B, V, 9), context views then the target → each parameter divided by its L2 norm over the
        views of a training sequence: the first M_tr context views and the target (all V views when
        V = M_tr + 1, as in training, or when M_tr is not known).

        The released code's `F.normalize(params, dim=1)` spans whatever views a sequence has, so an
        evaluation sequence of max(M_val) + 1 = 9 views divided by a norm over 9 views where training
        divided by one over 4, and its actions came out 0.64–0.71× the training scale (issue 22,
        finding 5). Over the training views, the views 1..M_tr and the target are scaled exactly as in
        training and the extra context views by the same factor."""
        m_tr = self.seq_len if self.seq_len is not None else params.shape[1] - 1
        group = torch.cat([params[:, : min(m_tr, params.shape[1] - 1)], params[:, -1:]], dim=1)
        return params / group.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12)  # F.normalize's eps

    def _render(self, idx: torch.Tensor, num_views: int, params: dict[str, torch.Tensor]) -> Sequence:
        b, m = idx.shape[0], num_views - 1
        img = self._to_float(self._gather(idx))
        ctx, ctx_p = self._run(img.repeat_interleave(m, dim=0), self.context)
        tgt, tgt_p = self._run(img, self.target)
        views = torch.cat([ctx.unflatten(0, (b, m)), tgt[:, None]], dim=1)
        params = torch.cat([ctx_p.unflatten(0, (b, m)), tgt_p[:, None]], dim=1)  # (B, V, 9)
        if self.cfg.normalize_across_views:  # the released code's quirk: L2 over the view axis
            params = self._normalise_across_views(params)
        views = self._normalise(views.flatten(0, 1)).unflatten(0, (b, num_views))
        return Sequence(views=views, actions=consecutive_diff(params), labels=self.labels[idx])


class QuatViews(ViewSampler):
    """3DIEBench: a sample is an object; its views are distinct renders drawn without replacement."""

    action_names = ["q_x", "q_y", "q_z", "q_w"]

    def __init__(self, ds: ImageDataset, device: torch.device | str) -> None:
        if ds.groups is None or "quat" not in ds.latents:
            raise ValueError(f"{ds.name}: 'quat' views need object groups and a 'quat' latent per image")
        super().__init__(ds, device)
        order = torch.argsort(ds.groups, stable=True)
        _, counts = torch.unique_consecutive(ds.groups[order], return_counts=True)
        per = int(counts.min())
        starts = torch.cumsum(counts, 0) - counts
        self.table = order[starts[:, None] + torch.arange(per)].to(self.device)  # (objects, renders)
        self.quat = ds.latents["quat"].to(self.device).float()
        self.labels = self.labels[self.table[:, 0]]

    def _draw(self, n: int, num_views: int) -> dict[str, torch.Tensor]:
        """Which renders: num_views distinct ones per sample, as a random order of the renders."""
        if num_views > self.table.shape[1]:
            raise ValueError(f"{num_views} views asked, but objects have only {self.table.shape[1]} renders")
        return {"choice": self._rand(n, self.table.shape[1]).argsort(dim=1)[:, :num_views]}

    def _render(self, idx: torch.Tensor, num_views: int, params: dict[str, torch.Tensor]) -> Sequence:
        choice = params["choice"]
        img_idx = self.table[idx[:, None], choice]  # (B, V)
        views = self._normalise(self._to_float(self._gather(img_idx.flatten()))).unflatten(0, tuple(img_idx.shape))
        return Sequence(views=views, actions=relative_quats(self.quat[img_idx]), labels=self.labels[idx])


def build_view_sampler(ds: ImageDataset, cfg: ViewsConfig, device: torch.device | str,
                       seq_len: int | None = None) -> ViewSampler:
    """The sampler named by `cfg.kind` over dataset `ds`, holding its images on `device`; seq_len (M_tr)
    lets evaluation's longer sequences normalise augment actions as training did."""
    if cfg.kind in ("rotation", "affine"):
        return AffineViews(ds, device, cfg, ["rotation"] if cfg.kind == "rotation" else cfg.factors)
    if cfg.kind == "augment":
        return AugmentViews(ds, device, cfg, seq_len)
    return QuatViews(ds, device)
