from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from lab.config import ViewsConfig
from lab.data.base import ImageDataset
from lab.data.embedded import SHAPE_CLASSES, make_digits, make_shapes
from lab.data.registry import load_dataset
from lab.data.views import build_view_sampler


def test_shapes_are_deterministic_and_split_apart() -> None:
    a, b = make_shapes("train", num=64, seed=3), make_shapes("train", num=64, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, make_shapes("test", num=64, seed=3).images)
    assert a.images.shape == (64, 3, 32, 32) and a.images.dtype == torch.uint8
    assert a.num_classes == len(SHAPE_CLASSES) and set(a.latents) == {"angle", "scale", "pos", "colour"}


def test_digits_and_registry() -> None:
    train, test = make_digits("train", image_size=24), make_digits("test", image_size=24)
    assert train.images.shape[1:] == (1, 24, 24) and len(train) + len(test) == 1797
    assert load_dataset("shapes", split="test", num=20).labels.shape == (20,)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


@pytest.mark.parametrize(("kind", "dim"), [("rotation", 2), ("affine", 8), ("augment", 9)])
def test_sampler_shapes(kind: str, dim: int) -> None:
    sampler = build_view_sampler(make_shapes("train", num=32, image_size=16), ViewsConfig(kind=kind), "cpu")
    seq = sampler.sample(torch.arange(8), 4)
    assert seq.views.shape == (8, 4, 3, 16, 16) and seq.actions.shape == (8, 3, dim) and seq.labels.shape == (8,)
    assert sampler.action_dim == dim == len(sampler.action_names) and torch.isfinite(seq.views).all()


def test_grayscale_is_repeated_to_rgb() -> None:
    sampler = build_view_sampler(make_digits("train", num=16, image_size=16), ViewsConfig(kind="rotation"), "cpu")
    assert sampler.sample(torch.arange(4), 2).views.shape == (4, 2, 3, 16, 16)


def test_rotation_action_is_the_transformation_between_views() -> None:
    """Rotating view 1 by the relative action's angle reproduces view 2 (inside the central disc)."""
    torch.manual_seed(0)
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=32), ViewsConfig(kind="rotation"), "cpu")
    seq = sampler.sample(torch.arange(16), 2)
    delta = torch.atan2(seq.actions[:, 0, 0], seq.actions[:, 0, 1])
    cos, sin = torch.cos(delta), torch.sin(delta)
    inv = torch.stack([torch.stack([cos, sin, torch.zeros_like(cos)], -1), torch.stack([-sin, cos, torch.zeros_like(cos)], -1)], 1)
    grid = F.affine_grid(inv, [16, 3, 32, 32], align_corners=False)
    redone = F.grid_sample(seq.views[:, 0], grid, padding_mode="border", align_corners=False)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    centre = (xx**2 + yy**2) < 0.5
    err = (redone - seq.views[:, 1]).abs()[..., centre].mean()
    other = (seq.views[:, 0] - seq.views[:, 1]).abs()[..., centre].mean()
    assert err < 0.35 * other


def test_augment_actions_follow_the_sampled_parameters() -> None:
    torch.manual_seed(1)
    cfg = ViewsConfig(kind="augment", context_blur_p=1.0, target_blur_p=0.0)
    sampler = build_view_sampler(make_shapes("train", num=64, image_size=32), cfg, "cpu")
    ctx, params = sampler._run(sampler._to_float(sampler.images[:64]), sampler.context)
    top, left, h, w = params[:, :4].T
    assert ((top >= 0) & (left >= 0) & (top + h <= 32) & (left + w <= 32)).all()
    assert (params[:, 8] > 0).all()  # context views always blurred: σ > 0
    _, tparams = sampler._run(sampler._to_float(sampler.images[:64]), sampler.target)
    assert (tparams[:, 8] == 0).all()  # target never blurred here: σ encoded as 0
    skipped = (tparams[:, 4:8] == torch.tensor([1.0, 1.0, 1.0, 0.0])).all(-1)
    assert 0 < skipped.sum() < 64  # jitter skipped with p = 0.2 encodes as (1, 1, 1, 0)


def test_quat_views_use_distinct_renders_and_relative_quaternions() -> None:
    objects, renders = 6, 5
    quat = torch.tensor(Rotation.random(objects * renders, random_state=1).as_quat(), dtype=torch.float32)
    groups = torch.arange(objects).repeat_interleave(renders)
    images = (torch.arange(objects * renders, dtype=torch.uint8)[:, None, None, None]).expand(-1, 3, 8, 8).contiguous()
    ds = ImageDataset("3diebench", images, groups % 3, 3, groups=groups, latents={"quat": quat})
    sampler = build_view_sampler(ds, ViewsConfig(kind="quat"), "cpu")
    seq = sampler.sample(torch.tensor([0, 4]), 4)
    assert seq.actions.shape == (2, 3, 4) and sampler.num_samples == objects
    ids = (seq.views[:, :, 0, 0, 0] * sampler.std[0, 0, 0, 0] + sampler.mean[0, 0, 0, 0]) * 255
    ids = ids.round().long()  # each view's image index, recovered from its constant pixel value
    assert all(len(set(row.tolist())) == 4 for row in ids) and (ids[0] < renders).all() and (ids[1] >= 4 * renders).all()
    r = [Rotation.from_quat(quat[i].numpy()) for i in ids[0].tolist()]
    want = (r[0].inv() * r[1]).as_matrix()
    got = Rotation.from_quat(seq.actions[0, 0].numpy()).as_matrix()
    assert abs(want - got).max() < 1e-5
    with pytest.raises(ValueError, match="only 5 renders"):
        sampler.sample(torch.tensor([0]), 6)


def test_affine_factors_select_action_dimensions() -> None:
    cfg = ViewsConfig(kind="affine", factors=["scale", "colour"])
    sampler = build_view_sampler(make_shapes("train", num=16, image_size=16), cfg, "cpu")
    seq = sampler.sample(torch.arange(8), 3)
    assert sampler.action_names == ["log_scale", "log_gain_r", "log_gain_g", "log_gain_b"]
    assert seq.actions.shape == (8, 2, 4) and (seq.actions.abs() > 0).all()


@pytest.mark.parametrize("kind", ["affine", "augment"])
def test_seeded_views_depend_on_the_seed_alone_and_leave_the_stream_as_it_was(kind: str) -> None:
    """What evaluation relies on: the same views for the trained model and its twin, in any process."""
    def sampler():
        torch.manual_seed(123)
        return build_view_sampler(make_shapes("train", num=16, image_size=16), ViewsConfig(kind=kind), "cpu")

    a, b = sampler(), sampler()
    a.sample(torch.arange(8), 3)  # a has drawn before, b has not
    torch.manual_seed(999)  # and the global RNG differs
    with a.seeded(7):
        first = a.sample(torch.arange(8), 3)
    torch.manual_seed(5)
    with b.seeded(7):
        second = b.sample(torch.arange(8), 3)
    assert torch.equal(first.views, second.views) and torch.equal(first.actions, second.actions)
    with b.seeded(8):
        assert not torch.equal(b.sample(torch.arange(8), 3).views, second.views)
    torch.manual_seed(0)
    after_block = b.sample(torch.arange(8), 3).actions
    c = sampler()
    torch.manual_seed(0)
    assert torch.equal(after_block, c.sample(torch.arange(8), 3).actions)  # the blocks left b's stream untouched
