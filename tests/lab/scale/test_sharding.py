"""A sampler sharded over ranks makes, together, the views one process makes for the global batch."""

from __future__ import annotations

import pytest
import torch

from lab.config import ViewsConfig
from lab.data.base import ImageDataset
from lab.data.embedded import make_shapes
from lab.data.views import build_view_sampler


def _quat_dataset() -> ImageDataset:
    objects, renders = 8, 6
    groups = torch.arange(objects).repeat_interleave(renders)
    images = torch.randint(0, 255, (objects * renders, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    quat = torch.nn.functional.normalize(torch.randn(objects * renders, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    return ImageDataset("3diebench", images, groups % 2, 2, groups=groups, latents={"quat": quat})


@pytest.mark.parametrize("kind", ["rotation", "affine", "quat"])
def test_two_shards_concatenate_to_the_single_process_batch(kind: str) -> None:
    ds = _quat_dataset() if kind == "quat" else make_shapes("train", num=32, image_size=16)
    idx = torch.tensor([5, 0, 7, 2, 3, 6])

    def sampler(rank: int, world: int):
        torch.manual_seed(11)  # every rank seeds alike
        s = build_view_sampler(ds, ViewsConfig(kind=kind), "cpu")
        s.shard(rank, world)
        return s

    whole = [sampler(0, 1).sample(idx, 3) for _ in range(1)][0]
    parts = [sampler(rank, 2).sample(idx.chunk(2)[rank], 3) for rank in range(2)]
    assert torch.equal(torch.cat([p.views for p in parts]), whole.views)
    assert torch.equal(torch.cat([p.actions for p in parts]), whole.actions)
    assert torch.equal(torch.cat([p.labels for p in parts]), whole.labels)


def test_cpu_chunks_draw_the_same_views_as_one_call() -> None:
    ds = make_shapes("train", num=160, image_size=16)
    torch.manual_seed(3)
    chunked = build_view_sampler(ds, ViewsConfig(kind="affine"), "cpu")
    torch.manual_seed(3)
    whole = build_view_sampler(ds, ViewsConfig(kind="affine"), "cpu")
    whole.CPU_CHUNK = 1000
    idx = torch.arange(150)
    assert torch.allclose(chunked.sample(idx, 2).views, whole.sample(idx, 2).views, atol=1e-6)


def test_a_rank_outside_the_world_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2 is not in 0…1"):
        build_view_sampler(make_shapes("train", num=16, image_size=16), ViewsConfig(), "cpu").shard(2, 2)
