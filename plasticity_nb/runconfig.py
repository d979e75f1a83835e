"""What a run is: its phases and settings (`Phase`, `RunConfig`), checked when built.

At the bottom of the import graph: the store, the studies and the training code all read run configs,
and none of them needs the others to do so. A config's hash names its stored results (config.py).
"""
from __future__ import annotations

import dataclasses

from .config import Config, ConfigError, check_choice, check_positive
from .data import NUM_CLASSES
from .models import MODELS
from .probesettings import ProbeSettings
from .remedysettings import ContinualBackpropSettings, Dash, L2Init, MetricSettings, ReDo, ShrinkPerturb

OPTIMIZERS = ("adam", "sgd", "sgd_momentum", "rmsprop")
# Training pools: the pretraining half of the subset, the whole subset, a blend that fades from the
# half to the whole (Fig. 3), or one set of a multi-stage split (Fig. 4).
POOLS = ("half", "full", "blend", "stage")
PRECISIONS = ("bf16", "fp32")
REMEDIES = ("shrink_perturb", "dash", "l2_init", "redo", "cbp")  # Phase fields, in the order they act


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase(Config):
    pool: str = "full"  # training examples: half | full | blend | stage
    epochs: int = 1  # epoch budget: passes over the pool (blend: steps of the full subset)
    optimizer: str = "adam"  # adam | sgd | sgd_momentum | rmsprop; a new one at every phase
    lr: float = 1e-3  # constant learning rate
    target_train_acc: float | None = None  # stop once an epoch's train accuracy (fraction) reaches this
    reset_groups: tuple[int, ...] = ()  # module groups (1-6) re-initialised before this phase
    gamma: float | None = None  # blend only: p(full) = 1 - gamma^(blend_rate * step / steps of the phase)
    blend_rate: float | None = None  # blend only: the paper's 50
    stage: int | None = None  # stage only: which set D_i of the run's multi-stage split (1-based)
    eval_every: int = 1  # test-set evaluation every this many epochs (and always at the phase's last)...
    eval_tail: int = 0  # ...and at each of the phase's last eval_tail epochs (a metric window)
    probe_epochs: tuple[int, ...] = ()  # curvature/noise probes after these epochs (0: before the first step)
    # Remedies (remedysettings.py; None: off). At the phase start, after any reset_groups:
    shrink_perturb: ShrinkPerturb | None = None  # Ash & Adams: theta <- shrink theta + perturb theta_fresh
    dash: Dash | None = None  # Shin et al.: direction-aware shrinking over the data of the earlier phases
    # During the phase:
    l2_init: L2Init | None = None  # Kumar et al.: loss + coefficient sum ||theta - theta_0||^2
    redo: ReDo | None = None  # Sokar et al.: re-initialise dormant units every `every` steps
    cbp: ContinualBackpropSettings | None = None  # Dohare et al.: replace low-utility mature units each step

    @property
    def remedies(self) -> tuple[str, ...]:
        """Names of the remedies this phase applies."""
        return tuple(name for name in REMEDIES if getattr(self, name) is not None)

    def check(self) -> None:
        check_choice("pool", self.pool, POOLS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_positive("epochs", self.epochs)
        check_positive("eval_every", self.eval_every)
        check_positive("eval_tail", self.eval_tail, allow_zero=True)
        if any(not 0 <= e <= self.epochs for e in self.probe_epochs):
            raise ConfigError(f"probe_epochs {list(self.probe_epochs)} must lie in 0..epochs ({self.epochs})")
        check_positive("lr", self.lr)
        if self.target_train_acc is not None and not 0 < self.target_train_acc <= 1:
            raise ConfigError(f"target_train_acc is a fraction in (0, 1], got {self.target_train_acc}")
        bad_groups = [g for g in self.reset_groups if not 1 <= g <= 6]
        if bad_groups:
            raise ConfigError(f"reset_groups {bad_groups} outside the module groups 1-6")
        # Pool-specific fields are set exactly when used, so equal runs always hash equally.
        blend, stage = self.pool == "blend", self.pool == "stage"
        if blend != (self.gamma is not None) or blend != (self.blend_rate is not None):
            raise ConfigError("gamma and blend_rate are set for (and only for) pool 'blend'")
        if blend and not 0 < self.gamma < 1:
            raise ConfigError(f"gamma must lie in (0, 1), got {self.gamma}")
        if blend:
            check_positive("blend_rate", self.blend_rate)
        if stage != (self.stage is not None):
            raise ConfigError("stage is set for (and only for) pool 'stage'")
        if stage:
            check_positive("stage", self.stage)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig(Config):
    phases: tuple[Phase, ...]  # trained in order from one initialisation
    seed: int = 0  # initial weights, subset and half draw, data order: paired arms share it
    model: str = "resnet"  # resnet | mlp
    depth: int = 2  # BasicBlocks per stage (resnet) or hidden layers (mlp); 2 = ResNet-18
    width: int = 64  # base channels w (stages w, 2w, 4w, 8w) or hidden units (mlp)
    train_subset: int = 50000  # training examples used (class-balanced); the half is half of these
    test_subset: int | None = None  # test examples evaluated (class-balanced, the same for every run); None: all 10,000
    batch_size: int = 128  # examples per step; the last partial batch of an epoch is dropped
    augment: bool = False  # random crop + flip (the paper trains without)
    weight_decay: float = 0.0  # L2 coefficient passed to the optimiser (the paper uses none)
    momentum: float = 0.9  # for sgd_momentum only
    precision: str = "bf16"  # bf16 autocast (fp32 master weights) or plain fp32; studies pick with `native_precision`
    stages: int | None = None  # multi-stage runs only: pretraining stages n (the split has n+1 nested sets)
    uniform_ratio: float | None = None  # multi-stage runs only: fraction r drawn uniformly over classes
    probes: ProbeSettings | None = None  # how to probe; set for (and only for) runs with probe_epochs
    metrics: MetricSettings | None = None  # plasticity metrics in the history at each evaluation (None: none)
    data_id: str = ""  # fingerprint of the CIFAR-10 copy (set by the protocol from the loaded data)

    def check(self) -> None:
        if not self.phases:
            raise ConfigError("a run needs at least one phase")
        check_choice("model", self.model, MODELS)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("depth", "width", "train_subset", "test_subset", "batch_size"):
            check_positive(name, getattr(self, name))
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("momentum", self.momentum, allow_zero=True)
        if any(p.probe_epochs for p in self.phases) != (self.probes is not None):
            raise ConfigError("probes (the settings) are set for (and only for) runs whose phases have probe_epochs")
        multistage = any(p.pool == "stage" for p in self.phases)
        if multistage != (self.stages is not None) or multistage != (self.uniform_ratio is not None):
            raise ConfigError("stages and uniform_ratio are set for (and only for) runs with 'stage' phases")
        if multistage:
            check_positive("stages", self.stages)
            if not 0 <= self.uniform_ratio <= 1:
                raise ConfigError(f"uniform_ratio r must lie in [0, 1], got {self.uniform_ratio}")
            if self.stages + 1 > NUM_CLASSES:
                raise ConfigError(f"stages {self.stages} needs {self.stages + 1} class groups; "
                                  f"CIFAR-10 has {NUM_CLASSES}")
            bad = [p.stage for p in self.phases if p.pool == "stage" and p.stage > self.stages + 1]
            if bad:
                raise ConfigError(f"stage {bad[0]} does not exist: the split has stages 1..{self.stages + 1}")
        if self.phases[0].dash is not None:
            raise ConfigError("dash shrinks along the gradient of the data seen before its phase: the first phase "
                              "has seen none (set it on a later phase)")
        cbp = {p.cbp for p in self.phases if p.cbp is not None}
        if len(cbp) > 1:
            raise ConfigError("cbp settings differ between phases: a run's units keep one utility and age "
                              "throughout, so every phase with cbp needs the same settings")
        smallest = min(self.pool_size_bound(p) for p in self.phases)
        if smallest < self.batch_size:
            raise ConfigError(f"batch_size {self.batch_size} exceeds the {smallest} examples of the smallest "
                              f"training pool (train_subset={self.train_subset}): an epoch would have no step")

    def pool_size_bound(self, phase: Phase) -> int:
        """Examples in `phase`'s pool (a lower bound for multi-stage sets, whose class groups vary)."""
        if phase.pool == "half":
            return self.train_subset // 2
        if phase.pool == "stage":
            n, r = self.stages, self.uniform_ratio
            smallest_group = NUM_CLASSES // (n + 1)
            share = r * phase.stage / (n + 1) + (1 - r) * smallest_group * phase.stage / NUM_CLASSES
            return int(self.train_subset * share)
        return self.train_subset

    def truncated(self, phases: int) -> "RunConfig":
        """The run made of the first `phases` phases: a run of its own, stored under its own hash."""
        kept = self.phases[:phases]
        return self.replace(phases=kept, probes=self.probes if any(p.probe_epochs for p in kept) else None)

    def prefix(self) -> "RunConfig":
        """The same run without its last phase: the run a warm start continues from."""
        return self.truncated(len(self.phases) - 1)
