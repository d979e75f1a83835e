"""CIFAR-10, the default dataset, by name: the entry points that scripts written before other datasets existed
call (benchmarks/, notebooks' own cells). The package itself goes through `images.load_dataset` and the dataset's
description; the values here are read from that description (`datasets.py`), not copied.
"""
from __future__ import annotations

import os

import torch

from . import images
from .datasets import DATASETS

SPEC = DATASETS["cifar10"]
MEAN, STD = SPEC.mean, SPEC.std  # its training set's statistics, pixels in [0, 1]


def load_cifar10(data_dir: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu") -> images.ImageData:
    """CIFAR-10 as uint8 tensors on `device` (see `images.load_dataset`)."""
    return images.load_dataset("cifar10", data_dir, device)


def normalise(images_: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 (N,3,32,32) -> float32, standardised with CIFAR-10's statistics."""
    return images.normalise(images_, SPEC, channels_last)


def class_balanced_subset(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """`size` indices spread evenly over CIFAR-10's classes (see `images.class_balanced_subset`)."""
    return images.class_balanced_subset(labels, size, generator, SPEC.num_classes)
