"""A dataset on the device: finding a copy, checking it against its description, subsets, normalisation and
augmentation. The datasets (CIFAR-10, CIFAR-100, SVHN) and what a copy must hold are in `datasets.py`.

Where a dataset is looked for, in order:
1. an explicit `data_dir` argument, else the dataset's environment variable (`PLASTICITY_DATA` for CIFAR-10,
   `PLASTICITY_DATA_CIFAR100`, `PLASTICITY_DATA_SVHN`): a folder with `train.npz` and `test.npz` (arrays `images`
   uint8 (N,32,32,3), `labels` int64), checked against the folder's `SHA256SUMS` when present; a folder in
   torchvision's on-disk format is accepted too;
2. torchvision's format under `<project>/data/`, downloaded by torchvision when it is missing, unless
   `PLASTICITY_OFFLINE=1`.

CIFAR-10's torchvision format is read by torchvision, which checks its files against the official md5 sums (so its
fingerprint names no digest). CIFAR-100's pickles and SVHN's .mat files are read here, and fingerprinted by their
digest: torchvision's own check would refuse any copy but the official one, a smaller test copy included, so it
only downloads them.

As in airbench, the whole set is kept as uint8 tensors on the chosen device; a run normalises its
subset once, and crop/flip augmentation (off by default, as in the paper) is a batched tensor op.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.config import ConfigError
from ..core.files import cached, cached_array
from ..core.paths import project_root
from .datasets import DataError, DatasetSpec, dataset_spec


@dataclass(frozen=True)
class ImageData:
    """A copy of a dataset as tensors on one device. Files, checksums, array shapes and labels are checked on
    loading; the images themselves (~1 s to decompress) are decoded on first use, so that work which only needs the
    data's fingerprint (planning runs, loading stored ones) does not pay for them."""

    spec: DatasetSpec  # which dataset this is a copy of
    train_labels: torch.Tensor  # int64 (spec.train_size,)
    test_labels: torch.Tensor  # int64 (spec.test_size,)
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
        """uint8 (train_size, 3, 32, 32), on the device."""
        return self._images[0]

    @property
    def test_images(self) -> torch.Tensor:
        """uint8 (test_size, 3, 32, 32)."""
        return self._images[1]

    def decode(self) -> "ImageData":
        """Decode the images now (a corrupt image array fails here, with a DataError naming the file)."""
        self._images
        return self


def default_data_root() -> Path:
    return project_root() / "data"


def how_to_provide(spec: DatasetSpec) -> str:
    files = " and ".join(str(Path(spec.torchvision_folder) / f) for f in spec.torchvision_files)
    return (
        f"Provide {spec.title} in one of these ways:\n"
        f"  - set {spec.env} (or pass data_dir / --data) to a folder holding train.npz and test.npz\n"
        f"    (arrays 'images' uint8 (N,32,32,3) and 'labels' int64 in 0..{spec.num_classes - 1}), or torchvision's "
        f"files {files};\n"
        f"  - or let torchvision download it into {default_data_root()} (needs internet; unset PLASTICITY_OFFLINE)."
    )


