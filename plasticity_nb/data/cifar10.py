"""CIFAR-10 on the device: finding it, checking it, subsets, normalisation and augmentation.

Where the data is looked for, in order:
1. an explicit `data_dir` argument, else the `PLASTICITY_DATA` environment variable: a folder with
   `train.npz` and `test.npz` (arrays `images` uint8 (N,32,32,3), `labels` int64), checked against the
   folder's `SHA256SUMS` when present; a folder in torchvision's format is accepted too;
2. torchvision's CIFAR-10 format under `<project>/data/`, downloaded by torchvision when it is missing,
   unless `PLASTICITY_OFFLINE=1`.

As in airbench, the whole set is kept as uint8 tensors on the chosen device; a run normalises its
subset once, and crop/flip augmentation (off by default, as in the paper) is a batched tensor op.
"""
from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.paths import project_root

NUM_CLASSES = 10
TRAIN_SIZE, TEST_SIZE = 50000, 10000  # CIFAR-10's training and test images
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Usual CIFAR-10 training-set statistics (pixels in [0, 1]); fixed so every data copy is normalised alike.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
TORCHVISION_FOLDER = "cifar-10-batches-py"


class DataError(RuntimeError):
    """CIFAR-10 could not be found, or what was found is not CIFAR-10."""


@dataclass(frozen=True)
class CIFAR10:
    """CIFAR-10 as tensors on one device. Files, checksums, array shapes and labels are checked on loading;
    the images themselves (~1 s to decompress) are decoded on first use, so that work which only needs the
    data's fingerprint (planning runs, loading stored ones) does not pay for them."""

    train_labels: torch.Tensor  # int64 (50000,)
    test_labels: torch.Tensor  # int64 (10000,)
    source: str  # where it was read from, for provenance
    data_id: str  # fingerprint of the copy; part of every run's config hash (copies differ: pitfall 4)
    read_images: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False, compare=False)  # (train, test) NHWC

    @property
    def device(self) -> torch.device:
        return self.train_labels.device

    @functools.cached_property
    def _images(self) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
                     for x in self.read_images())

    @property
    def train_images(self) -> torch.Tensor:
        """uint8 (50000, 3, 32, 32), on the device."""
        return self._images[0]

    @property
    def test_images(self) -> torch.Tensor:
        """uint8 (10000, 3, 32, 32)."""
        return self._images[1]

    def decode(self) -> "CIFAR10":
        """Decode the images now (a corrupt image array fails here, with a DataError naming the file)."""
        self._images
        return self


def default_data_root() -> Path:
    return project_root() / "data"


def how_to_provide() -> str:
    return (
        "Provide CIFAR-10 in one of these ways:\n"
        "  - set PLASTICITY_DATA (or pass data_dir / --data) to a folder holding train.npz and test.npz\n"
        "    (arrays 'images' uint8 (N,32,32,3) and 'labels' int64), e.g. the offline copy ../shared/data/cifar10;\n"
        f"  - or let torchvision download it into {default_data_root()} (needs internet; unset PLASTICITY_OFFLINE)."
    )


def load_cifar10(data_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> CIFAR10:
    """CIFAR-10 as uint8 tensors on `device`, from the first place that has it (see the module docstring)."""
    explicit = data_dir if data_dir is not None else os.environ.get("PLASTICITY_DATA") or None
    folder = Path(explicit).expanduser().resolve() if explicit else None
    return _load_cached(folder, str(torch.device(device)))


@functools.lru_cache(maxsize=2)
def _load_cached(folder: Path | None, device: str) -> CIFAR10:
    if folder is not None:
        arrays, source, data_id = _read_folder(folder)
    else:
        download = os.environ.get("PLASTICITY_OFFLINE", "0") != "1"
        arrays, source, data_id = _read_torchvision(default_data_root(), download)
    (xtr, ytr), (xte, yte) = arrays
    to_device = lambda y: torch.from_numpy(y.astype(np.int64)).to(device)
    return CIFAR10(train_labels=to_device(ytr), test_labels=to_device(yte), source=source, data_id=data_id,
                   read_images=lambda: (xtr(), xte()))


def _read_folder(folder: Path):
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 data folder {folder} does not exist (from data_dir / PLASTICITY_DATA).\n"
                        + how_to_provide())
    if (folder / TORCHVISION_FOLDER).is_dir():
        return _read_torchvision(folder, download=False)
    return _read_npz_folder(folder)


def _read_npz_folder(folder: Path):
    digests = {}
    for name in ("train.npz", "test.npz"):
        if not (folder / name).exists():
            raise DataError(f"{folder / name} is missing.\n" + how_to_provide())
        digests[name] = _sha256(folder / name)
    sums = folder / "SHA256SUMS"
    if sums.exists():
        expected = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        for name, digest in digests.items():
            if name in expected and expected[name] != digest:
                raise DataError(f"checksum mismatch for {folder / name}: SHA256SUMS says {expected[name]}, "
                                f"the file has {digest}. The file is corrupt or not the listed copy.")
    arrays = tuple(_read_npz(folder / name, n) for name, n in (("train.npz", TRAIN_SIZE), ("test.npz", TEST_SIZE)))
    data_id = "npz-" + hashlib.sha256((digests["train.npz"] + digests["test.npz"]).encode()).hexdigest()[:12]
    return arrays, f"{folder} (npz; train sha256 {digests['train.npz'][:12]}...)", data_id


