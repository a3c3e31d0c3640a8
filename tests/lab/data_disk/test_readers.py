"""Each reader on tiny files written in its format: shapes, dtype, labels, pixels, errors."""

import pickle

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lab.data.base import DatasetMissingError
from lab.data.disk import load_3diebench, load_cifar10, load_cifar100, load_mnist, load_stl10


def assert_images(ds, expected: np.ndarray, labels: np.ndarray):
    assert ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
    assert ds.images.shape == expected.shape
    assert torch.equal(ds.images, torch.from_numpy(expected))
    assert ds.labels.tolist() == list(labels)


def test_cifar10_train_concatenates_batches_and_test_reads_test_batch(tmp_path, writers):
    truth = writers["cifar10"](tmp_path)
    train, test = load_cifar10(tmp_path, "train"), load_cifar10(tmp_path, "test")
    assert_images(train, truth["train_x"], truth["train_y"])
    assert_images(test, truth["test_x"], truth["test_y"])
    assert train.num_classes == 10 and train.class_names[:2] == ["c0", "c1"]


def test_cifar100_reads_fine_labels(tmp_path, writers):
    truth = writers["cifar100"](tmp_path)
    ds = load_cifar100(tmp_path, "train")
    assert_images(ds, truth["train_x"], truth["train_y"])
    assert ds.num_classes == 100 and ds.class_names[99] == "f99"
    assert len(load_cifar100(tmp_path, "test")) == 3


def test_cifar_pickle_with_code_is_refused(tmp_path, writers):
    writers["cifar100"](tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_cifar100(tmp_path, "train")


@pytest.mark.parametrize(("gz", "folder"), [(True, "MNIST/raw"), (False, "mnist")])
def test_mnist_idx_plain_or_gzipped(tmp_path, writers, gz, folder):
    truth = writers["mnist"](tmp_path, gz=gz, folder=folder)
    ds = load_mnist(tmp_path, "train")
    assert_images(ds, truth["train_x"][:, None], truth["train_y"])
    assert load_mnist(tmp_path, "test").images.shape == (3, 1, 28, 28)


def test_mnist_truncated_file_names_the_file(tmp_path, writers):
    writers["mnist"](tmp_path, gz=False)
    path = tmp_path / "MNIST/raw/train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: header says"):
        load_mnist(tmp_path, "train")


def test_stl10_column_major_images_and_labels(tmp_path, writers):
    truth = writers["stl10"](tmp_path)
    ds = load_stl10(tmp_path, "train")
    assert_images(ds, truth["train_x"], truth["train_y"])
    assert ds.labels.tolist() == [0, 9, 4] and ds.class_names[0] == "n0"
    unlabeled = load_stl10(tmp_path, "unlabeled")
    assert_images(unlabeled, truth["unlabeled_x"], [-1] * 4)


def test_3diebench_groups_labels_and_quaternions(tmp_path, writers):
    folder = writers["3diebench"](tmp_path, views=3, size=24)
    ds = load_3diebench(tmp_path, "train", views_per_object=3, image_size=8)
    # 2 synsets × 5 objects, every fifth object held out for test: 4 train objects per synset.
    assert ds.images.shape == (2 * 4 * 3, 3, 8, 8) and ds.images.dtype == torch.uint8
    assert ds.groups.tolist() == [g for g in range(8) for _ in range(3)]
    assert ds.labels.tolist() == [0] * 12 + [1] * 12 and ds.class_names == ["00000000", "01000000"]
    latent = np.load(folder / "00000000/obj1/latent_2.npy")
    expected = Rotation.from_euler("xyz", latent[:3]).as_quat()
    assert torch.allclose(ds.latents["quat"][5], torch.tensor(expected, dtype=torch.float32), atol=1e-6)
    assert ds.latents["scene"].shape == (24, 4)
    # Solid-colour renders: green channel encodes the view index (3 × view).
    assert abs(int(ds.images[5, 1].float().mean()) - 6) <= 2
    test = load_3diebench(tmp_path, "test", views_per_object=2, image_size=8)
    assert len(test) == 2 * 1 * 2 and test.groups.unique().numel() == 2


def test_3diebench_split_files_and_subset(tmp_path, writers):
    folder = writers["3diebench"](tmp_path, views=2)
    np.save(folder / "train_images.npy", np.array(["/01000000/obj3", "/00000000/obj0", "/00000000/obj4"]))
    np.save(folder / "train_labels.npy", np.array([7, 2, 2]))
    ds = load_3diebench(tmp_path, "train", views_per_object=2, image_size=8)
    assert ds.labels.tolist() == [7, 7, 2, 2, 2, 2] and ds.num_classes == 8 and ds.class_names[7] == "01000000"
    sub = load_3diebench(tmp_path, "train", views_per_object=2, image_size=8, num_objects=2, seed=1)
    assert sub.groups.unique().numel() == 2 and len(sub) == 4


def test_3diebench_refuses_a_load_that_would_not_fit(tmp_path, writers):
    writers["3diebench"](tmp_path, views=1)
    with pytest.raises(ValueError, match="lower num_objects, views_per_object or image_size"):
        load_3diebench(tmp_path, "train", views_per_object=1, image_size=128, max_gib=1e-6)


@pytest.mark.parametrize(("loader", "where"), [
    (load_cifar10, "cifar-10-batches-py"), (load_cifar100, "cifar-100-python"),
    (load_mnist, "MNIST/raw"), (load_stl10, "stl10_binary"), (load_3diebench, "3DIEBench"),
])
def test_missing_dataset_says_where_it_looked_and_the_layout(tmp_path, loader, where):
    with pytest.raises(DatasetMissingError) as info:
        loader(tmp_path, "train")
    message = str(info.value)
    assert f"looked in: {tmp_path / where}" in message
    assert "expected layout" in message and "lab data download" in message


def test_incomplete_folder_names_the_missing_files(tmp_path, writers):
    writers["cifar10"](tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetMissingError, match="lacks test_batch"):
        load_cifar10(tmp_path, "train")


def test_unknown_split_lists_the_valid_ones(tmp_path, writers):
    writers["cifar10"](tmp_path)
    with pytest.raises(ValueError, match="choose one of train, test"):
        load_cifar10(tmp_path, "val")


def test_registry_subsets_3diebench_by_object_while_reading(tmp_path, writers):
    """The registry hands `num` and `image_size` to the reader, so the full set is never loaded."""
    from lab.data.registry import load_dataset

    writers["3diebench"](tmp_path)
    ds = load_dataset("3diebench", tmp_path, "train", num=2, image_size=8)
    assert ds.images.shape[1:] == (3, 8, 8)
    assert len(set(ds.groups.tolist())) == 2 and len(ds) == 2 * 50
