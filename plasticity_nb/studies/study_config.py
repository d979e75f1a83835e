"""What every warm-vs-scratch study's config shares: its parameters, presets and claim rules, and how it lists
the runs it needs as a *plan* of (labels, RunConfig) pairs, each label naming the seed, the arm ("warm" or
"scratch") and the study's condition (e.g. the swept value). One rule pairs the arms (`StudyConfig.pairs`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Iterable

from ..analysis.premises import PremiseRule, RunFitRule
from ..core.config import Config, ConfigError, range_of, ranged
from ..data.datasets import DEFAULT_DATASET, dataset_spec
from ..run.run_config import PRECISIONS, Phase, RunConfig, part_count

ARMS = ("warm", "scratch")
BUDGETS = ("target", "fixed")


Plan = list[tuple[dict[str, Any], RunConfig]]


# Shared settings of the presets. smoke: plumbing only (a tiny net, seconds), not science. quick: minutes
# on a 2-core CPU with real CIFAR-10, showing the real effect (README). Since 2026-12-06 its tuning phases train
# to 99 % train accuracy within a cap of 50 epochs, then a 5-epoch window: benchmarks/fit_pilot.py's rule, fixed
# before it ran on seeds 900-903 (train accuracy only): both arms reached 99 % at tuning epochs 22-33 at 5,000
# images, so the cap is the multiple of 5 at 1.5 x 33; 4 % of its windows held a spike epoch, so the window's
# mean stays (docs/train-to-target.md). paper: the paper's
# setting (App. A.4), at its fixed budget: ResNet-18 w64, Adam 1e-3 constant, batch 128, 500 tuning epochs,
# metric over the last 100. quick evaluates the test set every 5 epochs outside the metric
# window: evaluating every epoch was 18 % of notebook 01's CPU time (AVX-512, benchmarks/RESULTS.md), only the
# window enters the metric, and training does not depend on when it is evaluated (the same steps, bit for bit
# on a CPU), so notebook 01 shares its runs with the sweeps; a study that must see every epoch sets eval_every=1.
# Claim rules: the premise floor (the paper's "100 %" is >= 99.5 % at paper scale; quick allows Adam's loss
# spikes, single epochs at 88-93 %, over its 5-epoch window; smoke is plumbing, so its gate is open), the bound
# on the arms' difference, and the equivalence margin of "recovers"/"closes". All were fixed before any result,
# except the quick floor: first 97 %, lowered to 95 % after notebook 01's warm arm averaged 96.8 % (the claims
# registry, claims.CHANGES). The smallest effect of interest (a gap, in points, that matters: planning's effect
# and C13a-c's bound on a remedy's reduction of the gap) was fixed on 2026-12-01, after the quick and GPU results
# but before any run it plans: 2 pp at quick is 2-3 of the test set's own evaluation SDs (~0.5-0.7 pp at 5,000
# training images, Jordan 2024), 1 pp at paper about a third of Ash & Adams' 3.6 pp gap.
RULES = {
    "smoke": dict(premise_train_acc=0.0, premise_arm_difference=100.0, equivalence_margin=5.0, smallest_effect=5.0),
    "quick": dict(premise_train_acc=95.0, premise_arm_difference=2.0, equivalence_margin=1.0, smallest_effect=2.0),
    "paper": dict(premise_train_acc=99.5, premise_arm_difference=0.5, equivalence_margin=0.5, smallest_effect=1.0),
}


QUICK_CAP = 50  # quick's cap on reaching the target at notebook 01's cell (benchmarks/fit_pilot.py, above)
BASE_PRESETS = {
    "smoke": dict(seeds=[0, 1], model="resnet", depth=1, width=4, optimizer="adam", lr=1e-3, batch_size=64,
                  train_subset=512, test_subset=1000, tune_epochs=2, last_k=1, precision="fp32", **RULES["smoke"]),
    "quick": dict(seeds=[0, 1, 2], model="resnet", depth=2, width=8, optimizer="adam", lr=1e-3, batch_size=128,
                  train_subset=5000, budget="target", fit_target=99.0, tune_epochs=QUICK_CAP, last_k=5, eval_every=5,
                  **RULES["quick"]),
    "paper": dict(seeds=[0, 1, 2], model="resnet", depth=2, width=64, optimizer="adam", lr=1e-3, batch_size=128,
                  train_subset=50000, tune_epochs=500, last_k=100, augment=False, precision="bf16", **RULES["paper"]),
}


# The warm-start protocols a study may follow: ours, Berariu et al.'s (pretrain on the half, tune on the whole subset),
# or FIRE's (isaac7778/FIRE at c37a0ac, vision/; studies/remedies.py and studies/continual.py). Every chunk of FIRE's
# trains a new Adam (train.py:162) whose rate warms up linearly over its first 10 % of epochs (train.py:134, 211-224:
# `Phase.lr_warmup`), with gradients clipped to norm 0.5 before each update (config.py:63, train.py:267-268), batch
# 256 (config.py:73), no augmentation (task.py:20-28) and a fixed number of epochs (train.py:83-86, 159: no target).
# Its warm start's first chunk is a seeded 10 % of the training set (task.py:178-184, `warm_start_subset_ratio` 10),
# trained ten times the epochs (train.py:152-159), so that both chunks take about the same steps.
PROTOCOLS = ("ours", "fire")
FIRE_PHASE = dict(lr_warmup=0.1, clip_grad_norm=0.5)  # every phase's warm-up and clipping under FIRE's protocol
FIRE_FRACTION = 0.1  # the share of the training set FIRE's warm start pretrains on (warm_start_subset_ratio 10)


def part_size(train_subset: int, fraction: float, dataset: str = DEFAULT_DATASET) -> int:
    """Examples of a `fraction` part of a class-balanced subset (a pool "part"; at least this many where the classes
    cannot hold the subset evenly: `RunConfig.pool_size_bound`)."""
    classes = dataset_spec(dataset).num_classes
    return classes * part_count(fraction, train_subset // classes)


def equal_steps_epochs(epochs: int, examples: int, batch_size: int, part: int) -> int:
    """Epochs on `part` examples that take as many optimiser steps as `epochs` on `examples` do (each epoch's last
    partial batch dropped), as near as whole epochs allow; at least 1 (a part smaller than a batch takes no step: the
    run's own check refuses it)."""
    return max(1, round(epochs * (examples // batch_size) / max(1, part // batch_size)))


def presets(**per_preset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """BASE_PRESETS extended by a study's own values: presets(smoke={...}, quick={...}, paper={...})."""
    return {name: {**values, **per_preset.get(name, {})} for name, values in BASE_PRESETS.items()}


def check_sweep(name: str, values: tuple) -> None:
    """A sweep parameter: non-empty, no duplicates (each value's range is its field's, checked when built)."""
    if not values:
        raise ConfigError(f"{name} is empty")
    if len(set(values)) != len(values):
        raise ConfigError(f"{name} has duplicates: {list(values)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig(Config):
    """Settings every study shares; a study adds its sweep and says which runs it needs (`plan`)."""

    # paired seeds: within a seed, all arms start from the same weights and subset
    seeds: tuple[int, ...] = range_of(RunConfig, "seed")
    # cifar10 | cifar100 | svhn: every run's training and test data (the presets leave it at cifar10)
    dataset: str = range_of(RunConfig, "dataset", DEFAULT_DATASET)
    model: str = range_of(RunConfig, "model")  # resnet | mlp
    depth: int = range_of(RunConfig, "depth")  # BasicBlocks per stage (ResNet-18 has 2) or MLP hidden layers
    # ResNet base width w (stages w, 2w, 4w, 8w; 64 in the paper) or MLP hidden units
    width: int = range_of(RunConfig, "width")
    optimizer: str = range_of(Phase, "optimizer")  # adam | sgd | sgd_momentum | rmsprop, in every phase
    lr: float = range_of(Phase, "lr")  # constant learning rate of every phase
    batch_size: int = range_of(RunConfig, "batch_size")  # examples per step
    # class-balanced training examples; a class-balanced half of them is the pretraining set
    train_subset: int = range_of(RunConfig, "train_subset")
    # epochs on the full subset (warm tuning and scratch alike); with budget "target", the cap on reaching the target
    tune_epochs: int = range_of(Phase, "epochs")
    last_k: int = ranged(gt=0)  # the metric averages test accuracy over the last last_k epochs
    # "target": every tuning phase on the full subset trains until its train accuracy reaches `fit_target`, within
    # `tune_epochs`, then `last_k` epochs more (the metric window), so the arms fit by construction; "fixed": exactly
    # `tune_epochs`, the protocol of every run stored before 2026-12-06 (its stores report under its premise rule)
    budget: str = ranged("fixed", choices=BUDGETS)
    fit_target: float = ranged(99.0, gt=0, le=100)  # budget "target": the train accuracy (%) to reach (Ash & Adams')
    # how the metric and the fit summarise the window's epochs: mean, or median (robust to one of Adam's spike epochs)
    window_summary: str = ranged("mean", choices=("mean", "median"))
    augment: bool = False  # random crop + flip (off in the paper)
    # test images evaluated; None: all of the dataset's (CIFAR-10's 10,000; smoke uses fewer)
    test_subset: int | None = range_of(RunConfig, "test_subset", None)
    # bf16 autocast, fp32, or auto: bf16 where this machine runs it natively, else fp32
    precision: str = ranged("auto", choices=("auto", *PRECISIONS))
    # test-set evaluation every this many epochs; always in the metric window
    eval_every: int = range_of(Phase, "eval_every", 1)
    # premise: each arm's train accuracy (%) over the metric window reaches this...
    premise_train_acc: float = ranged(ge=0, le=100)
    premise_arm_difference: float = ranged(ge=0)  # ...and the arms' train accuracies differ by at most this (points)
    equivalence_margin: float = ranged(gt=0)  # "recovers"/"closes" claims: TOST margin +/- this (points)
    # the smallest gap (points) that matters: seeds are planned for it, and C13a-c bound a remedy's reduction by it
    smallest_effect: float = ranged(gt=0)

    CONDITIONS: ClassVar[tuple[str, ...]] = ()  # label columns that name a study's condition

    def check(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least two seeds (three or more for a useful CI)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds has duplicates: {list(self.seeds)}")
        if len(self.seeds) < 2:
            raise ConfigError(f"seeds {list(self.seeds)} has one seed: a claim's paired CI needs at least two "
                              "(three or more for a useful one)")
        if self.last_k > self.tune_epochs:
            raise ConfigError(f"last_k {self.last_k} exceeds tune_epochs {self.tune_epochs}")
        self.check_sweep()
        self.plan()  # builds every RunConfig: the run-level checks (names, lr, batch size vs pools...)

    def check_sweep(self) -> None:
        """A study's own checks, run before its runs are built."""

    @property
    def to_target(self) -> bool:
        """Whether its tuning phases train to `fit_target` (else a fixed budget)."""
        return self.budget == "target"

    def premise_rule(self) -> PremiseRule | RunFitRule:
        """Train-to-target's per-run rule (the arms' difference bound flags a seed), else the fixed budget's."""
        if self.to_target:
            return RunFitRule(self.fit_target, self.premise_arm_difference)
        return PremiseRule(self.premise_train_acc, self.premise_arm_difference)

    def tune(self, **changes: Any) -> Phase:
        """The phase on the full subset that ends every run (the scratch run is just this phase).

        Other phases are built from it with `changes`. All evaluate every `eval_every` epochs; a phase
        that ends a run (not pretraining) also at each epoch of the metric window. With budget "target", a phase on
        the full subset trains to it (`tune_epochs` its cap) and then the window (`Phase.last_epoch`).
        """
        pool = changes.get("pool", "full")
        ends_run = pool not in ("half", "stage", "part")
        window = self.last_k if ends_run and self.eval_every > 1 else 0  # eval_every 1 covers it anyway
        fields = dict(pool="full", epochs=self.tune_epochs, optimizer=self.optimizer, lr=self.lr,
                      eval_every=self.eval_every, eval_tail=window)
        if self.to_target and pool == "full":  # a blend's schedule spans its whole budget: not cut short
            fields.update(target_train_acc=self.fit_target / 100, window=self.last_k, eval_tail=0)
        return Phase(**{**fields, **changes})

    def run_config(self, seed: int, phases: tuple[Phase, ...], data_id: str = "", **changes: Any) -> RunConfig:
        from ..training.runtime import native_precision  # torch: only a study that builds its runs needs it

        fields = dict(phases=phases, seed=seed, dataset=self.dataset, model=self.model, depth=self.depth,
                      width=self.width, train_subset=self.train_subset, test_subset=self.test_subset,
                      batch_size=self.batch_size, augment=self.augment, data_id=data_id,
                      precision=native_precision() if self.precision == "auto" else self.precision)
        return RunConfig(**{**fields, **changes})

    def scratch(self, seed: int, data_id: str = "", tune: dict[str, Any] | None = None, **run: Any) -> RunConfig:
        """Fresh weights trained on the full subset; `tune` changes the phase, `run` the run (e.g. width)."""
        return self.run_config(seed, (self.tune(**(tune or {})),), data_id, **run)

    def warm(self, seed: int, data_id: str = "", pretrain_epochs: int = 1, pretrain: dict[str, Any] | None = None,
             tune: dict[str, Any] | None = None, **run: Any) -> RunConfig:
        """The same weights pretrained on the half, then (new optimiser) tuned on the full subset."""
        pretraining = self.tune(**{"pool": "half", "epochs": pretrain_epochs, **(pretrain or {})})
        phases = (pretraining, self.tune(**(tune or {})))
        return self.run_config(seed, phases, data_id, **run)

    def pairs(self, condition: dict[str, Any], warm: Callable[[int], RunConfig],
              scratch: Callable[[int], RunConfig]) -> Plan:
        """The one pairing rule of every plan: per seed, `warm(seed)` and `scratch(seed)`, labelled with the
        condition, the seed and the arm (within a seed both arms start from the same weights and subset)."""
        return [({**condition, "seed": s, "arm": arm}, (warm if arm == "warm" else scratch)(s))
                for s in self.seeds for arm in ARMS]

    def plan(self, data_id: str = "") -> Plan:
        raise NotImplementedError

    def offers(self) -> tuple[str, ...]:
        """The values of its condition that a reader may pick among (the explorer's picker), each compared with the
        conditions it does not offer (a remedy study's plain warm start): a study of options names them; a sweep,
        whose values read as one curve, none."""
        return ()

    def offering(self, picked: Iterable[str]) -> "StudyConfig":
        """This config with only the `picked` ones of `offers()`, each configured as here (at least one)."""
        raise NotImplementedError(f"{type(self).__name__} offers nothing to pick")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WarmStartConfig(StudyConfig):
    """Berariu et al. Fig. 1: pretrain on the half, reset the optimiser, tune on the whole subset."""

    pretrain_epochs: int = range_of(Phase, "epochs")  # warm arm: epochs on the half before tuning

    PRESETS = presets(smoke=dict(pretrain_epochs=2), quick=dict(pretrain_epochs=10), paper=dict(pretrain_epochs=350))

    def warm(self, seed: int, data_id: str = "", pretrain_epochs: int | None = None, **kwargs: Any) -> RunConfig:
        return super().warm(seed, data_id, pretrain_epochs or self.pretrain_epochs, **kwargs)

    def plan(self, data_id: str = "") -> Plan:
        return self.pairs({}, lambda s: self.warm(s, data_id), lambda s: self.scratch(s, data_id))
