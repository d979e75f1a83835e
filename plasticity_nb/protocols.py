"""Study protocols: which runs a study needs, and the tidy tables and paired statistics it reports.

Warm start vs scratch (Berariu et al. Fig. 1; Ash & Adams): for each seed, the *warm* arm pretrains on
a class-balanced half of the subset for `pretrain_epochs`, then (new optimiser) tunes on the whole
subset for `tune_epochs`; the *scratch* arm trains the same initial weights on the whole subset for
`tune_epochs`. The metric is the mean test accuracy over the last `last_k` epochs; the gap is
scratch - warm in percentage points (positive = warm-starting hurts), paired by seed, with a 95% t CI.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import pandas as pd

from .config import Config, ConfigError, check_positive
from .data import load_cifar10
from .runner import run_many
from .stats import Estimate, paired_estimate
from .store import RunRecord
from .train import Phase, RunConfig, resolve_device

CIFAR10_TRAIN_SIZE = 50000
ARMS = ("warm", "scratch")

# The paper's setting (App. A.4): ResNet-18 w64, Adam 1e-3 constant, batch 128, 350 + 500 epochs,
# metric over the last 100 tuning epochs, no augmentation.
PAPER = dict(seeds=[0, 1, 2], model="resnet", depth=2, width=64, optimizer="adam", lr=1e-3, batch_size=128,
             train_subset=50000, pretrain_epochs=350, tune_epochs=500, last_k=100, augment=False, precision="bf16")


@dataclasses.dataclass(frozen=True)
class WarmStartConfig(Config):
    seeds: tuple[int, ...]  # paired seeds: each gives one warm and one scratch run from the same init
    model: str  # resnet | mlp
    depth: int  # BasicBlocks per stage (2 = ResNet-18) or MLP hidden layers
    width: int  # ResNet base width w (64 in the paper) or MLP hidden units
    optimizer: str  # adam | sgd | sgd_momentum | rmsprop, used in both phases
    lr: float  # constant learning rate of both phases
    batch_size: int  # examples per step
    train_subset: int  # class-balanced training examples; a class-balanced half of them is the pretraining set
    pretrain_epochs: int  # epochs on the half before tuning (warm arm only)
    tune_epochs: int  # epochs on the full subset, for both arms
    last_k: int  # the metric averages test accuracy over the last last_k tuning epochs
    augment: bool = False  # random crop + flip (off in the paper)
    test_subset: int | None = None  # test images evaluated; None: the full 10,000 (smoke uses fewer)
    precision: str = "bf16"  # bf16 autocast or fp32

    PRESETS = {
        # Plumbing only: a tiny net for a few epochs. Not science.
        "smoke": dict(seeds=[0, 1], model="resnet", depth=1, width=4, optimizer="adam", lr=1e-3, batch_size=64,
                      train_subset=512, test_subset=1000, pretrain_epochs=2, tune_epochs=2, last_k=1),
        # Minutes on a 2-core CPU with real CIFAR-10, and it shows the real effect (see README).
        "quick": dict(seeds=[0, 1, 2], model="resnet", depth=2, width=8, optimizer="adam", lr=1e-3, batch_size=128,
                      train_subset=5000, pretrain_epochs=10, tune_epochs=15, last_k=5),
        "paper": PAPER,
    }

    def check(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed (three or more for a CI)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds has duplicates: {list(self.seeds)}")
        if self.train_subset > CIFAR10_TRAIN_SIZE:
            raise ConfigError(f"train_subset {self.train_subset} is larger than CIFAR-10's {CIFAR10_TRAIN_SIZE} "
                              "training images")
        check_positive("pretrain_epochs", self.pretrain_epochs)
        check_positive("last_k", self.last_k)
        if self.last_k > self.tune_epochs:
            raise ConfigError(f"last_k {self.last_k} exceeds tune_epochs {self.tune_epochs}")
        self.run_config(self.seeds[0], "warm")  # the run-level checks (lr, batch size vs subset, names...)

    def run_config(self, seed: int, arm: str, data_id: str = "") -> RunConfig:
        tune = Phase(pool="full", epochs=self.tune_epochs, optimizer=self.optimizer, lr=self.lr)
        pretrain = dataclasses.replace(tune, pool="half", epochs=self.pretrain_epochs)
        phases = {"warm": (pretrain, tune), "scratch": (tune,)}[arm]
        return RunConfig(phases=phases, seed=seed, model=self.model, depth=self.depth, width=self.width,
                         train_subset=self.train_subset, test_subset=self.test_subset, batch_size=self.batch_size,
                         augment=self.augment,
                         precision=self.precision, data_id=data_id)


@dataclasses.dataclass
class StudyResult:
    """Tidy tables of a warm-vs-scratch comparison, as pandas DataFrames."""

    history: pd.DataFrame  # one row per run and epoch: seed, arm, phase, epoch, tune_epoch, accuracies (%)
    summary: pd.DataFrame  # one row per run: seed, arm, status, final test/train accuracy (%), key
    gaps: pd.DataFrame  # one row per seed: scratch and warm final test accuracy (%) and gap_pp
    estimate: Estimate  # mean gap (scratch - warm) with its paired 95% CI
    last_k: int


def warm_start_gap(config: WarmStartConfig, data_dir: str | os.PathLike | None = None,
                   out_dir: str | os.PathLike | None = None, device: str | None = None,
                   workers: int | None = None, progress: bool = True) -> StudyResult:
    """Run (or load from the store) every warm and scratch run of `config` and compare them."""
    device = resolve_device(device)
    data = load_cifar10(data_dir, device)  # fails early, before any run, if the data is missing or bad
    labels = [(seed, arm) for seed in config.seeds for arm in ARMS]
    configs = [config.run_config(seed, arm, data.data_id) for seed, arm in labels]
    records = run_many(configs, out_dir, data_dir, device, workers, progress)
    return compare_arms(records, labels, config.last_k)


def compare_arms(records: list[RunRecord], labels: list[tuple[Any, ...]], last_k: int,
                 label_names: tuple[str, ...] = ("seed", "arm")) -> StudyResult:
    history = pd.concat([tidy_history(r, dict(zip(label_names, l))) for r, l in zip(records, labels)],
                        ignore_index=True)
    summary = pd.DataFrame([{**dict(zip(label_names, l)), **final_metrics(r, last_k)}
                            for r, l in zip(records, labels)])
    gaps = paired_gaps(summary)
    return StudyResult(history, summary, gaps, paired_estimate(gaps.gap_pp), last_k)


def tidy_history(record: RunRecord, labels: dict[str, Any]) -> pd.DataFrame:
    h = record.history.copy()
    last_phase = h.phase.max()
    before = h.loc[h.phase < last_phase, "epoch"]
    h["tune_epoch"] = h.epoch - (before.max() if len(before) else 0)  # 1 = first epoch of the last phase
    for column in ("train_acc", "test_acc"):
        h[column] = 100 * h[column]
    h["status"] = record.status
    return h.assign(**labels)[[*labels, "status", *record.history.columns, "tune_epoch"]]


def final_metrics(record: RunRecord, last_k: int) -> dict[str, Any]:
    """The paper's metric: mean test accuracy (%) over the last `last_k` epochs of the final phase."""
    h = record.history
    window = h[h.phase == h.phase.max()].tail(last_k)
    finished = record.status == "finished"
    return {
        "status": record.status,
        "final_test_acc": 100 * window.test_acc.mean() if finished else float("nan"),
        "final_train_acc": 100 * h.train_acc.iloc[-1] if finished else float("nan"),
        "key": record.key,
    }


def paired_gaps(summary: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per seed (and `by` condition): scratch and warm final test accuracy and their gap."""
    wide = summary.pivot_table(index=[*by, "seed"], columns="arm", values="final_test_acc", dropna=False)
    wide = wide.reindex(columns=list(ARMS)).reset_index()
    wide.columns.name = None
    wide["gap_pp"] = wide.scratch - wide.warm
    return wide
