"""Per-sample baselines that do what the released seq-JEPA code does, for `lab bench` to time.

Written from the released code's behaviour (hafezgh/seq-jepa `datasets.py`), with PIL on
uint8 images because torchvision does not import here; torchvision's PIL path calls these
same PIL operations:
- `CifarStyleSequences`: `CIFAR100_aug.__getitem__`: the uint8 image → PIL; the un-augmented
  image (resize 32, to tensor, normalise); M context views (random resized crop 0.2–1 with
  ratio 3/4–4/3, bicubic, flip p .5; colour jitter p .8 (.4, .4, .2, .1) in random order;
  grayscale p .2; blur σ∈[0.1, 2] p 1; no solarize) and one target view (blur p .1, solarize
  p .2), each to tensor and normalised, with its 9 parameters.
- `IEBenchStyleSequences`: `Dataset_3DIEBench_MultipleViews.__getitem__`: M+1 distinct
  renders chosen per object; each JPEG opened, converted to RGB, resized (bilinear), to
  tensor, normalised; its latent `.npy` read, Euler → quaternion with scipy, relative
  rotations q(R_i⁻¹ R_{i+1}) with scipy.
Both are torch `Dataset`s, so `DataLoader(num_workers=N)` runs them as the released code does.
They are baselines for timing only; training uses `lab.data.views`.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from scipy.spatial.transform import Rotation
from torch.utils.data import Dataset

CIFAR_MEAN, CIFAR_STD = np.array([0.5071, 0.4867, 0.4408]), np.array([0.2675, 0.2565, 0.2761])
IEBENCH_MEAN, IEBENCH_STD = np.array([0.5016, 0.5037, 0.5060]), np.array([0.1030, 0.0999, 0.0969])


def to_normalised_tensor(img: Image.Image, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """ToTensor + Normalize: PIL RGB → (3, H, W) float32."""
    x = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(((x - mean) / std).astype(np.float32).transpose(2, 0, 1))


def _crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (top, left, h, w): ten tries at a random area and aspect, else the centre."""
    area = width * height
    for _ in range(10):
        target = area * random.uniform(*scale)
        aspect = math.exp(random.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return random.randint(0, height - h), random.randint(0, width - w), h, w
    side = min(width, height)
    return (height - side) // 2, (width - side) // 2, side, side


def _adjust_hue(img: Image.Image, factor: float) -> Image.Image:
    """Hue shift through HSV, as torchvision's PIL adjust_hue."""
    h, s, v = img.convert("HSV").split()
    shifted = (np.asarray(h, dtype=np.int16) + int(factor * 255)) % 256
    return Image.merge("HSV", (Image.fromarray(shifted.astype(np.uint8), "L"), s, v)).convert("RGB")


def augment_view(img: Image.Image, size: int, blur_p: float, solarize_p: float) -> tuple[Image.Image, torch.Tensor]:
    """One EquiMod-protocol view and its 9 parameters (crop top, left, h, w; jitter b, c, s, h; blur σ)."""
    top, left, h, w = _crop_box(*img.size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
    out = img.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BICUBIC)
    if random.random() < 0.5:
        out = ImageOps.mirror(out)
    factors = [1.0, 1.0, 1.0, 0.0]
    if random.random() < 0.8:
        factors = [random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(0.8, 1.2), random.uniform(-0.1, 0.1)]
        ops = [lambda x: ImageEnhance.Brightness(x).enhance(factors[0]), lambda x: ImageEnhance.Contrast(x).enhance(factors[1]),
               lambda x: ImageEnhance.Color(x).enhance(factors[2]), lambda x: _adjust_hue(x, factors[3])]
        for i in torch.randperm(4).tolist():
            out = ops[i](out)
    if random.random() < 0.2:
        out = out.convert("L").convert("RGB")
    sigma = 0.0
    if random.random() < blur_p:
        sigma = random.uniform(0.1, 2.0)
        out = out.filter(ImageFilter.GaussianBlur(radius=sigma))
    if random.random() < solarize_p:
        out = ImageOps.solarize(out, threshold=128)
    return out, torch.tensor([top, left, h, w, *factors, sigma], dtype=torch.float32)


class CifarStyleSequences(Dataset):
    """images (N, 3, S, S) uint8 → (views (V, 3, S, S), params (V, 9), label, original (3, S, S))."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_views: int) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC uint8, as CIFAR's `data`
        self.labels, self.num_views = labels.tolist(), num_views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
        img = Image.fromarray(self.images[i])
        size = img.size[0]
        original = to_normalised_tensor(img.resize((size, size), Image.Resampling.BILINEAR), CIFAR_MEAN, CIFAR_STD)
        views, params = [], []
        for v in range(self.num_views):
            target = v == self.num_views - 1
            out, p = augment_view(img, size, blur_p=0.1 if target else 1.0, solarize_p=0.2 if target else 0.0)
            views.append(to_normalised_tensor(out, CIFAR_MEAN, CIFAR_STD))
            params.append(p)
        return torch.stack(views), torch.stack(params), self.labels[i], original


class IEBenchStyleSequences(Dataset):
    """3DIEBench object folders → (views (V, 3, S, S), quaternions (V, 4), relative (V−1, 4), label)."""

    def __init__(self, objects: list[Path], labels: list[int], num_views: int, size: int, renders: int = 50) -> None:
        self.objects, self.labels, self.num_views, self.size, self.renders = objects, labels, num_views, size, renders

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        chosen = np.random.choice(self.renders, self.num_views, replace=False)
        views, rotations = [], []
        for v in chosen:
            with open(self.objects[i] / f"image_{v}.jpg", "rb") as f:
                img = Image.open(f).convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
            views.append(to_normalised_tensor(img, IEBENCH_MEAN, IEBENCH_STD))
            latent = np.load(self.objects[i] / f"latent_{v}.npy").astype(np.float32)
            rotations.append(Rotation.from_euler("xyz", latent[:3]))
        quats = torch.tensor(np.stack([r.as_quat() for r in rotations]), dtype=torch.float32)
        relative = torch.tensor(np.stack([(a.inv() * b).as_quat() for a, b in zip(rotations, rotations[1:])]),
                                dtype=torch.float32)
        return torch.stack(views), quats, relative, self.labels[i]