def load_dataset(name: str, data_dir: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu") -> ImageData:
    """Dataset `name` (cifar10 | cifar100 | svhn) as uint8 tensors on `device`, from the first place that has it
    (see the module docstring)."""
    spec = dataset_spec(name)
    explicit = data_dir if data_dir is not None else os.environ.get(spec.env) or None
    folder = Path(explicit).expanduser().resolve() if explicit else None
    return _load_cached(spec, folder, str(torch.device(device)))


@functools.lru_cache(maxsize=2)
def _load_cached(spec: DatasetSpec, folder: Path | None, device: str) -> ImageData:
    if folder is not None:
        arrays, source, data_id = _read_folder(spec, folder)
    else:
        download = os.environ.get("PLASTICITY_OFFLINE", "0") != "1"
        arrays, source, data_id = READERS[spec.name](spec, default_data_root(), download)
    (xtr, ytr), (xte, yte) = arrays
    to_device = lambda y: torch.from_numpy(y.astype(np.int64)).to(device)
    return ImageData(spec=spec, train_labels=to_device(ytr), test_labels=to_device(yte), source=source,
                     data_id=data_id, read_images=lambda: (xtr(), xte()))


def _read_folder(spec: DatasetSpec, folder: Path):
    if not folder.is_dir():
        raise DataError(f"{spec.title} data folder {folder} does not exist (from data_dir / {spec.env}).\n"
                        + how_to_provide(spec))
    if _in_torchvision_format(spec, folder):
        return READERS[spec.name](spec, folder, False)
    return _read_npz_folder(spec, folder)


def _torchvision_paths(spec: DatasetSpec, root: Path) -> list[Path]:
    return [root / spec.torchvision_folder / name for name in spec.torchvision_files]


def _in_torchvision_format(spec: DatasetSpec, folder: Path) -> bool:
    """Whether the folder holds (some of) torchvision's files: then a missing one is named as torchvision's."""
    return ((bool(spec.torchvision_folder) and (folder / spec.torchvision_folder).is_dir())
            or any(p.exists() for p in _torchvision_paths(spec, folder)))


def _read_npz_folder(spec: DatasetSpec, folder: Path):
    digests = {}
    for name in ("train.npz", "test.npz"):
        if not (folder / name).exists():
            raise DataError(f"{folder / name} is missing ({spec.title}).\n" + how_to_provide(spec))
        digests[name] = _sha256(folder / name)
    sums = folder / "SHA256SUMS"
    if sums.exists():
        expected = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        for name, digest in digests.items():
            if name in expected and expected[name] != digest:
                raise DataError(f"checksum mismatch for {folder / name}: SHA256SUMS says {expected[name]}, "
                                f"the file has {digest}. The file is corrupt or not the listed copy.")
    arrays = tuple(_read_npz(spec, folder / name, n, digests[name])
                   for name, n in (("train.npz", spec.train_size), ("test.npz", spec.test_size)))
    data_id = spec.fingerprint("npz", _combined(digests.values()))
    return arrays, f"{folder} (npz; train sha256 {digests['train.npz'][:12]}...)", data_id


def _read_npz(spec: DatasetSpec, path: Path, expected_rows: int, digest: str):
    """(images reader, labels): labels are read and checked now, the image array's header too; the images
    are decompressed when the reader is called, once per file on this machine (`digest`, the file's SHA-256, names
    the decompressed copy kept in the cache: ~1.5 s saved in every process that trains on CIFAR-10)."""
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
    _check_arrays(spec, path, dtype, shape, labels, expected_rows)

    def decompress() -> np.ndarray:
        try:
            with np.load(path) as arrays:
                return arrays["images"]
        except UNREADABLE as err:  # e.g. a damaged byte inside the archive (CRC check) when there is no SHA256SUMS
            raise corrupt(path, err) from None
    return (lambda: cached_array(f"npz-images-{digest}", decompress)), labels


UNREADABLE = (zipfile.BadZipFile, EOFError, ValueError, OSError)


def corrupt(path: Path, err: Exception) -> DataError:
    return DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}).")


def _check_arrays(spec: DatasetSpec, where, dtype: np.dtype, shape: tuple[int, ...], labels: np.ndarray,
                  expected_rows: int) -> None:
    """The images' dtype and shape (from the array header) and the labels, against the dataset's description."""
    if dtype != np.uint8 or shape != (expected_rows, 32, 32, 3):
        raise DataError(f"{where}: {spec.title} images must be uint8 of shape ({expected_rows}, 32, 32, 3), "
                        f"got {dtype} {shape}.")
    if labels.shape != (expected_rows,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers of shape ({expected_rows},), "
                        f"got {labels.dtype} {labels.shape}.")
    if labels.min() < 0 or labels.max() >= spec.num_classes:
        raise DataError(f"{where}: {spec.title} labels must lie in 0..{spec.num_classes - 1}, "
                        f"got {labels.min()}..{labels.max()}.")


