"""What a run is: its phases and settings (`Phase`, `RunConfig`), checked when built.

At the bottom of the import graph: the store, the studies and the training code all read run configs,
and none of them needs the others to do so. A config's hash names its stored results (config.py).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from ..core.config import Config, ConfigError, Range, check_within, ranged
from ..data.datasets import DATASETS, DEFAULT_DATASET, DatasetSpec, dataset_spec
from ..measures.metric_settings import MetricSettings
from ..measures.probe_settings import ProbeSettings
from ..nets.catalogue import MODELS
from .remedy import REGISTRY, Remedy, acting_rank, remedy_type

OPTIMIZERS = ("adam", "sgd", "sgd_momentum", "rmsprop")
# Training pools: the pretraining half of the subset, the whole subset, a blend that fades from the
# half to the whole (Fig. 3), one set of a multi-stage split (Fig. 4), or a seeded class-balanced fraction of the
# subset, the parts of one run nested (FIRE's first chunk and cumulative chunks, studies/continual.py).
POOLS = ("half", "full", "blend", "stage", "part")
PRECISIONS = ("bf16", "fp32")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase(Config):
    pool: str = ranged("full", choices=POOLS)  # training examples: half | full | blend | stage | part
    # epoch budget: passes over the pool (blend: steps of the full subset); with a target, the cap on reaching it
    epochs: int = ranged(1, gt=0)
    optimizer: str = ranged("adam", choices=OPTIMIZERS)  # adam | sgd | sgd_momentum | rmsprop; a new one at every phase
    lr: float = ranged(1e-3, gt=0)  # learning rate: constant, after the warm-up if there is one
    # a linear warm-up over this fraction of the epoch budget, set per epoch (`epoch_lr`), as FIRE's protocol
    # does at every chunk (isaac7778/FIRE vision/train.py:213-224: 0.1); None: none
    lr_warmup: float | None = ranged(None, gt=0, le=1)
    # gradients rescaled to at most this L2 norm over all parameters before each update, after the penalties' and
    # remedies' gradients (torch's clip_grad_norm_; FIRE's protocol 0.5, vision/config.py:63, train.py:267-268)
    clip_grad_norm: float | None = ranged(None, gt=0)
    # train until an epoch's train accuracy (fraction) reaches this (within `epochs`), then `window` epochs more
    target_train_acc: float | None = ranged(None, gt=0, le=1)
    # with a target: epochs trained after the one that reached it (or after the cap), the window a metric reads
    window: int = ranged(0, ge=0)
    reset_groups: tuple[int, ...] = ranged((), ge=1, le=6)  # module groups (1-6) re-initialised before this phase
    # blend only: p(full) = 1 - gamma^(blend_rate * step / steps of the phase)
    gamma: float | None = ranged(None, gt=0, lt=1)
    blend_rate: float | None = ranged(None, gt=0)  # blend only: the paper's 50
    stage: int | None = ranged(None, ge=1)  # stage only: which set D_i of the run's multi-stage split (1-based)
    # part only: the fraction of each class of the subset trained on (`part_count`), the first of one seeded order
    # of the class's examples per run, so a run's parts are nested: FIRE's first 10 % (isaac7778/FIRE vision/task.py:
    # 170-184, a prefix of one seeded permutation) and its cumulative chunks k/N (`access="full"`, task.py:188-199,
    # 253-256), drawn here per class
    fraction: float | None = ranged(None, gt=0, lt=1)
    eval_every: int = ranged(1, gt=0)  # test-set evaluation every this many epochs (and always at the phase's last)...
    eval_tail: int = ranged(0, ge=0)  # ...and at each of the phase's last eval_tail epochs (a metric window)
    # curvature/noise probes after these epochs (0: before the first step)
    probe_epochs: tuple[int, ...] = ranged((), ge=0)
    # Remedies (run/remedy.py's registry), each a registered Remedy's settings; they act in run/remedy.py's
    # declared ACTING_ORDER, whatever order they are given in
    remedies: tuple[Remedy, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        ranked = sorted(self.remedies, key=lambda r: acting_rank(r.NAME))  # check() has rejected unregistered ones
        object.__setattr__(self, "remedies", tuple(ranked))

    @property
    def remedy_names(self) -> tuple[str, ...]:
        """Names of the remedies this phase applies, in the order they act."""
        return tuple(r.NAME for r in self.remedies)

    def remedy(self, name: str) -> Remedy | None:
        """The settings of remedy `name` in this phase (None: off)."""
        return next((r for r in self.remedies if r.NAME == name), None)

    # Stored form and key: each remedy under its name, as a phase setting (runs without remedies keep their keys).
    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        del values["remedies"]
        return {**values, **{r.NAME: r.to_dict() for r in self.remedies}}

    def identity(self) -> dict[str, Any]:
        values = super().identity()
        values.pop("remedies", None)
        return {**values, **{r.NAME: r.identity() for r in self.remedies}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Phase":
        fields = {f.name for f in dataclasses.fields(cls)}
        own = {k: v for k, v in values.items() if k in fields}
        listed = tuple(own.pop("remedies", ()))
        # a stored phase names each remedy; configs stored before the registry name the built-ins' as None when off
        named = [remedy_type(k).from_dict(v) for k, v in values.items()
                 if k not in fields and not (v is None and k in REGISTRY)]
        return cls(**own, remedies=(*listed, *named))

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of the phase's `epoch` (0-based): lr, or during a warm-up over W = lr_warmup * epochs
        epochs, lr * min(1, (epoch + 1) / W), one rate per epoch from lr / W (never 0) up to lr at epoch W.

        FIRE's rule (isaac7778/FIRE vision/train.py:213-224, set on the optimiser by hand before each epoch, no
        scheduler): lr * ((e + 1) / epochs) * 10 while fewer than 0.1 * epochs epochs are done. Its later chunks
        (100 epochs) follow it exactly, to float rounding (theirs multiplies by 10 after dividing by the epochs):
        lr/10, 2 lr/10, ..., lr from the 10th epoch. Not kept: in their first chunk, whose 1,000 epochs are counted
        by the 100 logged ones (a counter that wraps at 100), the ramp stops at 0.91 lr after 91 epochs and restarts
        for the last 9 (0.92 lr ... 0.99 lr, then 0); and where W is not a whole number their last warm-up epoch
        overshoots lr, which the min here caps."""
        if self.lr_warmup is None:
            return self.lr
        return self.lr * min(1.0, (epoch + 1) / (self.lr_warmup * self.epochs))

    def reached_at(self, train_accs: Sequence[float]) -> int | None:
        """The phase epoch (1-based) whose train accuracy (fraction) first reached the target within the cap,
        given the phase's epochs so far; None without a target or while (or because) it has not."""
        if self.target_train_acc is None:
            return None
        return next((i + 1 for i, acc in enumerate(train_accs[:self.epochs]) if acc >= self.target_train_acc), None)

    def last_epoch(self, train_accs: Sequence[float]) -> int:
        """The phase's last epoch (1-based) as its epochs so far tell: the epoch that reached the target, or the cap
        while none has, plus the window (Ash & Adams train each phase to 99 % train accuracy, JordanAsh/warm_start
        run.py:158-176; the cap ends a run that cannot, and the window is what the metric reads)."""
        reached = self.reached_at(train_accs)
        return (self.epochs if reached is None else reached) + self.window

    @property
    def most_epochs(self) -> int:
        """The most epochs the phase can train: its cap plus the window."""
        return self.epochs + self.window

    def check(self) -> None:
        if self.window and self.target_train_acc is None:
            raise ConfigError(f"window {self.window} is set without target_train_acc: the window follows the epoch "
                              "that reaches a target (a fixed budget reads its last epochs: eval_tail)")
        names = [r.NAME for r in self.remedies]
        if not all(isinstance(r, Remedy) and type(r) is REGISTRY.get(r.NAME) for r in self.remedies):
            raise ConfigError(f"remedies must be settings of registered remedies ({', '.join(REGISTRY)}), got "
                              f"{[type(r).__name__ for r in self.remedies]}")
        if len(set(names)) != len(names):
            raise ConfigError(f"remedies lists {sorted(n for n in names if names.count(n) > 1)[0]!r} twice: a phase "
                              "holds at most one of each remedy")
        if any(e > self.epochs for e in self.probe_epochs):
            raise ConfigError(f"probe_epochs {list(self.probe_epochs)} must lie in 0..epochs ({self.epochs})")
        # Pool-specific fields are set exactly when used, so equal runs always hash equally.
        blend, stage, part = self.pool == "blend", self.pool == "stage", self.pool == "part"
        if blend != (self.gamma is not None) or blend != (self.blend_rate is not None):
            raise ConfigError("gamma and blend_rate are set for (and only for) pool 'blend'")
        if stage != (self.stage is not None):
            raise ConfigError("stage is set for (and only for) pool 'stage'")
        if part != (self.fraction is not None):
            raise ConfigError("fraction is set for (and only for) pool 'part'")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig(Config):
    phases: tuple[Phase, ...]  # trained in order from one initialisation
    seed: int = ranged(0, ge=0)  # initial weights, subset and half draw, data order: paired arms share it
    model: str = ranged("resnet", choices=MODELS)  # resnet | mlp
    depth: int = ranged(2, gt=0)  # BasicBlocks per stage (resnet) or hidden layers (mlp); 2 = ResNet-18
    width: int = ranged(64, gt=0)  # base channels w (stages w, 2w, 4w, 8w) or hidden units (mlp)
    # the dataset trained and tested on: cifar10 | cifar100 | svhn (data/datasets.py); it bounds the fields below
    dataset: str = ranged(DEFAULT_DATASET, choices=DATASETS)
    # training examples used (class-balanced); the half is half of these. At most the dataset's training images
    # (`dataset_ranges`); the default is all of CIFAR-10's (the default dataset's: stored runs keep their keys)
    train_subset: int = ranged(DATASETS[DEFAULT_DATASET].train_size, gt=0)
    # test examples evaluated (class-balanced, the same for every run); None: all of the dataset's test images
    test_subset: int | None = ranged(None, gt=0)
    batch_size: int = ranged(128, gt=0)  # examples per step; the last partial batch of an epoch is dropped
    augment: bool = False  # random crop + flip (the paper trains without)
    weight_decay: float = ranged(0.0, ge=0)  # L2 coefficient passed to the optimiser (the paper uses none)
    momentum: float = ranged(0.9, ge=0)  # for sgd_momentum only
    # bf16 autocast (fp32 master weights) or plain fp32; studies pick with `native_precision`
    precision: str = ranged("bf16", choices=PRECISIONS)
    # multi-stage runs only: pretraining stages n (the split has n+1 nested sets, from n+1 groups of classes)
    stages: int | None = ranged(None, ge=1)
    # multi-stage runs only: fraction r drawn uniformly over classes
    uniform_ratio: float | None = ranged(None, ge=0, le=1)
    probes: ProbeSettings | None = None  # how to probe; set for (and only for) runs with probe_epochs
    metrics: MetricSettings | None = None  # plasticity metrics in the history at each evaluation (None: none)
    data_id: str = ""  # fingerprint of the dataset's copy (set by the protocol from the loaded data)

    def check(self) -> None:
        if not self.phases:
            raise ConfigError("a run needs at least one phase")
        for name, (declared, why) in dataset_ranges(dataset_spec(self.dataset)).items():
            check_within(name, getattr(self, name), declared, f" ({why})")
        if any(p.probe_epochs for p in self.phases) != (self.probes is not None):
            raise ConfigError("probes (the settings) are set for (and only for) runs whose phases have probe_epochs")
        multistage = any(p.pool == "stage" for p in self.phases)
        if multistage != (self.stages is not None) or multistage != (self.uniform_ratio is not None):
            raise ConfigError("stages and uniform_ratio are set for (and only for) runs with 'stage' phases")
        if multistage:
            bad = [p.stage for p in self.phases if p.pool == "stage" and p.stage > self.stages + 1]
            if bad:
                raise ConfigError(f"stage {bad[0]} does not exist: the split has stages 1..{self.stages + 1}")
        for name in dict.fromkeys(n for p in self.phases for n in p.remedy_names):
            phases = [(i, p.remedy(name)) for i, p in enumerate(self.phases) if p.remedy(name)]
            remedy_type(name).check_run(self, phases)
        smallest = min(self.pool_size_bound(p) for p in self.phases)
        if smallest < self.batch_size:
            raise ConfigError(f"batch_size {self.batch_size} exceeds the {smallest} examples of the smallest "
                              f"training pool (train_subset={self.train_subset}): an epoch would have no step")

    def pool_size_bound(self, phase: Phase) -> int:
        """Examples in `phase`'s pool (a lower bound for multi-stage sets, whose class groups vary)."""
        if phase.pool == "half":
            return self.train_subset // 2
        if phase.pool == "stage":
            n, r, classes = self.stages, self.uniform_ratio, dataset_spec(self.dataset).num_classes
            smallest_group = classes // (n + 1)
            share = r * phase.stage / (n + 1) + (1 - r) * smallest_group * phase.stage / classes
            return int(self.train_subset * share)
        if phase.pool == "part":  # the subset's smallest classes hold train_subset // classes examples
            classes = dataset_spec(self.dataset).num_classes
            return classes * part_count(phase.fraction, self.train_subset // classes)
        return self.train_subset

    def truncated(self, phases: int) -> "RunConfig":
        """The run made of the first `phases` phases: a run of its own, stored under its own hash."""
        kept = self.phases[:phases]
        return self.replace(phases=kept, probes=self.probes if any(p.probe_epochs for p in kept) else None)

    def prefix(self) -> "RunConfig":
        """The same run without its last phase: the run a warm start continues from."""
        return self.truncated(len(self.phases) - 1)


def part_count(fraction: float, members: int) -> int:
    """Examples of a class of `members` that a part of `fraction` takes: the nearest whole number, halves up (so a
    larger fraction never takes fewer, and k/N of N chunks ends at every member)."""
    return math.floor(fraction * members + 0.5)


def dataset_ranges(spec: DatasetSpec) -> dict[str, tuple[Range, str]]:
    """The run fields whose valid values depend on the dataset: each one's range, and why (for the message)."""
    return {
        "train_subset": (Range(gt=0, le=spec.train_size), f"{spec.title} has {spec.train_size} training images"),
        "test_subset": (Range(gt=0, le=spec.test_size), f"{spec.title} has {spec.test_size} test images"),
        "stages": (Range(ge=1, le=spec.num_classes - 1),
                   f"n+1 class groups of {spec.title}'s {spec.num_classes} classes"),
    }
