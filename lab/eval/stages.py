"""Per-stage probes of a staged encoder, blockwise or end to end: `stage_metrics`."""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blockwise import BlockwiseEncoder, stage_features


@torch.no_grad()
def _stage_pairs(encoder: nn.Module, sampler, limit: int | None, batch_size: int, seed: int):
    """Per stage (N, 2·C_s) [h_s(x1); h_s(x2)], the actions a_1 (N, A) and labels (N,), fixed-seed views."""
    n = min(sampler.num_samples, limit or sampler.num_samples)
    staged = encoder.inner if isinstance(encoder, BlockwiseEncoder) else encoder
    feats, actions, labels = [], [], []
    with sampler.seeded(seed):
        for idx in torch.arange(n, device=sampler.device).split(batch_size):
            seq = sampler.sample(idx, 2)
            pooled = stage_features(staged, seq.views.flatten(0, 1))
            feats.append([p.float().unflatten(0, (idx.numel(), 2)).flatten(1).cpu() for p in pooled])
            actions.append(seq.actions[:, 0].float().cpu())
            labels.append(seq.labels.cpu())
    per_stage = [torch.cat([f[s] for f in feats]) for s in range(len(feats[0]))]
    return per_stage, torch.cat(actions), torch.cat(labels)


def stage_metrics(encoder: nn.Module, train_sampler, test_sampler, ev) -> dict[str, float]:
    """Per-stage probes of a staged encoder (blockwise or end to end): `stage{s}.linacc`, the
    linear-probe accuracy of the pooled stage-s features of one view, and `stage{s}.r2_equi`, the
    R² (sklearn mean) of the relative action from the pair [h_s(x1); h_s(x2)]. `ev`: EvalConfig."""
    from lab.eval.equivariance import equivariance_r2
    from lab.eval.probes import linear_probe_accuracy

    was_training = encoder.training
    encoder.eval()
    tr, tr_a, tr_y = _stage_pairs(encoder, train_sampler, ev.num_train, ev.batch_size, ev.seed)
    te, te_a, te_y = _stage_pairs(encoder, test_sampler, ev.num_test, ev.batch_size, ev.seed + 1)
    encoder.train(was_training)
    out = {}
    for s, (x_tr, x_te) in enumerate(zip(tr, te, strict=True)):
        half = x_tr.shape[1] // 2
        out[f"stage{s}.linacc"] = linear_probe_accuracy(x_tr[:, :half], tr_y, x_te[:, :half], te_y, max_iter=ev.probe_max_iter)
        r2 = equivariance_r2(x_tr, tr_a, x_te, te_a, head=ev.equi_head, hidden=ev.equi_hidden, epochs=ev.equi_epochs,
                             seed=ev.seed)
        out[f"stage{s}.r2_equi"] = r2["r2_sklearn"]
    return out
