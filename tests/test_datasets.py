"""CIFAR-100 and SVHN beside CIFAR-10: their descriptions, small synthetic copies in torchvision's on-disk format
(CIFAR-100's pickles, SVHN's .mat files) and in the npz format, their fingerprints in the run key, the run fields
they bound, and a tiny training run with a 100-way output. No real copy is needed: the official sizes are the
description's to check, and the `small` fixture puts descriptions with the copies' sizes in the registry."""
import dataclasses
import hashlib
import pickle

import numpy as np
import pytest
import scipy.io
import torch

from plasticity_nb import ConfigError, DataError
from plasticity_nb.data import cifar10, images
from plasticity_nb.data.datasets import DATASETS, dataset_spec
from plasticity_nb.data.images import check_balanced, load_dataset, normalise
from plasticity_nb.execution.runner import run
from plasticity_nb.training.run_tensors import check_fits
from plasticity_nb.training.train import train_run
from tests.helpers import run_folders, tiny_run

SIZES = {"cifar10": (200, 100), "cifar100": (400, 240), "svhn": (400, 240)}  # (train, test) of the small copies


@pytest.fixture
def small(monkeypatch, tmp_path):
    """Descriptions with the small copies' sizes (everything else as the real ones), and no real data in reach: no
    environment variable, a default folder of our own, downloads off."""
    for name, (train, test) in SIZES.items():
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], train_size=train, test_size=test))
        monkeypatch.delenv(DATASETS[name].env, raising=False)
    monkeypatch.setattr(images, "default_data_root", lambda: tmp_path / "default")
    monkeypatch.setenv("PLASTICITY_OFFLINE", "1")
    images._load_cached.cache_clear()  # a copy loaded under an equal description in another test is not this one
    yield
    images._load_cached.cache_clear()


def _labels(name: str, n: int, seed: int = 0) -> np.ndarray:
    """Every class equally often (in a shuffled order), so class-balanced subsets fit."""
    classes = dataset_spec(name).num_classes
    return np.random.default_rng(seed).permutation(np.arange(n) % classes)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def write_cifar100(root, seed=0, data=None, labels=None, skip=()):
    """torchvision's CIFAR-100 layout: cifar-100-python/{train,test}, pickled dicts of 'data' uint8 (N, 3072) rows in
    channel-major order and 'fine_labels'."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in zip(("train", "test"), SIZES["cifar100"]):
        if name in skip:
            continue
        rows = _images(n, seed).transpose(0, 3, 1, 2).reshape(n, 3072) if data is None else data(n)
        fine = _labels("cifar100", n, seed) if labels is None else labels(n)
        entry = {"data": rows, "fine_labels": [int(x) for x in fine], "coarse_labels": [int(x) // 5 for x in fine]}
        (folder / name).write_bytes(pickle.dumps(entry))
    return root


def write_svhn(root, seed=0, X=None, y=None, sizes=None):
    """torchvision's SVHN layout: {train,test}_32x32.mat with X uint8 (32, 32, 3, N) and y (N, 1) in 1..10, where
    10 is the digit 0."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "test"), sizes or SIZES["svhn"]):
        digits = _labels("svhn", n, seed)
        values = {"X": _images(n, seed).transpose(1, 2, 3, 0) if X is None else X(n),
                  "y": (np.where(digits == 0, 10, digits) if y is None else y(n)).astype(np.uint8).reshape(n, 1)}
        scipy.io.savemat(root / f"{split}_32x32.mat", values)
    return root


def write_npz(folder, name, seed=0, labels=None):
    folder.mkdir(parents=True)
    for split, n in zip(("train", "test"), SIZES[name]):
        np.savez(folder / f"{split}.npz", images=_images(n, seed),
                 labels=_labels(name, n, seed) if labels is None else labels(n))
    return folder


# ------------------------------------------------------------------------------------------ descriptions

def test_each_dataset_is_described_once():
    assert {n: (s.num_classes, s.train_size, s.test_size) for n, s in DATASETS.items()} == {
        "cifar10": (10, 50000, 10000), "cifar100": (100, 50000, 10000), "svhn": (10, 73257, 26032)}
    assert (DATASETS["cifar100"].mean, DATASETS["cifar100"].std) == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    assert (DATASETS["svhn"].mean, DATASETS["svhn"].std) == ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
    assert list(DATASETS["cifar100"].classes) == sorted(DATASETS["cifar100"].classes)  # the meta file's order
    assert DATASETS["svhn"].classes == tuple("0123456789")
    # CIFAR-10's names for the scripts that use them are its description's values
    assert (cifar10.MEAN, cifar10.STD) == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    assert {s.env for s in DATASETS.values()} == {"PLASTICITY_DATA", "PLASTICITY_DATA_CIFAR100", "PLASTICITY_DATA_SVHN"}


