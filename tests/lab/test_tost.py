"""ToST aggregator: the TSSA operator, the causal form against running statistics, drop-in use."""

from __future__ import annotations

import pytest
import torch

from lab.models.aggregators.tost import TSSA, ToSTAggregator


def _reference_tssa(attn: TSSA, x: torch.Tensor) -> torch.Tensor:
    """The operator written out token by token from the paper's equations (no vectorisation)."""
    b, n, dim = x.shape
    h = attn.heads
    w = attn.proj(x).view(b, n, h, dim // h)  # (B, n, h, p)
    out = torch.zeros_like(w)
    for bi in range(b):
        norms = w[bi].pow(2).sum(0).sqrt().clamp_min(1e-12)  # (h, p) over tokens
        energy = (w[bi] / norms).pow(2).sum(-1)  # (n, h)
        pi = torch.softmax(energy * attn.temp.view(1, h), dim=1)  # (n, h)
        for k in range(h):
            dots = (pi[:, k : k + 1] * w[bi, :, k].pow(2)).sum(0) / (pi[:, k].sum() + 1e-8)  # (p,)
            out[bi, :, k] = -pi[:, k : k + 1] * w[bi, :, k] / (1 + dots)
    return attn.out(out.flatten(-2))


def test_tssa_matches_the_written_out_operator() -> None:
    torch.manual_seed(0)
    attn = TSSA(24, heads=3).eval()
    with torch.no_grad():
        attn.temp.copy_(torch.tensor([[0.5], [1.0], [2.0]]))
    x = torch.randn(2, 7, 24)
    torch.testing.assert_close(attn(x), _reference_tssa(attn, x), atol=1e-5, rtol=1e-5)


def _with_agg(agg: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.cat([agg.expand(tokens.shape[0], -1, -1), tokens], dim=1)


def test_batch_form_mixes_tokens_without_positions() -> None:
    torch.manual_seed(0)
    mixer = ToSTAggregator(32, layers=2, heads=4).eval()
    agg, tokens = torch.randn(1, 1, 32), torch.randn(3, 5, 32)
    out = mixer(_with_agg(agg, tokens))
    assert out.shape == (3, 6, 32) and mixer.out_dim == 32
    # no positional embedding: z_AGG (position 0) does not depend on the context order
    torch.testing.assert_close(mixer(_with_agg(agg, tokens[:, [4, 2, 0, 3, 1]]))[:, 0], out[:, 0], atol=1e-5, rtol=1e-5)
    # but it does depend on every context token
    changed = tokens.clone()
    changed[:, 2] = torch.randn(3, 32)
    assert not torch.allclose(mixer(_with_agg(agg, changed))[:, 0], out[:, 0])


def test_causal_context_outputs_ignore_future_tokens_and_agg_sees_all() -> None:
    torch.manual_seed(0)
    mixer = ToSTAggregator(32, layers=2, heads=4, causal=True).eval()
    agg, tokens = torch.randn(1, 1, 32), torch.randn(2, 6, 32)
    changed = tokens.clone()
    changed[:, 4:] = torch.randn(2, 2, 32)
    a, b = mixer(_with_agg(agg, tokens)), mixer(_with_agg(agg, changed))
    torch.testing.assert_close(a[:, 1:5], b[:, 1:5])  # context tokens 1..4 see only their prefix
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    assert not torch.allclose(a[:, 0], b[:, 0])  # [AGG] comes last: it reads every context token


@pytest.mark.parametrize("chunks", [[1] * 9, [3, 1, 4, 1], [9], [2, 7]])
def test_streaming_with_running_statistics_equals_the_causal_batch(chunks: list[int]) -> None:
    torch.manual_seed(0)
    mixer = ToSTAggregator(48, layers=3, heads=4, causal=True).double().eval()
    with torch.no_grad():
        for block in mixer.blocks:
            block.attn.temp.uniform_(0.5, 2.0)
    agg = torch.randn(1, 1, 48, dtype=torch.float64)
    tokens = torch.randn(4, sum(chunks), 48, dtype=torch.float64)
    state = mixer.start(tokens)
    streamed, reads, i = [], [], 0
    for n in chunks:
        out, state = mixer.step(tokens[:, i : i + n], state)
        streamed.append(out)
        i += n
        reads.append(mixer.read(agg.expand(4, -1, -1), state))
        # z_AGG read from the stream equals the batch form on the prefix seen so far
        torch.testing.assert_close(reads[-1], mixer(_with_agg(agg, tokens[:, :i]))[:, 0], atol=1e-10, rtol=1e-9)
    batch = mixer(_with_agg(agg, tokens))
    torch.testing.assert_close(torch.cat(streamed, 1), batch[:, 1:], atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(reads[-1], batch[:, 0], atol=1e-10, rtol=1e-9)
    # O(1) state: per layer and head p + p + 1 numbers, whatever the stream's length
    assert len(state.layers) == 3 and state.out_sum.shape == (4, 48) and state.count == sum(chunks)
    assert all(s.sum_sq.shape == (4, 4, 12) and s.sum_pi.shape == (4, 4, 1) for s in state.layers)


def test_streaming_matches_in_float32_over_a_long_stream() -> None:
    torch.manual_seed(1)
    mixer = ToSTAggregator(32, layers=2, heads=2, causal=True).eval()
    agg, tokens = torch.randn(2, 1, 32), torch.randn(2, 64, 32)
    state = mixer.start(tokens)
    for t in range(64):
        _, state = mixer.step(tokens[:, t : t + 1], state)
    torch.testing.assert_close(mixer.read(agg, state), mixer(torch.cat([agg, tokens], 1))[:, 0], atol=1e-5, rtol=1e-4)


def test_agg_reads_the_context_through_the_mean_of_its_outputs() -> None:
    torch.manual_seed(0)
    mixer = ToSTAggregator(32, layers=2, heads=4).eval()
    agg = torch.zeros(1, 1, 32)  # the model's [AGG] starts at zero
    a, b = torch.randn(8, 4, 32), torch.randn(8, 4, 32)
    za, zb = mixer(_with_agg(agg, a))[:, 0], mixer(_with_agg(agg, b))[:, 0]
    # different contexts give clearly different aggregates (not only a rescaled constant)
    assert (za - zb).norm(dim=-1).mean() > 0.3 * za.norm(dim=-1).mean()


def test_batch_form_refuses_streaming_and_bad_width() -> None:
    mixer = ToSTAggregator(16, layers=1, heads=2)
    with pytest.raises(ValueError, match="causal"):
        mixer.start(torch.zeros(1, 1, 16))
    with pytest.raises(ValueError, match="not divisible"):
        ToSTAggregator(30, heads=4)


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_reach_every_parameter(causal: bool) -> None:
    torch.manual_seed(0)
    mixer = ToSTAggregator(24, layers=2, heads=3, causal=causal)
    mixer(torch.randn(4, 5, 24))[:, 0].pow(2).sum().backward()
    for name, p in mixer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert mixer.blocks[0].attn.proj.weight.grad.abs().sum() > 0 and mixer.blocks[0].attn.temp.grad.abs().sum() > 0
