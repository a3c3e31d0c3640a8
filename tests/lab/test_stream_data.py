"""Streams: class-incremental order, each sample once, drift, host-held images."""

from __future__ import annotations

import pytest
import torch

from lab.config import ViewsConfig
from lab.data.embedded import make_shapes
from lab.data.base import ImageDataset
from lab.data.stream import DeviceWindow, batches, class_incremental_order, drifted, task_classes, tint_tasks


def test_tasks_split_the_classes_and_the_stream_sees_each_sample_once() -> None:
    ds = make_shapes("train", num=200, image_size=16)
    groups = task_classes(8, 4, seed=3)
    assert sorted(c for g in groups for c in g) == list(range(8)) and all(len(g) == 2 for g in groups)
    assert groups == task_classes(8, 4, seed=3) and groups != task_classes(8, 4, seed=4)
    order = class_incremental_order(ds.labels, groups, seed=0)
    stream = list(batches(order, batch_size=16))
    seen = torch.cat([b.idx for b in stream])
    assert sorted(seen.tolist()) == list(range(200))  # every sample exactly once
    tasks = [b.task for b in stream]
    assert tasks == sorted(tasks)  # tasks arrive in order, never interleaved
    for b in stream:
        assert set(ds.labels[b.idx].tolist()) <= set(groups[b.task])
        assert b.idx.numel() <= 16
    assert stream[0].seen == 0 and stream[-1].seen + stream[-1].idx.numel() == 200
    assert all(0 <= b.progress < 1 for b in stream)
    with pytest.raises(ValueError, match="stream.tasks"):
        task_classes(8, 9, seed=0)


def test_drift_interpolates_view_settings() -> None:
    base = ViewsConfig(kind="affine", factors=["scale", "colour"])
    drift = {"scale": [[0.6, 0.8], [1.2, 1.4]], "colour": [0.0, 0.4]}
    assert drifted(base, drift, 0.0).scale == (0.6, 0.8)
    mid = drifted(base, drift, 0.5)
    assert mid.scale == pytest.approx((0.9, 1.1)) and mid.colour == pytest.approx(0.2)
    assert drifted(base, drift, 1.0).scale == pytest.approx((1.2, 1.4))
    assert base.scale == (0.75, 1.25)  # the base config is not changed


def test_device_window_moves_only_the_batch_and_applies_the_drift() -> None:
    ds = make_shapes("train", num=300, image_size=16)
    views = ViewsConfig(kind="affine", factors=["scale"])
    window = DeviceWindow(ds, views, torch.device("cpu"))
    idx = torch.tensor([5, 17, 250])
    torch.manual_seed(0)
    seq = window.sample(idx, 3, drifted(views, {"scale": [[0.5, 0.5], [1.5, 1.5]]}, 0.0))
    assert seq.views.shape == (3, 3, 3, 16, 16) and seq.actions.shape == (3, 2, 1)
    assert window.sampler.images.shape[0] == 3  # the device holds this batch only
    torch.testing.assert_close(seq.labels, ds.labels[idx])
    # scale fixed at 0.5 for every view: relative log-scale actions are all zero
    torch.testing.assert_close(seq.actions, torch.zeros_like(seq.actions), atol=1e-6, rtol=0)
    free = window.sample(idx, 3, views)
    assert free.actions.abs().max() > 0.01
    with pytest.raises(ValueError, match="quat"):
        DeviceWindow(ds, ViewsConfig(kind="quat"), torch.device("cpu"))


def test_task_tint_colours_each_tasks_images_and_only_those() -> None:
    ds = make_shapes("train", num=200, image_size=16)
    groups = [[0, 1, 2, 3], [4, 5, 6, 7]]
    out = tint_tasks(ds, groups, [[1.0, 0.0, 0.0], [0.0, 0.5, -1.0]])
    first = torch.isin(ds.labels, torch.tensor(groups[0]))
    assert out.images[first, 0].equal(ds.images[first, 0]) and out.images[first, 1:].max() == 0
    second = ~first
    assert out.images[second, 0].max() == 0 and out.images[second, 2].equal(255 - ds.images[second, 2])  # inverted
    half = (ds.images[second, 1].float() * 0.5).round().to(torch.uint8)
    assert out.images[second, 1].equal(half)
    assert out.labels.equal(ds.labels) and ds.images[first, 1:].max() > 0  # the input is not changed
    gray = ImageDataset("g", ds.images[:, :1].clone(), ds.labels, 8)
    bright = tint_tasks(gray, groups, [[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert bright.images.shape[1] == 3 and bright.images[first, 0].max() == 255  # RGB, clipped to uint8
    with pytest.raises(ValueError, match="one \\[r, g, b\\] per task"):
        tint_tasks(ds, groups, [[1.0, 1.0, 1.0]])