def _read_cifar10_torchvision(spec: DatasetSpec, root: Path, download: bool):
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    try:
        sets = [TorchvisionCIFAR10(root=str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, OSError) as err:  # not there and (offline or download refused)
        raise not_found(spec, root, download, err) from None
    arrays = []
    for ds, n in zip(sets, (spec.train_size, spec.test_size)):
        images, labels = ds.data, np.asarray(ds.targets, dtype=np.int64)
        _check_arrays(spec, root / spec.torchvision_folder, images.dtype, images.shape, labels, n)
        arrays.append((lambda images=images: images, labels))
    return tuple(arrays), f"{root / spec.torchvision_folder} (torchvision)", "torchvision-cifar10"


def not_found(spec: DatasetSpec, root: Path, download: bool, err: Exception | None) -> DataError:
    return DataError(
        f"{spec.title} not found. Looked at: the data_dir argument and {spec.env} (neither set), then "
        f"torchvision's format under {root / spec.torchvision_folder} "
        f"({'download failed: ' + str(err) if download else 'not there, and downloads are off'}).\n"
        + how_to_provide(spec))


def _torchvision_files(spec: DatasetSpec, root: Path, download: bool) -> list[Path]:
    """The train and test files in torchvision's format under `root`, downloaded by torchvision first when they are
    missing and downloads are allowed; a folder given explicitly (download False) must hold both."""
    paths = _torchvision_paths(spec, root)
    if all(p.exists() for p in paths):
        return paths
    if not download:
        if _in_torchvision_format(spec, root):  # some of its files are there: name the one that is not
            missing = next(p for p in paths if not p.exists())
            raise DataError(f"{missing} is missing ({spec.title} in torchvision's format).\n" + how_to_provide(spec))
        raise not_found(spec, root, download, None)
    import torchvision.datasets

    torchvision_class = getattr(torchvision.datasets, spec.torchvision_class)
    try:  # SVHN's class takes a split name and fetches one file; the CIFARs' a train flag, one archive for both
        if spec.torchvision_class == "SVHN":
            for split in ("train", "test"):
                torchvision_class(root=str(root), split=split, download=True)
        else:
            torchvision_class(root=str(root), train=True, download=True)
    except (RuntimeError, OSError) as err:
        raise not_found(spec, root, download, err) from None
    return paths


def _torchvision_reader(read_file: Callable):
    """The reader of a dataset kept in torchvision's on-disk format, its train and test files each read by
    `read_file(spec, path, rows)`; the fingerprint is a digest of both files."""
    def read(spec: DatasetSpec, root: Path, download: bool):
        paths = _torchvision_files(spec, root, download)
        arrays = tuple(read_file(spec, path, n) for path, n in zip(paths, (spec.train_size, spec.test_size)))
        data_id = spec.fingerprint("torchvision", _combined(_sha256(p) for p in paths))
        return arrays, f"{root / spec.torchvision_folder} (torchvision format)", data_id
    return read


def _read_cifar_pickle(spec: DatasetSpec, path: Path, rows: int):
    """One of CIFAR-100's pickles (a dict with 'data' uint8 (N, 3072), channel-major rows, and 'fine_labels'), read
    as torchvision reads it; the images are small enough to be unpickled with the labels."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as err:  # whatever a damaged pickle raises (EOFError, UnpicklingError, ValueError...)
        raise corrupt(path, err) from None
    missing = [k for k in ("data", "fine_labels") if not isinstance(entry, dict) or k not in entry]
    if missing:
        raise DataError(f"{path} lacks '{missing[0]}': a CIFAR-100 pickle is a dict with 'data' and 'fine_labels'.")
    data, labels = np.asarray(entry["data"]), np.asarray(entry["fine_labels"])
    if data.dtype != np.uint8 or data.shape != (rows, 3 * 32 * 32):
        raise DataError(f"{path}: {spec.title} 'data' must be uint8 of shape ({rows}, 3072), got {data.dtype} "
                        f"{data.shape}.")
    images = data.reshape(rows, 3, 32, 32).transpose(0, 2, 3, 1)
    _check_arrays(spec, path, images.dtype, images.shape, labels, rows)
    return (lambda: images), labels.astype(np.int64)


def _read_svhn_mat(spec: DatasetSpec, path: Path, rows: int):
    """(images reader, labels) of one of SVHN's .mat files: X uint8 (32, 32, 3, N) and y (N, 1) in 1..10, where 10
    is the digit 0 (torchvision maps it to 0, as we do). The labels are read now, the images when asked for."""
    import scipy.io

    try:
        variables = {name: (shape, kind) for name, shape, kind in scipy.io.whosmat(path)}
        labels = scipy.io.loadmat(path, variable_names=["y"]).get("y") if "y" in variables else None
    except Exception as err:  # whatever a damaged .mat file raises (MatReadError, ValueError, OSError...)
        raise corrupt(path, err) from None
    if "X" not in variables or labels is None:
        raise DataError(f"{path} lacks the variable '{'X' if 'X' not in variables else 'y'}'; expected X uint8 "
                        f"(32, 32, 3, N) and y (N, 1).")
    shape, kind = variables["X"]
    if kind != "uint8" or tuple(shape) != (32, 32, 3, rows):
        raise DataError(f"{path}: {spec.title} X must be uint8 of shape (32, 32, 3, {rows}), got {kind} {shape}.")
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.size and np.issubdtype(labels.dtype, np.integer) and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"{path}: SVHN's y must lie in 1..10 (10 is the digit 0), got {labels.min()}..{labels.max()}.")
    labels = np.where(labels == 10, 0, labels)
    _check_arrays(spec, path, np.dtype(kind), (shape[3], *shape[:3]), labels, rows)

    def read_images() -> np.ndarray:
        try:
            return scipy.io.loadmat(path, variable_names=["X"])["X"].transpose(3, 0, 1, 2)
        except Exception as err:  # damaged image data behind an intact header
            raise corrupt(path, err) from None
    return read_images, labels.astype(np.int64)


# The reader of each dataset's torchvision format: (spec, root, download) -> (arrays, source, data_id)
READERS = {"cifar10": _read_cifar10_torchvision, "cifar100": _torchvision_reader(_read_cifar_pickle),
           "svhn": _torchvision_reader(_read_svhn_mat)}


def _sha256(path: Path) -> str:
    """The file's SHA-256, kept in this machine's cache under its path, size, modification time and inode: a copy
    replaced or rewritten is hashed again, while every process that loads an unchanged copy skips 170 MB of hashing.
    (A change that keeps all four, such as bit rot, is not seen; the first hash of every copy is still checked.)"""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    return cached("sha256", key, lambda: _hash_file(path))


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _combined(digests) -> str:
    """One short digest of a copy's files (train first): the fingerprint's hash part."""
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- subsets

def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(labels.cpu(), minlength=num_classes)


def check_balanced(name: str, size: int | None, labels: torch.Tensor, spec: DatasetSpec, part: str) -> None:
    """A class-balanced subset of `size` (a run's field `name`) must fit in every class of the copy's `part` set
    (SVHN's classes are not balanced): ConfigError naming the field, the dataset and the largest size that fits."""
    counts = class_counts(labels, spec.num_classes)
    smallest = int(counts.argmin())
    most = spec.num_classes * int(counts[smallest])
    if size is not None and size > most:
        raise ConfigError(
            f"{name} {size} cannot be class-balanced on {spec.title}: its smallest class ({spec.classes[smallest]!r}) "
            f"has {int(counts[smallest])} {part} images in this copy, so a class-balanced {name} is at most {most}")


def class_balanced_subset(labels: torch.Tensor, size: int, generator: torch.Generator,
                          num_classes: int) -> torch.Tensor:
    """Sorted indices of `size` examples drawn without replacement, as evenly over the `num_classes` classes as
    possible: each class gets size // num_classes examples, the rest go to randomly chosen classes."""
    labels = labels.cpu()
    counts = class_counts(labels, num_classes)
    if not 0 < size <= len(labels):
        raise ValueError(f"subset size {size} must lie in 1..{len(labels)}")
    per_class = torch.full((num_classes,), size // num_classes)
    per_class[torch.randperm(num_classes, generator=generator)[: size % num_classes]] += 1
    if (per_class > counts).any():
        raise ValueError(f"subset size {size} needs more examples of a class than the data holds ({counts.tolist()})")
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[: per_class[c]]])
    return torch.cat(chosen).sort().values


@dataclass(frozen=True)
class Split:
    """The examples a run trains on: a class-balanced subset and its class-balanced pretraining half."""

    full: torch.Tensor  # indices into the training set
    half: torch.Tensor  # a subset of `full`

    @classmethod
    def draw(cls, labels: torch.Tensor, train_subset: int, seed: int, num_classes: int) -> "Split":
        generator = torch.Generator().manual_seed(seed)
        full = class_balanced_subset(labels, train_subset, generator, num_classes)
        half = full[class_balanced_subset(labels.cpu()[full], train_subset // 2, generator, num_classes)]
        return cls(full=full, half=half)


# ---------------------------------------------------------------------------------- device-side tensors

def normalise(images: torch.Tensor, spec: DatasetSpec, channels_last: bool = True) -> torch.Tensor:
    """uint8 (N,3,32,32) -> float32, standardised with the dataset's fixed statistics (once per run)."""
    mean = torch.tensor(spec.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=images.device).view(1, 3, 1, 1)
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
