"""This machine's cache of values computed once (core.files.cached): dataset digests and sequential calibrations
are computed again exactly when what they depend on changes, and a cache that cannot be used only costs time."""
import pytest

from plasticity_nb.analysis import sequential
from plasticity_nb.core.files import cached
from plasticity_nb.data import images


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
