"""ToST aggregator: Token Statistics Self-Attention (Wu et al., ICLR 2025, arXiv 2412.17810).

TSSA is one gradient step on a variational form of the MCR² compression term. Per head k a
projection w = U_kᵀ z (p coordinates) is computed for every token; each token gets a soft
membership π_k over heads (softmax over heads of its normalised projected energy, with a learnable
temperature per head); each projected coordinate is then rescaled by a gain computed from that
coordinate's membership-weighted second moment over the tokens:

    dots_k = Σ_j π_kj w_kj² / Σ_j π_kj          (p,)  per head, a token *statistic*
    TSSA(z)_i = −U_out [ π_ki · w_ki / (1 + dots_k) ]_k

No token-pair similarities are formed, so time is O(n·p) and memory O(p) per head (softmax
attention: O(n²·p) time and O(n²) memory). Written here because no maintained library ships TSSA.

Two forms share the parameters; both are token mixers over [AGG], u_1..u_M like the
transformer aggregator (the model reads z_AGG at position 0):
- batch (`causal=False`): statistics over all tokens, as `RobinWu218/ToST, tost_vision/tost.py`.
- causal (`causal=True`): statistics over the prefix (prefix sums, as `tost_lang/model_TSSA.py`),
  so the aggregator can consume a stream one view at a time: its state is, per layer and head,
  the running Σ w² (p), Σ π·w² (p) and Σ π (1), whatever the stream's length. [AGG] comes last
  in the causal order, so z_AGG can be read after any number of views without entering the
  state. The language code's `denom_bias` (a learned table over positions up to a block size)
  is left out so that the stream length is unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-8


@dataclass
class StreamState:
    """A causal ToST stream: the statistics of every layer and the running sum of the last layer's
    context outputs (for the [AGG] read-out), O(layers·dim) numbers per stream."""

    layers: list[TSSAState]
    out_sum: torch.Tensor  # (B, dim) Σ_j h_j over the context tokens seen
    count: int


@dataclass
class TSSAState:
    """Running token statistics of one causal TSSA layer, each (B, heads, ·)."""

    sum_sq: torch.Tensor  # (B, h, p)  Σ_j w_j²
    sum_pi_sq: torch.Tensor  # (B, h, p)  Σ_j π_j w_j²
    sum_pi: torch.Tensor  # (B, h, 1)  Σ_j π_j


class TSSA(nn.Module):
    """Token Statistics Self-Attention. x: (B, n, dim) → (B, n, dim).

    One bias-free projection dim → dim split into `heads` heads of p = dim / heads coordinates
    (U_[K]ᵀ, as in the reference code), a temperature per head, an output projection.
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ToST width {dim} is not divisible by {heads} heads; change the aggregator's heads")
        self.heads, self.causal = heads, causal
        self.proj = nn.Linear(dim, dim, bias=False)
        self.temp = nn.Parameter(torch.ones(heads, 1))
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n, dim) → w (B, h, n, p)."""
        return self.proj(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        """(B, h, n, p) → (B, n, dim) through the output projection."""
        return self.out(y.transpose(1, 2).flatten(-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self.forward_chunk(x, self.empty_state(x))[0]
        w = self._project(x)
        energy = F.normalize(w, dim=-2).pow(2).sum(-1)  # (B, h, n): each coordinate normalised over tokens
        pi = torch.softmax(energy * self.temp, dim=1)  # memberships: softmax over heads
        weights = pi / (pi.sum(-1, keepdim=True) + _EPS)
        dots = torch.einsum("bhn,bhnp->bhp", weights, w.pow(2))  # (B, h, p) weighted second moments
        return self._merge(-(w * pi.unsqueeze(-1)) / (1 + dots.unsqueeze(-2)))

    def empty_state(self, x: torch.Tensor) -> TSSAState:
        """Statistics of an empty prefix, for a batch like x (B, ·, dim)."""
        b, p = x.shape[0], self.proj.out_features // self.heads
        zeros = x.new_zeros(b, self.heads, p)
        return TSSAState(zeros, zeros.clone(), x.new_zeros(b, self.heads, 1))

    def forward_chunk(self, x: torch.Tensor, state: TSSAState) -> tuple[torch.Tensor, TSSAState]:
        """Causal TSSA on the next tokens x (B, n, dim) after the prefix summarised by `state`.

        Token i uses the statistics of the prefix up to and including itself. Returns the outputs
        (B, n, dim) and the state after the chunk; the state has no dimension along the tokens.
        """
        w = self._project(x)
        sq = w.pow(2)
        sum_sq = state.sum_sq.unsqueeze(2) + sq.cumsum(2)  # (B, h, n, p)
        energy = (sq / sum_sq.clamp_min(1e-12)).sum(-1)  # (B, h, n)
        pi = torch.softmax(energy * self.temp, dim=1)
        sum_pi = state.sum_pi + pi.cumsum(2)  # (B, h, n)
        sum_pi_sq = state.sum_pi_sq.unsqueeze(2) + (sq * pi.unsqueeze(-1)).cumsum(2)
        dots = sum_pi_sq / (sum_pi.unsqueeze(-1) + _EPS)
        y = -(w * pi.unsqueeze(-1)) / (1 + dots)
        return self._merge(y), TSSAState(sum_sq[:, :, -1], sum_pi_sq[:, :, -1], sum_pi[:, :, -1:])


class ToSTBlock(nn.Module):
    """Pre-LN block: x + γ₁·TSSA(LN x), then x + γ₂·MLP(LN x); LayerScale γ starts at `layerscale`."""

    def __init__(self, dim: int, heads: int, mlp_mult: int, causal: bool, dropout: float, layerscale: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = TSSA(dim, heads, causal=causal, dropout=dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_mult * dim), nn.GELU(), nn.Linear(mlp_mult * dim, dim), nn.Dropout(dropout))
        self.gamma1 = nn.Parameter(torch.full((dim,), layerscale))
        self.gamma2 = nn.Parameter(torch.full((dim,), layerscale))

    def forward_chunk(self, x: torch.Tensor, state: TSSAState | None) -> tuple[torch.Tensor, TSSAState | None]:
        if state is None:
            attn, new_state = self.attn(self.norm1(x)), None
        else:
            attn, new_state = self.attn.forward_chunk(self.norm1(x), state)
        x = x + self.gamma1 * attn
        return x + self.gamma2 * self.mlp(self.norm2(x)), new_state


class ToSTAggregator(nn.Module):
    """`layers` ToST blocks and a final LayerNorm: a token mixer (B, T, dim) → (B, T, dim) over the
    sequence [AGG], u_1..u_M (the model owns [AGG] and reads position 0). No positions.

    Read-out: TSSA passes to a token only gains computed from the others (second moments that
    rescale its own projection), so [AGG]'s own path carries almost nothing of the context (a
    first run read z_AGG at chance, experiments/step4-tost/README.md). Position 0 therefore returns
    LN(h_AGG + mean_j h_j), the mean of the context tokens' outputs added to [AGG]'s — a first-order
    token statistic, linear in the tokens and streamable as a running sum, in place of the
    class-attention layers the ToST vision models end with.

    Causal form: the context tokens are mixed in stream order, each seeing its prefix only, and
    [AGG] comes *last* in the causal order, so its output reads the statistics of every context
    token. Streaming keeps that order: `start` gives the empty state, `step` consumes the next
    context token(s) and `read` gives [AGG]'s output against the state so far, without changing it.
    """

    def __init__(self, dim: int, layers: int = 3, heads: int = 4, mlp_mult: int = 4, causal: bool = False,
                 dropout: float = 0.0, layerscale: float = 1.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ToSTBlock(dim, heads, mlp_mult, causal, dropout, layerscale) for _ in range(layers))
        self.norm, self.readout_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.causal, self.out_dim = causal, dim

    def _run(self, x: torch.Tensor, states: list[TSSAState] | None) -> tuple[torch.Tensor, list[TSSAState] | None]:
        new_states = [] if states is not None else None
        for i, block in enumerate(self.blocks):
            x, state = block.forward_chunk(x, None if states is None else states[i])
            if new_states is not None:
                new_states.append(state)
        return self.norm(x), new_states

    def _readout(self, agg_out: torch.Tensor, context_mean: torch.Tensor) -> torch.Tensor:
        return self.readout_norm(agg_out + context_mean)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.causal:
            h = self._run(tokens, None)[0]
        else:
            stream_order = torch.roll(tokens, -1, dims=1)  # u_1..u_M, [AGG]
            h = torch.roll(self._run(stream_order, [b.attn.empty_state(tokens) for b in self.blocks])[0], 1, dims=1)
        if h.shape[1] == 1:
            return h
        return torch.cat([self._readout(h[:, 0], h[:, 1:].mean(1))[:, None], h[:, 1:]], dim=1)

    def _need_causal(self) -> None:
        if not self.causal:
            raise ValueError("streaming needs the causal form of the ToST aggregator (causal: true)")

    def start(self, like: torch.Tensor) -> StreamState:
        """Empty stream state for a batch like `like` (B, ·, dim): O(layers·dim) numbers per stream."""
        self._need_causal()
        return StreamState([block.attn.empty_state(like) for block in self.blocks], like.new_zeros(like.shape[0], self.out_dim), 0)

    def step(self, tokens: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Consume the next context token(s) (B, n, dim) → (their outputs (B, n, dim), the new state)."""
        self._need_causal()
        out, layers = self._run(tokens, state.layers)
        return out, StreamState(layers, state.out_sum + out.sum(1), state.count + tokens.shape[1])

    def read(self, agg: torch.Tensor, state: StreamState) -> torch.Tensor:
        """[AGG] (B, 1, dim) read against the stream so far → z_AGG (B, dim); the state is unchanged."""
        self._need_causal()
        if state.count == 0:
            raise ValueError("read needs at least one context token in the stream")
        return self._readout(self._run(agg, state.layers)[0][:, 0], state.out_sum / state.count)
