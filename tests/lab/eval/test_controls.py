"""The fair control: the untrained twin's BatchNorm statistics re-estimated on training data, weights untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lab.config import parse_config
from lab.eval.controls import batchnorm_layers, reestimate_batchnorm
from tests.lab.conftest import tiny_config


class _Net(nn.Module):
    """conv → BN2d → ReLU → dropout → linear → BN1d, called as net(x) with x: (B, 3, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn2d = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.drop, self.fc, self.bn1d = nn.Dropout(0.5), nn.Linear(4 * 36, 5), nn.BatchNorm1d(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn1d(self.fc(self.drop(torch.relu(self.bn2d(self.conv(x))).flatten(1))))


def test_running_statistics_become_the_batches_statistics_and_nothing_else_changes() -> None:
    torch.manual_seed(0)
    net = _Net().eval()
    params = {k: v.clone() for k, v in net.named_parameters()}
    batches = [(torch.randn(16, 3, 8, 8) * 3 + 2,) for _ in range(3)]
    seen: dict[str, list[torch.Tensor]] = {"bn2d": [], "bn1d": []}
    dropout_training = []
    net.bn2d.register_forward_pre_hook(lambda m, a: seen["bn2d"].append(a[0].transpose(0, 1).flatten(1)))
    net.bn1d.register_forward_pre_hook(lambda m, a: seen["bn1d"].append(a[0].T))
    net.drop.register_forward_pre_hook(lambda m, a: dropout_training.append(m.training))

    assert reestimate_batchnorm(net, batches) == 3

    for name in ("bn2d", "bn1d"):  # inputs per batch: (channels, values); running = mean over batches
        bn = getattr(net, name)
        torch.testing.assert_close(bn.running_mean, torch.stack([x.mean(1) for x in seen[name]]).mean(0))
        torch.testing.assert_close(bn.running_var, torch.stack([x.var(1) for x in seen[name]]).mean(0))
        assert bn.momentum == 0.1 and not bn.training
    assert net.bn2d.running_mean.abs().min() > 0.1  # the data's, not the initial zeros
    assert dropout_training == [False] * 3 and not net.training
    for k, v in net.named_parameters():
        torch.testing.assert_close(v, params[k], rtol=0, atol=0)


def test_no_batches_leave_the_statistics_and_mode_as_they_were() -> None:
    net = _Net().train()
    assert reestimate_batchnorm(net, []) == 0
    assert net.training and torch.equal(net.bn2d.running_mean, torch.zeros(4))
    assert batchnorm_layers(nn.Linear(2, 2)) == []


def test_evaluation_probes_the_twin_with_re_estimated_statistics_and_initial_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab eval`'s twin (the first model it builds) must not keep BatchNorm's initial statistics
    (mean 0, var 1): before the fix it did, and every `gain.*` was measured against it."""
    import lab.evaluate
    from lab.build import build_parts, build_sampler
    from lab.train.loop import train

    cfg = parse_config(tiny_config(tmp_path, train={"epochs": 1, "steps_per_epoch": 1},
                                   eval={"at_end": False, "control_bn_sequences": 32, "batch_size": 16}))
    train(cfg)
    built = []

    def recording_build_parts(*args, **kwargs):
        parts = build_parts(*args, **kwargs)
        built.append(parts[0])
        return parts

    monkeypatch.setattr(lab.evaluate, "build_parts", recording_build_parts)
    results = lab.evaluate.evaluate(cfg.run_dir)

    twin = built[0]
    fresh, _, _ = build_parts(cfg, build_sampler(cfg, "train", torch.device("cpu")), torch.device("cpu"))
    for (name, a), b in zip(twin.named_parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # no gradient step, no optimiser
    layers = batchnorm_layers(twin.encoder)
    assert layers and all(int(bn.num_batches_tracked) == 2 for bn in layers)  # 32 sequences in batches of 16
    assert all(not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) for bn in layers)
    assert results["control"] == "untrained twin, BN statistics re-estimated on 32 training sequences"


def test_zero_sequences_keep_the_old_control_and_say_so(tmp_path: Path) -> None:
    from lab.build import build_parts, build_sampler
    from lab.evaluate import calibrate_twin

    cfg = parse_config(tiny_config(tmp_path, eval={"control_bn_sequences": 0}))
    sampler = build_sampler(cfg, "train", torch.device("cpu"))
    twin, _, _ = build_parts(cfg, sampler, torch.device("cpu"))
    assert calibrate_twin(twin, sampler, cfg) == "untrained twin, initial BN statistics (not re-estimated)"
    assert all(torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) for bn in batchnorm_layers(twin))