def test_an_unknown_dataset_is_refused_naming_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnist': choose one of cifar10, cifar100, svhn"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="dataset is 'mnist': choose from 'cifar10', 'cifar100', 'svhn'"):
        tiny_run(dataset="mnist")


def test_normalise_uses_the_datasets_statistics():
    white = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    assert torch.allclose(normalise(white, DATASETS["svhn"])[:, 0], torch.tensor((1 - 0.4377) / 0.1980))
    assert torch.allclose(normalise(white, DATASETS["cifar100"])[:, 2], torch.tensor((1 - 0.4409) / 0.2762))


# ------------------------------------------------------------------------------------------ loading

def test_cifar100_in_torchvisions_format(small, tmp_path):
    data = load_dataset("cifar100", write_cifar100(tmp_path / "c100"))
    with open(tmp_path / "c100" / "cifar-100-python" / "train", "rb") as f:
        entry = pickle.load(f)
    assert data.train_images.shape == (400, 3, 32, 32) and data.test_images.shape == (240, 3, 32, 32)
    assert torch.equal(data.train_images[7], torch.from_numpy(entry["data"][7].reshape(3, 32, 32)))  # as torchvision
    assert data.train_labels.tolist() == entry["fine_labels"] and data.train_labels.max() == 99
    assert data.data_id.startswith("cifar100-torchvision-") and data.spec.name == "cifar100"


def test_svhn_in_torchvisions_format_maps_10_to_the_digit_0(small, tmp_path):
    data = load_dataset("svhn", write_svhn(tmp_path / "svhn"))
    mat = scipy.io.loadmat(tmp_path / "svhn" / "train_32x32.mat")
    assert 10 in mat["y"] and 0 not in mat["y"]
    assert data.train_labels.tolist() == [0 if v == 10 else int(v) for v in mat["y"].ravel()]
    assert torch.equal(data.train_images[5], torch.from_numpy(mat["X"][..., 5].transpose(2, 0, 1)))  # as torchvision
    assert data.test_images.shape == (240, 3, 32, 32) and data.data_id.startswith("svhn-torchvision-")


@pytest.mark.parametrize("name", ["cifar100", "svhn"])
def test_npz_format(small, tmp_path, name):
    folder = write_npz(tmp_path / name, name)
    data = load_dataset(name, folder)
    with np.load(folder / "train.npz") as arrays:
        assert torch.equal(data.train_images, torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2))
    assert data.data_id.startswith(f"{name}-npz-")


def test_each_dataset_reads_its_own_environment_variable(small, tmp_path, monkeypatch):
    monkeypatch.setenv("PLASTICITY_DATA", str(write_npz(tmp_path / "c10", "cifar10")))  # CIFAR-10's only
    with pytest.raises(DataError, match="SVHN not found.*PLASTICITY_DATA_SVHN"):
        load_dataset("svhn")
    monkeypatch.setenv("PLASTICITY_DATA_SVHN", str(write_svhn(tmp_path / "svhn")))
    assert load_dataset("svhn").source.startswith(str(tmp_path / "svhn"))
    assert load_dataset("cifar10").data_id.startswith("npz-")


def test_cifar10_fingerprints_are_the_ones_stored_runs_hold(small, tmp_path):
    folder = write_npz(tmp_path / "c10", "cifar10")
    digests = [hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in ("train.npz", "test.npz")]
    expected = "npz-" + hashlib.sha256("".join(digests).encode()).hexdigest()[:12]
    assert load_dataset("cifar10", folder).data_id == expected


def test_fingerprints_tell_datasets_and_copies_apart_and_are_in_the_run_key(small, tmp_path):
    folder = write_npz(tmp_path / "digits", "svhn")  # labels 0..9: a valid copy of either
    assert load_dataset("cifar100", folder).data_id != load_dataset("svhn", folder).data_id
    ids = {load_dataset("svhn", write_svhn(tmp_path / f"svhn{s}", seed=s)).data_id for s in (0, 1)}
    assert len(ids) == 2
    assert load_dataset("svhn", tmp_path / "svhn0").data_id in ids  # the same copy, the same fingerprint
    keys = {tiny_run(dataset="svhn", data_id=i).key() for i in ids}
    assert len(keys) == 2


