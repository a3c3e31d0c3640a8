"""`lab data check` and `lab data download` through typer's CliRunner."""

import re

import pytest
from typer.testing import CliRunner

import lab.data.disk.download as download_module
from lab.data.cli import app

runner = CliRunner()


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_check_reports_splits_counts_shapes_and_size(tmp_path, writers):
    writers["cifar10"](tmp_path)
    result = runner.invoke(app, ["check", "cifar10", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = plain(result.output)
    assert "cifar10 at" in out and "10 classes: c0, c1" in out and "KiB on disk" in out
    assert re.search(r"train │ 15 │ \(3, 32, 32\) │ 10", out) and re.search(r"test │ 2 │", out)


def test_check_reads_the_root_from_the_environment(tmp_path, writers):
    writers["stl10"](tmp_path)
    result = runner.invoke(app, ["check", "stl10"], env={"LAB_DATA_ROOT": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert re.search(r"unlabeled │ 4 │ \(3, 96, 96\)", plain(result.output))


def test_check_3diebench_counts_objects_and_views(tmp_path, writers):
    writers["3diebench"](tmp_path, views=2)
    result = runner.invoke(app, ["check", "3diebench", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = plain(result.output)
    assert re.search(r"train │ 16 │ \(3, 128, 128\) │ 2", out) and "8 objects × 2 views" in out


def test_check_missing_dataset_prints_layout_and_exits_1(tmp_path):
    result = runner.invoke(app, ["check", "mnist", "--data-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "looked in:" in result.output and "train-images-idx3-ubyte" in result.output


def test_check_malformed_file_exits_1_with_the_file(tmp_path, writers):
    writers["mnist"](tmp_path, gz=False)
    (tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte").write_bytes(b"garbage!")
    result = runner.invoke(app, ["check", "mnist", "--data-root", str(tmp_path)])
    assert result.exit_code == 1 and "t10k-labels-idx1-ubyte is not an idx file" in plain(result.output)


def test_check_unknown_name_exits_2():
    result = runner.invoke(app, ["check", "imagenet"])
    assert result.exit_code == 2 and "choose one of" in result.output


def test_check_embedded_shapes():
    result = runner.invoke(app, ["check", "digits"])
    assert result.exit_code == 0, result.output
    assert "embedded" in result.output and "10 classes" in result.output


@pytest.mark.parametrize("name", ["cifar100", "3diebench"])
def test_download_without_torchvision_prints_instructions(tmp_path, monkeypatch, name):
    monkeypatch.setattr(download_module, "torchvision_datasets", lambda: None)
    result = runner.invoke(app, ["download", name, "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Nothing downloaded" in result.output and "https://" in result.output
    assert f"lab data check {name}" in plain(result.output)
    assert not any(tmp_path.iterdir())


def test_download_embedded_needs_nothing():
    result = runner.invoke(app, ["download", "shapes"])
    assert result.exit_code == 0 and "nothing to download" in result.output