def _read_npz(path: Path, expected_rows: int):
    """(images reader, labels): labels are read and checked now, the image array's header too; the images
    are decompressed when the reader is called."""
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in ("images", "labels") if f"{name}.npy" not in archive.namelist()]
            if missing:
                raise DataError(f"{path} lacks the array '{missing[0]}'; expected 'images' and 'labels'.")
            with archive.open("images.npy") as header:
                version = np.lib.format.read_magic(header)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(header)
            with archive.open("labels.npy") as member:
                labels = np.lib.format.read_array(member)
    except UNREADABLE as err:
        raise corrupt(path, err) from None
    _check_arrays(path, dtype, shape, labels, expected_rows)

    def read_images() -> np.ndarray:
        try:
            with np.load(path) as arrays:
                return arrays["images"]
        except UNREADABLE as err:  # e.g. a damaged byte inside the archive (CRC check) when there is no SHA256SUMS
            raise corrupt(path, err) from None
    return read_images, labels


UNREADABLE = (zipfile.BadZipFile, EOFError, ValueError, OSError)


def corrupt(path: Path, err: Exception) -> DataError:
    return DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}).")


def _check_arrays(where, dtype: np.dtype, shape: tuple[int, ...], labels: np.ndarray, expected_rows: int) -> None:
    """The images' dtype and shape (from the array header) and the labels."""
    if dtype != np.uint8 or shape != (expected_rows, 32, 32, 3):
        raise DataError(f"{where}: images must be uint8 of shape ({expected_rows}, 32, 32, 3), got {dtype} {shape}.")
    if labels.shape != (expected_rows,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers of shape ({expected_rows},), "
                        f"got {labels.dtype} {labels.shape}.")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{where}: labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}.")


def _read_torchvision(root: Path, download: bool):
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    try:
        sets = [TorchvisionCIFAR10(root=str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as err:  # not there and (offline or download refused)
        raise DataError(
            f"CIFAR-10 not found. Looked at: the data_dir argument and PLASTICITY_DATA (neither set), then "
            f"torchvision's format under {root / TORCHVISION_FOLDER} "
            f"({'download failed: ' + str(err) if download else 'not there, and downloads are off'}).\n"
            + how_to_provide()) from None
    arrays = []
    for ds, n in zip(sets, (TRAIN_SIZE, TEST_SIZE)):
        images, labels = ds.data, np.asarray(ds.targets, dtype=np.int64)
        _check_arrays(root / TORCHVISION_FOLDER, images.dtype, images.shape, labels, n)
        arrays.append((lambda images=images: images, labels))
    return tuple(arrays), f"{root / TORCHVISION_FOLDER} (torchvision)", "torchvision-cifar10"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- subsets

def class_balanced_subset(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices of `size` examples drawn without replacement, as evenly over classes as possible.

    Each class gets size // 10 examples; the size % 10 left over go to randomly chosen classes.
    """
    labels = labels.cpu()
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    if not 0 < size <= len(labels):
        raise ValueError(f"subset size {size} must lie in 1..{len(labels)}")
    per_class = torch.full((NUM_CLASSES,), size // NUM_CLASSES)
    per_class[torch.randperm(NUM_CLASSES, generator=generator)[: size % NUM_CLASSES]] += 1
    if (per_class > counts).any():
        raise ValueError(f"subset size {size} needs more examples of a class than the data holds ({counts.tolist()})")
    chosen = []
    for c in range(NUM_CLASSES):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[: per_class[c]]])
    return torch.cat(chosen).sort().values


@dataclass(frozen=True)
class Split:
    """The examples a run trains on: a class-balanced subset and its class-balanced pretraining half."""

    full: torch.Tensor  # indices into the training set
    half: torch.Tensor  # a subset of `full`

    @classmethod
    def draw(cls, labels: torch.Tensor, train_subset: int, seed: int) -> "Split":
        generator = torch.Generator().manual_seed(seed)
        full = class_balanced_subset(labels, train_subset, generator)
        half = full[class_balanced_subset(labels.cpu()[full], train_subset // 2, generator)]
        return cls(full=full, half=half)


# ---------------------------------------------------------------------------------- device-side tensors

def normalise(images: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 (N,3,32,32) -> float32, standardised with the fixed CIFAR-10 statistics (once per run)."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    out = (images.float() / 255 - mean) / std
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def augment(batch: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding of `pad` pixels, i.e. mean-coloured after normalisation) and horizontal flip.

    Batched: per-example offsets become one gather, so no Python loop over images.
    """
    n, _, h, w = batch.shape
    device = batch.device
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(device)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # (n,1,h,1)
    cols = dx[:, None] + torch.arange(w, device=device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # (n,1,1,w)
    out = padded[torch.arange(n, device=device)[:, None, None, None],
                 torch.arange(batch.shape[1], device=device)[None, :, None, None], rows, cols]
    # Keep the caller's memory format: a channels_last batch into an NCHW net of 4 channels sent oneDNN down
    # a path that took minutes per step on an AVX2 CPU.
    channels_last = batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