def test_download_goes_through_torchvision_into_the_default_folder(small, tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeSVHN:  # what torchvision's class leaves on disk, without the network
        def __init__(self, root, split, download):
            calls.append((root, split, download))
            n = SIZES["svhn"][split == "test"]
            scipy.io.savemat(f"{root}/{split}_32x32.mat", {"X": _images(n).transpose(1, 2, 3, 0),
                                                            "y": np.full((n, 1), 10, np.uint8)})

    monkeypatch.setattr(torchvision.datasets, "SVHN", FakeSVHN)
    (tmp_path / "default").mkdir()
    with pytest.raises(DataError, match="not there, and downloads are off"):
        load_dataset("svhn")
    monkeypatch.delenv("PLASTICITY_OFFLINE")
    data = load_dataset("svhn")
    assert calls == [(str(tmp_path / "default"), "train", True), (str(tmp_path / "default"), "test", True)]
    assert data.train_labels.unique().tolist() == [0]
    load_dataset("svhn", tmp_path / "default")  # now there: read, not downloaded again
    assert len(calls) == 2


# ------------------------------------------------------------------------------------------ bad copies

def _bad_cifar100(root, **kwargs):
    return load_dataset("cifar100", write_cifar100(root, **kwargs))


def _bad_svhn(root, **kwargs):
    return load_dataset("svhn", write_svhn(root, **kwargs))


@pytest.mark.parametrize("make,message", [
    (lambda r: _bad_cifar100(r, data=lambda n: np.zeros((n, 3000), np.uint8)),
     r"'data' must be uint8 of shape \(400, 3072\), got uint8 \(400, 3000\)"),
    (lambda r: _bad_cifar100(r, labels=lambda n: np.arange(n) % 101),
     r"CIFAR-100 labels must lie in 0\.\.99, got 0\.\.100"),
    (lambda r: _bad_cifar100(r, skip=("test",)), r"cifar-100-python/test is missing \(CIFAR-100 in torchvision"),
    (lambda r: _bad_svhn(r, y=lambda n: np.arange(n) % 10),
     r"SVHN's y must lie in 1\.\.10 \(10 is the digit 0\), got 0\.\.9"),
    (lambda r: _bad_svhn(r, X=lambda n: np.zeros((28, 28, 3, n), np.uint8)),
     r"X must be uint8 of shape \(32, 32, 3, 400\), got uint8 \(28, 28, 3, 400\)"),
    (lambda r: _bad_svhn(r, sizes=(399, 240)), r"X must be uint8 of shape \(32, 32, 3, 400\)"),
    (lambda r: load_dataset("svhn", write_npz(r, "svhn", labels=lambda n: np.arange(n) % 11)),
     r"SVHN labels must lie in 0\.\.9, got 0\.\.10"),
    (lambda r: load_dataset("svhn", r / "nowhere"), r"SVHN data folder .*nowhere does not exist \(from data_dir / "
                                                    r"PLASTICITY_DATA_SVHN\)"),
])
def test_a_bad_copy_gets_one_error_naming_the_file_and_what_is_wrong(small, tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        make(tmp_path / "copy")


def test_an_empty_folder_says_how_to_provide_the_dataset(small, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train.npz is missing \\(CIFAR-100\\)") as raised:
        load_dataset("cifar100", tmp_path / "empty")
    assert "PLASTICITY_DATA_CIFAR100" in str(raised.value) and "cifar-100-python/train" in str(raised.value)


def test_damaged_files_are_named(small, tmp_path):
    root = write_cifar100(tmp_path / "c100")
    train = root / "cifar-100-python" / "train"
    train.write_bytes(train.read_bytes()[:1000])
    with pytest.raises(DataError, match="cifar-100-python/train is truncated or corrupt"):
        load_dataset("cifar100", root)
    (train).write_bytes(pickle.dumps({"data": np.zeros((400, 3072), np.uint8)}))
    with pytest.raises(DataError, match="lacks 'fine_labels'"):
        load_dataset("cifar100", root)
    root = write_svhn(tmp_path / "svhn")
    scipy.io.savemat(root / "test_32x32.mat", {"y": np.ones((100, 1), np.uint8)})
    with pytest.raises(DataError, match="test_32x32.mat lacks the variable 'X'"):
        load_dataset("svhn", root)


def test_the_official_sizes_are_checked_on_a_real_description(tmp_path):
    """Without the test-only descriptions, a small copy is not SVHN."""
    with pytest.raises(DataError, match=r"X must be uint8 of shape \(32, 32, 3, 73257\)"):
        load_dataset("svhn", write_svhn(tmp_path / "svhn"))


# ------------------------------------------------------------------------------------------ runs on a dataset

def test_run_fields_are_bounded_by_the_runs_dataset():
    with pytest.raises(ConfigError, match=r"train_subset must be in \(0, 73257\], got 80000 \(SVHN has 73257 training"):
        tiny_run(dataset="svhn", train_subset=80000)
    assert tiny_run(dataset="svhn", train_subset=60000).train_subset == 60000  # more than CIFAR-10 has
    with pytest.raises(ConfigError, match=r"test_subset must be in \(0, 10000\], got 20000 \(CIFAR-100 has 10000 test"):
        tiny_run(dataset="cifar100", test_subset=20000)
    multistage = dict(phases=({"pool": "stage", "stage": 1}, {}), stages=20, uniform_ratio=0.5)
    with pytest.raises(ConfigError, match=r"stages must be in \[1, 9\], got 20 \(n\+1 class groups of SVHN's 10"):
        tiny_run(dataset="svhn", **multistage)
    assert tiny_run(dataset="cifar100", train_subset=5000, **multistage).stages == 20


def test_a_study_sweeps_stages_up_to_its_datasets_classes():
    from plasticity_nb.studies import multistage

    on_cifar100 = multistage.Config.from_preset("smoke", stages=[10], shift_stages=10, dataset="cifar100",
                                                train_subset=5000)
    assert on_cifar100.stages == (10,) and {c.dataset for _, c in on_cifar100.plan()} == {"cifar100"}
    with pytest.raises(ConfigError, match=r"stages has 10 in \[10\]: each must be in \[1, 9\] \(n\+1 class groups of "
                                          r"SVHN's 10 classes\)"):
        multistage.Config.from_preset("smoke", stages=[10], shift_stages=10, dataset="svhn")


def test_an_unbalanced_dataset_refuses_a_balanced_subset_larger_than_its_smallest_class(small, tmp_path):
    def skewed(n):  # 15 of the 7s become 8s: as in SVHN, some digits are rarer than others
        labels = np.arange(n) % 10
        labels[np.flatnonzero(labels == 7)[:15]] = 8
        return labels

    data = load_dataset("svhn", write_npz(tmp_path / "svhn", "svhn", labels=skewed))
    assert torch.bincount(data.train_labels).tolist() == [40] * 7 + [25, 55, 40]
    check_balanced("train_subset", 250, data.train_labels, data.spec, "training")  # 25 of each class
    with pytest.raises(ConfigError, match=r"train_subset 251 cannot be class-balanced on SVHN: its smallest class "
                                          r"\('7'\) has 25 training images in this copy, so a class-balanced "
                                          r"train_subset is at most 250"):
        check_fits(tiny_run(dataset="svhn", train_subset=251, test_subset=None), data)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="test_subset 200 cannot be class-balanced on SVHN: .* at most 90"):
        run(tiny_run(dataset="svhn", train_subset=200), data=data, out_dir=out)
    assert not run_folders(out)


def test_data_of_another_dataset_is_refused(small, tmp_path):
    data = load_dataset("svhn", write_svhn(tmp_path / "svhn"))
    with pytest.raises(ConfigError, match="the run is on dataset 'cifar100' but the data given is 'svhn'"):
        check_fits(tiny_run(dataset="cifar100"), data)


def test_a_tiny_run_on_cifar100_has_a_100_way_output_and_trains(small, tmp_path, one_thread):
    # learnable: each class its own colour, so a few epochs bring the loss below chance's ln 100
    labels = _labels("cifar100", 400)
    colours = np.random.default_rng(3).integers(0, 256, (100, 3), dtype=np.uint8)
    rows = lambda n: np.repeat(colours[labels[:n] if n == 400 else _labels("cifar100", n)], 1024, axis=1)
    root = write_cifar100(tmp_path / "c100", data=rows, labels=lambda n: labels if n == 400 else _labels("cifar100", n))
    data = load_dataset("cifar100", root)
    phases = ({"pool": "half", "epochs": 2, "lr": 1e-2}, {"pool": "full", "epochs": 4, "lr": 1e-2})
    config = tiny_run(dataset="cifar100", train_subset=400, test_subset=200, phases=phases, data_id=data.data_id)
    outcome = train_run(config, data)
    assert outcome.state["head.weight"].shape == (100, 32) and outcome.status == "finished"
    losses = [row["train_loss"] for row in outcome.history]
    assert losses[-1] < losses[0] and losses[-1] < np.log(100)
    record = run(config, data=data, out_dir=tmp_path / "out")  # through the store, under a key of its own
    assert record.key == config.key() and record.history.train_loss.tolist() == losses
