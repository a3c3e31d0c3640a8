"""CRATE aggregators (Yu et al. 2023, arXiv 2306.01129; CRATE-α: Yang et al. 2024, arXiv 2405.20299).

Each layer is one step of sparse rate reduction on the tokens Z (B, T, d):

    compression   Z ← Z + MSSA(LN(Z)),  MSSA = to_out ∘ concat_k[ U_kᵀZ · softmax((U_kᵀZ)ᵀ(U_kᵀZ) / √p) ]
                  with one projection U_k per head serving as query, key and value;
    sparsify      H = LN(Z), then
      crate:      Z ← ReLU(H + η·Dᵀ(H − D H) − η·λ)                    (one ISTA step, D: d × d, no residual)
      crate_alpha: A₁ = ReLU(η·DᵀH − ηλ), A₂ = ReLU(A₁ − η·Dᵀ(D A₁ − H) − ηλ),
                  Z ← Z + D₁ A₂                                        (D, D₁: d × C·d overcomplete, residual)

A final LayerNorm follows the last layer, as in the transformer aggregator; no positional
embedding. `layer_stats` reports, per layer, the sparsity of the ISTA output (fraction of exact
zeros) and the coding rate of the tokens in each head's subspace.

Initialisation and biases follow the official code (Ma-Lab-Berkeley/CRATE `model/crate.py`;
UCSC-VLAA/CRATE-alpha `torch_inference/model/crate_alpha.py`): the dictionaries D (and D₁) use
`kaiming_uniform_` with its default a = 0, bound √(6 / fan_in), fan_in = the dictionary's second
dimension (d for CRATE, C·d for CRATE-α); MSSA's output projection has a bias in CRATE and none in
CRATE-α. Before issue 22 (finding 9) the dictionaries used a = √5 (bound √(1 / fan_in), 2.45×
smaller) and neither output projection had a bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lab.losses.coding_rate import coding_rate


def init_dictionary(dictionary: nn.Parameter) -> nn.Parameter:
    """The official CRATE / CRATE-α initialisation: kaiming_uniform_ with a = 0 (bound √(6 / fan_in))."""
    nn.init.kaiming_uniform_(dictionary, a=0.0)
    return dictionary


class MSSA(nn.Module):
    """Multi-head subspace self-attention: U_[K]ᵀ as one bias-free projection shared by q, k and v;
    the output projection has a bias when `out_bias` (CRATE: yes; CRATE-α: no)."""

    def __init__(self, dim: int, heads: int, out_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"CRATE width {dim} is not divisible by {heads} heads; change model.aggregator.heads")
        self.heads, self.head_dim = heads, dim // heads
        self.proj = nn.Linear(dim, dim, bias=False)  # [U_1 … U_K]ᵀ
        self.to_out = nn.Linear(dim, dim, bias=out_bias)

    def head_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d) → (B, K, T, p): the tokens in each head's subspace, U_kᵀ z."""
        return self.proj(x).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.head_tokens(x)
        attn = torch.softmax(w @ w.transpose(-1, -2) * self.head_dim**-0.5, dim=-1)
        return self.to_out((attn @ w).transpose(1, 2).flatten(2))


class ISTA(nn.Module):
    """One non-negative ISTA step on min λ‖A‖₁ + ½‖H − D A‖² started at A = H (CRATE). (…, d) → (…, d)."""

    def __init__(self, dim: int, eta: float, lambd: float) -> None:
        super().__init__()
        self.dictionary = init_dictionary(nn.Parameter(torch.empty(dim, dim)))
        self.eta, self.lambd = eta, lambd

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        d = self.dictionary
        residual = h - h @ d.T  # H − D H
        return F.relu(h + self.eta * residual @ d - self.eta * self.lambd)


class OvercompleteISTA(nn.Module):
    """CRATE-α: two ISTA steps from zero on an overcomplete D (d × C·d), decoded by a separate D₁.
    (…, d) → (…, d), the decoded update (the caller adds the residual); `code` gives the sparse A₂."""

    def __init__(self, dim: int, ratio: int, eta: float, lambd: float) -> None:
        super().__init__()
        self.dictionary = init_dictionary(nn.Parameter(torch.empty(dim, ratio * dim)))
        self.decoder = init_dictionary(nn.Parameter(torch.empty(dim, ratio * dim)))
        self.eta, self.lambd = eta, lambd

    def code(self, h: torch.Tensor) -> torch.Tensor:
        d, shrink = self.dictionary, self.eta * self.lambd
        a = F.relu(self.eta * h @ d - shrink)
        return F.relu(a - self.eta * (a @ d.T - h) @ d - shrink)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.code(h) @ self.decoder.T


class CrateLayer(nn.Module):
    def __init__(self, dim: int, heads: int, eta: float, lambd: float, overcomplete: int | None) -> None:
        super().__init__()
        self.norm_attn, self.norm_ista = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mssa = MSSA(dim, heads, out_bias=overcomplete is None)
        self.ista = ISTA(dim, eta, lambd) if overcomplete is None else OvercompleteISTA(dim, overcomplete, eta, lambd)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, d) → (new tokens, the sparse code of this layer)."""
        x = x + self.mssa(self.norm_attn(x))
        h = self.norm_ista(x)
        if isinstance(self.ista, OvercompleteISTA):
            code = self.ista.code(h)
            return x + code @ self.ista.decoder.T, code
        out = self.ista(h)
        return out, out


class CrateAggregator(nn.Module):
    """`layers` CRATE (overcomplete=None) or CRATE-α (overcomplete=C) layers and a final LayerNorm.

    tokens: (B, T, dim) → (B, T, dim)
    """

    def __init__(self, dim: int, layers: int = 3, heads: int = 4, eta: float = 0.1, lambd: float = 0.1,
                 overcomplete: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrateLayer(dim, heads, eta, lambd, overcomplete) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens
        for layer in self.layers:
            x, _ = layer(x)
        return self.norm(x)

    @torch.no_grad()
    def layer_stats(self, tokens: torch.Tensor, eps_sq: float = 0.5) -> list[dict[str, float]]:
        """Per layer: `sparsity` (fraction of zeros in the ISTA output / sparse code) and
        `rate_heads` (mean over heads of R(U_kᵀZ; ε²), the coding rate of the layer's input tokens
        in each head's subspace, all B·T tokens as rows). tokens: (B, T, dim)."""
        stats, x = [], tokens
        for layer in self.layers:
            heads = layer.mssa.head_tokens(layer.norm_attn(x)).transpose(0, 1).flatten(1, 2)  # (K, B·T, p)
            rate = torch.stack([coding_rate(h, eps_sq) for h in heads]).mean()
            x, code = layer(x)
            stats.append({"sparsity": float((code == 0).float().mean()), "rate_heads": float(rate)})
        return stats
