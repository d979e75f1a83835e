import hashlib

import numpy as np
import pytest
import torch

from plasticity_nb.data.cifar10 import load_cifar10, normalise
from plasticity_nb.data.datasets import DataError
from plasticity_nb.data.images import Split, augment, class_balanced_subset
from plasticity_nb.execution.runner import run
from tests.helpers import run_folders, tiny_run


def test_loaded_arrays_are_cifar10(cifar):
    assert cifar.train_images.shape == (50000, 3, 32, 32) and cifar.train_images.dtype == torch.uint8
    assert cifar.test_images.shape == (10000, 3, 32, 32)
    assert torch.bincount(cifar.train_labels).tolist() == [5000] * 10
    assert torch.bincount(cifar.test_labels).tolist() == [1000] * 10
    assert cifar.data_id


def test_split_sizes_and_class_balance(cifar):
    split = Split.draw(cifar.train_labels, 5000, seed=3, num_classes=10)
    assert len(split.full) == 5000 and len(split.half) == 2500
    assert torch.bincount(cifar.train_labels[split.full]).tolist() == [500] * 10
    assert torch.bincount(cifar.train_labels[split.half]).tolist() == [250] * 10
    assert len(set(split.full.tolist())) == 5000
    assert set(split.half.tolist()) <= set(split.full.tolist())


def test_split_is_seeded(cifar):
    a, b, c = (Split.draw(cifar.train_labels, 2000, seed=s, num_classes=10) for s in (1, 1, 2))
    assert torch.equal(a.full, b.full) and torch.equal(a.half, b.half)
    assert not torch.equal(a.full, c.full)


def test_uneven_subset_is_as_balanced_as_possible(cifar):
    idx = class_balanced_subset(cifar.train_labels, 1003, torch.Generator().manual_seed(0), 10)
    counts = torch.bincount(cifar.train_labels[idx], minlength=10)
    assert counts.sum() == 1003 and counts.max() - counts.min() == 1


def test_normalise_uses_fixed_statistics():
    images = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    out = normalise(images)
    assert torch.allclose(out[:, 0], torch.tensor((1 - 0.4914) / 0.2470))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_augment_is_crop_and_flip_of_the_padded_image():
    batch = torch.randn(16, 3, 32, 32)
    out = augment(batch, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # replay the same draws
    dy, dx = torch.randint(0, 9, (16,), generator=g), torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4))
    for i in range(16):
        expected = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        expected = expected.flip(-1) if flip[i] else expected
        assert torch.equal(out[i], expected)


# --------------------------------------------------------------------------- bad data: one clear error

def _write(folder, n_train=50000, n_test=10000, shape=(32, 32, 3), labels_max=9, sums=True):
    folder.mkdir(exist_ok=True)
    for name, n in (("train.npz", n_train), ("test.npz", n_test)):
        np.savez_compressed(folder / name, images=np.zeros((n, *shape), np.uint8),
                            labels=np.arange(n, dtype=np.int64) % (labels_max + 1))
    if sums:
        lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}" for n in ("train.npz", "test.npz")]
        (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


def test_a_valid_folder_loads(tmp_path):
    data = load_cifar10(_write(tmp_path / "ok"))
    assert data.train_images.shape == (50000, 3, 32, 32) and data.data_id.startswith("npz-")


def test_missing_folder_names_where_it_looked(tmp_path):
    with pytest.raises(DataError, match="does not exist.*PLASTICITY_DATA"):
        load_cifar10(tmp_path / "nowhere")


def test_missing_file(tmp_path):
    folder = _write(tmp_path / "d", sums=False)
    (folder / "test.npz").unlink()
    with pytest.raises(DataError, match="test.npz is missing"):
        load_cifar10(folder)


def test_checksum_mismatch(tmp_path):
    folder = _write(tmp_path / "d")
    (folder / "SHA256SUMS").write_text("0" * 64 + "  train.npz\n")
    with pytest.raises(DataError, match="checksum mismatch for .*train.npz"):
        load_cifar10(folder)


def test_truncated_npz(tmp_path):
    folder = _write(tmp_path / "d", sums=False)
    raw = (folder / "train.npz").read_bytes()
    (folder / "train.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_cifar10(folder)


def test_wrong_shape(tmp_path):
    with pytest.raises(DataError, match=r"images must be uint8 of shape \(50000, 32, 32, 3\)"):
        load_cifar10(_write(tmp_path / "d", shape=(28, 28, 3), sums=False))


def test_label_out_of_range(tmp_path):
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.9"):
        load_cifar10(_write(tmp_path / "d", labels_max=10, sums=False))


def test_images_are_decoded_on_first_use_only(tmp_path):
    # Planning runs and loading stored ones need only the fingerprint; decompressing 150 MB costs ~1 s.
    data = load_cifar10(_write(tmp_path / "lazy"))
    assert "_images" not in vars(data)
    assert data.test_images.shape == (10000, 3, 32, 32) and "_images" in vars(data)


def test_a_damaged_image_array_fails_before_a_run_writes_anything(tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for name, n in (("train.npz", 50000), ("test.npz", 10000)):  # stored uncompressed: the zip stays readable
        np.savez(folder / name, images=np.zeros((n, 32, 32, 3), np.uint8), labels=np.arange(n) % 10)
    raw = bytearray((folder / "train.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside images.npy: only its CRC check can tell
    (folder / "train.npz").write_bytes(bytes(raw))
    data = load_cifar10(folder)  # header and labels are fine
    with pytest.raises(DataError, match="train.npz is truncated or corrupt"):
        data.decode()
    out = tmp_path / "out"
    with pytest.raises(DataError, match="train.npz is truncated or corrupt"):
        run(tiny_run(), out_dir=out, data_dir=folder)
    assert not run_folders(out)
