"""Pure-torch NF4 (QLoRA paper, arXiv 2305.14314 §3): the test oracle for bitsandbytes' 4-bit quantisation.

Written by hand on purpose: an independent implementation is what lets the tests check bitsandbytes'
codebook, codes and round-trip error rather than compare the library with itself.
"""

from __future__ import annotations

import torch

# The extreme quantile: the mean of the two choices 1 - 1/(2·15) and 1 - 1/(2·16) (15 and 16 levels),
# which keeps Φ⁻¹ finite at the ends while spreading the levels over the normal's mass.
OFFSET = (1 - 1 / 30 + 1 - 1 / 32) / 2


def codebook() -> torch.Tensor:
    """The 16 NF4 levels in [-1, 1], ascending, with an exact zero: 7 negative, 0, 8 positive. [16] float32."""
    pos = torch.special.ndtri(torch.linspace(OFFSET, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -torch.special.ndtri(torch.linspace(OFFSET, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([neg, torch.zeros(1, dtype=torch.float64), pos]).sort().values
    return (levels / levels.abs().max()).float()


def quantize(w: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Absmax-scale `w` per block of `blocksize` and map each value to the nearest level.

    w: any shape with numel divisible by blocksize. Returns codes uint8 [numel] (0..15, index into
    codebook()) and absmax float32 [numel / blocksize].
    """
    flat = w.detach().float().reshape(-1)
    if flat.numel() % blocksize:
        raise ValueError(f"{flat.numel()} values do not split into blocks of {blocksize}")
    blocks = flat.view(-1, blocksize)
    absmax = blocks.abs().amax(dim=1)
    scaled = blocks / absmax.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    levels = codebook()
    midpoints = (levels[1:] + levels[:-1]) / 2  # nearest level = how many midpoints lie below
    codes = torch.bucketize(scaled, midpoints)
    return codes.reshape(-1).to(torch.uint8), absmax


def dequantize(codes: torch.Tensor, absmax: torch.Tensor, shape: torch.Size, blocksize: int = 64) -> torch.Tensor:
    """Inverse of quantize: codebook()[codes] × the block's absmax, reshaped to `shape`."""
    values = codebook()[codes.long()].view(-1, blocksize) * absmax[:, None]
    return values.reshape(shape)


def pack(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte, first code in the high nibble (bitsandbytes' layout): uint8 [numel / 2]."""
    pairs = codes.view(-1, 2)
    return (pairs[:, 0] << 4) | pairs[:, 1]


def bits_per_param(blocksize: int = 64, double_quant: bool = False, dq_blocksize: int = 256) -> float:
    """Storage per weight: 4 bits + the absmax constants (fp32 per block, or 8-bit per block plus one
    fp32 per `dq_blocksize` blocks with double quantisation)."""
    if double_quant:
        return 4 + 8 / blocksize + 32 / (blocksize * dq_blocksize)
    return 4 + 32 / blocksize
