"""This machine's cache of values computed once (core.files.cached, cached_array): dataset digests, decompressed
images and sequential calibrations are computed again exactly when what they depend on changes, and a cache that
cannot be used only costs time."""
import dataclasses

import numpy as np
import pytest

from plasticity_nb.analysis import sequential
from plasticity_nb.core.files import cached, cached_array
from plasticity_nb.data import images
from plasticity_nb.data.datasets import DATASETS


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_value_is_computed_once_per_key(cache):
    calls = []
    compute = lambda: calls.append(1) or len(calls)
    assert cached("table", "a", compute) == 1
    assert cached("table", "a", compute) == 1 and cached("table", "b", compute) == 2
    assert len(calls) == 2 and (cache / "table.json").exists()


def test_a_damaged_or_unwritable_cache_only_computes_again(cache, monkeypatch):
    cache.mkdir()
    (cache / "table.json").write_text("{not json")
    assert cached("table", "a", lambda: 7) == 7
    assert cached("table", "a", lambda: 8) == 7  # rewritten whole
    monkeypatch.setenv("PLASTICITY_CACHE", str(cache / "table.json" / "below-a-file"))  # cannot be created
    assert cached("table", "a", lambda: 9) == 9


def test_a_rewritten_file_is_hashed_again(cache, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"one")
    first = images._sha256(path)
    assert images._sha256(path) == first == images._hash_file(path)
    path.write_bytes(b"two")  # a new size and modification time
    assert images._sha256(path) == images._hash_file(path) != first


def test_a_cached_calibration_equals_the_simulation(cache):
    looks, level = (3, 6), 0.05
    computed = sequential._calibrate(looks, level, sequential.OBRIEN_FLEMING, True)
    sequential.calibration.cache_clear()
    assert sequential.calibration(looks, level, sequential.OBRIEN_FLEMING, True) == computed  # simulated, stored
    sequential.calibration.cache_clear()
    assert sequential.calibration(looks, level, sequential.OBRIEN_FLEMING, True) == computed  # read back
    assert len(list((cache / "calibration.json").read_text().splitlines())) > 1


def test_an_array_is_computed_once_and_a_truncated_copy_again(cache):
    calls = []
    compute = lambda: calls.append(1) or np.arange(1000, dtype=np.uint8)
    first = cached_array("numbers", compute)
    assert np.array_equal(cached_array("numbers", compute), first) and len(calls) == 1
    path = cache / "arrays" / "numbers.npy"
    path.write_bytes(path.read_bytes()[:200])  # a copy cut short (a full disk, a kill)
    assert np.array_equal(cached_array("numbers", compute), first) and len(calls) == 2


def test_images_decoded_from_the_cache_equal_the_archives(cache, tmp_path):
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "train.npz", images=pictures, labels=np.arange(20) % 10)
    spec = dataclasses.replace(DATASETS["cifar10"], train_size=20)
    digest = images._sha256(tmp_path / "train.npz")
    for _ in range(2):  # decompressed, then read back from the cache
        read, labels = images._read_npz(spec, tmp_path / "train.npz", 20, digest)
        assert np.array_equal(read(), pictures) and labels.tolist() == (np.arange(20) % 10).tolist()
    assert len(list((cache / "arrays").iterdir())) == 1
