"""Streamed 3DIEBench: a split over the memory cap is read per batch from a uint8 disk cache."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lab.cli import app
from lab.config import ViewsConfig
from lab.data.disk import iebench
from lab.data.disk.cache import DiskImages
from lab.data.registry import load_dataset
from lab.data.views import build_view_sampler
from tests.lab.conftest import tiny_config
from tests.lab.data_disk.conftest import write_3diebench

CAP_GIB = 0.5 / 1024  # 0.5 MiB: the synthetic split below is 2.3 MiB at 32²


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_3diebench(tmp_path, synsets=2, objects=5, views=50, size=16)  # 8 train objects × 50 renders
    return tmp_path


def test_a_split_over_the_cap_streams_from_a_cache_equal_to_the_decoded_images(tree: Path) -> None:
    split_gib = 8 * 50 * 3 * 32**2 / 2**30
    assert split_gib > CAP_GIB
    with pytest.raises(ValueError, match="data.stream=disk"):
        load_dataset("3diebench", tree, "train", image_size=32, stream="memory", memory_gib=CAP_GIB)
    streamed = load_dataset("3diebench", tree, "train", image_size=32, memory_gib=CAP_GIB)  # 'auto'
    in_memory = load_dataset("3diebench", tree, "train", image_size=32, stream="memory")
    assert isinstance(streamed.images, DiskImages) and isinstance(in_memory.images, torch.Tensor)
    assert streamed.images.shape == in_memory.images.shape
    rows = torch.tensor([399, 0, 7, 7, 250])
    assert torch.equal(streamed.images[rows], in_memory.images[rows])
    assert torch.equal(streamed.images[:], in_memory.images)
    for key in ("quat", "euler", "scene"):
        assert torch.equal(streamed.latents[key], in_memory.latents[key])
    assert torch.equal(streamed.groups, in_memory.groups) and torch.equal(streamed.labels, in_memory.labels)
    cache = next((tree / "3DIEBench-cache").iterdir())
    assert np.array_equal(np.load(cache / "images.npy", mmap_mode="r")[3], in_memory.images[3].numpy())


def test_the_cache_is_built_once_and_reused(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_dataset("3diebench", tree, "train", image_size=32, stream="disk")

    def no_decode(*args: object) -> None:
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(iebench, "_decode", no_decode)
    again = load_dataset("3diebench", tree, "train", image_size=32, stream="disk")
    assert len(again) == 400
    with pytest.raises(AssertionError, match="rebuilt"):  # another image size is another cache
        load_dataset("3diebench", tree, "train", image_size=24, stream="disk")


def test_an_interrupted_build_is_redone(tree: Path) -> None:
    load_dataset("3diebench", tree, "train", image_size=32, stream="disk", num=2)
    cache = next((tree / "3DIEBench-cache").iterdir())
    (cache / "done.json").unlink()  # what a build killed before its end leaves
    ds = load_dataset("3diebench", tree, "train", image_size=32, stream="disk", num=2)
    assert (cache / "done.json").is_file() and len(ds) == 100


def test_streamed_sampler_gives_the_same_views_as_the_in_memory_one(tree: Path) -> None:
    views = ViewsConfig(kind="quat")
    samplers, seqs = [], []
    for stream in ("disk", "memory"):
        ds = load_dataset("3diebench", tree, "train", image_size=32, stream=stream)
        torch.manual_seed(5)
        samplers.append(build_view_sampler(ds, views, "cpu"))
        seqs.append(samplers[-1].sample(torch.tensor([3, 1, 6, 0]), 4))
    assert samplers[0].streamed and not samplers[1].streamed
    assert torch.allclose(samplers[0].mean, samplers[1].mean) and torch.allclose(samplers[0].std, samplers[1].std)
    assert torch.equal(seqs[0].views, seqs[1].views) and torch.equal(seqs[0].actions, seqs[1].actions)


def test_lab_train_runs_a_streamed_split_over_its_cap(tree: Path, tmp_path: Path) -> None:
    raw = tiny_config(tmp_path / "runs", data={"name": "3diebench", "root": str(tree), "image_size": 32,
                                               "memory_gib": CAP_GIB, "num_train": None, "num_test": None,
                                               "views": {"kind": "quat"}})
    raw["train"]["batch_size"] = 4
    raw["gates"] = []
    path = tmp_path / "stream.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert results["eval.chance"] == 0.5


_PEAK = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    from lab.config import ViewsConfig
    from lab.data.base import ImageDataset
    from lab.data.disk.cache import DiskImages
    from lab.data.views import build_view_sampler

    images = DiskImages(sys.argv[1])
    n = len(images)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ds = ImageDataset("3diebench", images, torch.zeros(n, dtype=torch.long), 2,
                      groups=torch.arange(n // 50).repeat_interleave(50),
                      latents={"quat": torch.nn.functional.normalize(torch.randn(n, 4), dim=1)})
    sampler = build_view_sampler(ds, ViewsConfig(kind="quat"), "cpu")
    for step in range(20):
        seq = sampler.sample(torch.randint(0, n // 50, (32,)), 4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mib": (peak - before) / 1024, "views": list(seq.views.shape)}))
""")


def test_reading_a_split_larger_than_the_cap_keeps_memory_bounded(tmp_path: Path) -> None:
    """A 2 GiB cache (a sparse file: no disk used) read by a sampler in a fresh process: peak RSS grows
    by far less than the split (the bound in docs/scale.md: batch buffers + per-image metadata)."""
    n, shape = 50 * 3500, (3, 64, 64)  # 175,000 renders × 12 KiB = 2.0 GiB
    path = tmp_path / "images.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)})
        f.truncate(f.tell() + n * int(np.prod(shape)))
    split_mib = n * np.prod(shape) / 2**20
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, timeout=240,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["views"] == [32, 4, 3, 64, 64]
    assert figures["growth_mib"] < 256 < split_mib / 8, figures
