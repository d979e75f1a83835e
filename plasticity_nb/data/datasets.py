"""What each dataset is: one description per dataset (its classes, official sizes, normalisation statistics, and
where torchvision and this package find it), and the error every data problem raises.

At the bottom of the data layer: run configs check their fields against a description, the loader
(`images.py`) reads and checks a copy against it, the nets size their output layer from it.
"""
from __future__ import annotations

import dataclasses


class DataError(RuntimeError):
    """A dataset could not be found, or what was found is not that dataset. The message names the dataset, the
    folder and how to provide it."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what a copy of it must hold, how it is normalised, where its files are looked for."""

    name: str  # as `RunConfig.dataset` and `--param dataset=` name it
    title: str  # as messages and the README write it
    classes: tuple[str, ...]  # label i is classes[i]
    train_size: int  # official training images: a copy must hold exactly these (tests relax it on a copy of this)
    test_size: int  # official test images
    # per-channel mean and std of the official training set, pixels in [0, 1]; fixed, so every copy of a dataset is
    # normalised alike (a copy's own statistics would differ between copies, and so would its runs)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    torchvision_class: str  # the torchvision.datasets class that downloads it
    # where torchvision keeps it under its root: a folder ("" for the root itself) and the train and test files there
    torchvision_folder: str
    torchvision_files: tuple[str, str]
    env: str  # the environment variable naming a folder that holds a copy
    # prefix of the fingerprint (`data_id`) of its copies: empty for CIFAR-10, whose copies were fingerprinted before
    # other datasets existed (stored runs keep their keys), the dataset's name for the others
    fingerprint_prefix: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self, kind: str, digest: str) -> str:
        """The data_id of a copy of this dataset: its format and a digest of its files."""
        return f"{self.fingerprint_prefix}{kind}-{digest}"


CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper",
    "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf",
    "woman", "worm",
)  # the fine labels, in the order of the archive's `meta` file (label i is the i-th)

DATASETS = {spec.name: spec for spec in (
    DatasetSpec(
        name="cifar10", title="CIFAR-10",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        train_size=50000, test_size=10000,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        torchvision_class="CIFAR10", torchvision_folder="cifar-10-batches-py",
        torchvision_files=("data_batch_1", "test_batch"), env="PLASTICITY_DATA", fingerprint_prefix=""),
    DatasetSpec(
        name="cifar100", title="CIFAR-100", classes=CIFAR100_CLASSES, train_size=50000, test_size=10000,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        torchvision_class="CIFAR100", torchvision_folder="cifar-100-python", torchvision_files=("train", "test"),
        env="PLASTICITY_DATA_CIFAR100", fingerprint_prefix="cifar100-"),
    DatasetSpec(
        # the digits' labels: torchvision stores digit 0 as 10 in its .mat files and maps it back to 0, as we do
        name="svhn", title="SVHN", classes=tuple(str(d) for d in range(10)), train_size=73257, test_size=26032,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        torchvision_class="SVHN", torchvision_folder="", torchvision_files=("train_32x32.mat", "test_32x32.mat"),
        env="PLASTICITY_DATA_SVHN", fingerprint_prefix="svhn-"),
)}
DEFAULT_DATASET = "cifar10"  # what every run and study uses unless it names another


def dataset_spec(name: str) -> DatasetSpec:
    """The description of dataset `name` (the registry is read at each call, so a test can put a relaxed copy in)."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]
