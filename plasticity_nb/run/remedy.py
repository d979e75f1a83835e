"""A remedy for lost plasticity as one type: its settings (a `Config`), the hooks through which it acts, and what
it carries from phase to phase and across checkpoints.

Every remedy is a subclass of `Remedy` registered here (`register`), which the training loop, run configs,
notebook 10, the explorer and the claims all read; `ACTING_ORDER` declares the order in which a phase's remedies
act. A remedy's module (remedies/ for the built-in ones, any module or notebook for a user's own) holds its
settings, when it acts, its maths and its state; nothing else needs an edit to add one.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

if TYPE_CHECKING:
    import torch
    from torch import nn

from ..core.config import Config, ConfigError
from .hooks import Hook

Examples = tuple["torch.Tensor", "torch.Tensor"]  # normalised images and labels, on the device
# Where notebook 10 applies a remedy in the warm arm: once, to the warm run before tuning, or in both phases.
PLACEMENTS = ("tuning start", "both phases")


@dataclasses.dataclass(frozen=True)
class Budget:
    """The size of the task a comparison gives a remedy (the tuning phase whose plasticity is measured)."""

    steps_per_epoch: int  # optimiser steps per epoch of the task
    task_steps: int  # optimiser steps of the whole task


class RemedyContext(Protocol):
    """What a remedy may use to build its hooks for one phase of one run (the training code provides it)."""

    config: Any  # the run's RunConfig
    phase_index: int  # 0-based

    def fresh_model(self, seed: int) -> nn.Module:
        """A newly initialised model of the run's architecture, from `seed`, on the run's device."""

    def pool(self) -> Examples:
        """The phase's training examples."""

    def chunks(self) -> list[list[Examples]]:
        """Each phase's new examples up to and including this one, in arrival order, as micro-batches."""

    def initial(self) -> dict[str, torch.Tensor]:
        """The run's initial parameters theta_0 (held when a remedy sets WANTS_INITIAL)."""

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        """The test-set loss and accuracy of `model` (one of the run's architecture, e.g. `fresh_model`'s with other
        weights loaded), evaluated as the run evaluates its own after an epoch."""

    def state(self, name: str) -> Any:
        """The run-wide state `run_state` made for remedy `name`."""

    def seed(self, *parts: int) -> int:
        """A seed derived from the run's seed and `parts` (its streams never overlap)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Remedy(Config):
    """Subclass with frozen, kw_only dataclass fields (each validated with `ranged`, citing its source), set
    the class attributes, implement `hooks`, and `register` the class."""

    NAME: ClassVar[str] = ""  # its name in run configs, stored keys, notebook 10 and claims (an identifier)
    ACTS: ClassVar[str] = ""  # when it acts, in words
    PLACEMENT: ClassVar[str] = "both phases"  # notebook 10: one of PLACEMENTS
    WANTS_INITIAL: ClassVar[bool] = False  # its hooks read the run's initial parameters

    def hooks(self, context: RemedyContext) -> list[Hook]:
        """The hooks that apply this remedy during the context's phase, in the order they act."""
        raise NotImplementedError(f"{type(self).__name__}.hooks")

    def optimizer(self, model: nn.Module, phase: Any) -> torch.optim.Optimizer | None:
        """The phase's optimiser over `model`, where this remedy replaces the one `phase.optimizer` names (Muon),
        built at the phase start as every phase's is (and again, then loaded, when a checkpoint resumes the phase);
        None, the default: that one. At most one remedy of a phase builds it."""
        return None

    @classmethod
    def for_budget(cls, budget: Budget) -> "Remedy":
        """The settings a comparison (notebooks 10, 11) runs at `budget`: the class's defaults (the authors'), or,
        where those are sized for far longer runs, the remedy's own scaling rule, stated in its docstring and
        written down before any result."""
        return cls()

    @classmethod
    def check_run(cls, config: Any, settings: list[tuple[int, "Remedy"]]) -> None:
        """Checks across a run's phases ((phase index, settings) of each phase with this remedy); raise
        ConfigError naming the culprit."""

    @classmethod
    def run_state(cls, settings: list["Remedy"], model: nn.Module, seed: Callable[[int], int]) -> Any:
        """What the remedy carries across the run's phases (an object with state_dict/load_state_dict, whose
        tensors are checkpointed and stored with the run), made once from the just-initialised model; None for
        nothing. `seed(tag)` derives the run's seed for a stream."""
        return None


BUILTIN_MODULE = "plasticity_nb.remedies.builtin"  # registers the built-in remedies


class Registry(dict):
    """Remedy name -> type, in registration order (ACTING_ORDER, not this, says in which order they act). The
    built-in remedies register on the first read: the package imports without torch until a remedy is needed (`run`
    cannot import `remedies/`, which builds on it, so it names the module instead)."""

    _loading = False

    def _load_builtin(self) -> None:
        if not Registry._loading:
            Registry._loading = True  # the built-in modules read the registry as they register
            importlib.import_module(BUILTIN_MODULE)

    def __getitem__(self, name):
        self._load_builtin()
        return super().__getitem__(name)

    def __contains__(self, name):
        self._load_builtin()
        return super().__contains__(name)

    def __iter__(self):
        self._load_builtin()
        return super().__iter__()

    def __len__(self):
        self._load_builtin()
        return super().__len__()

    def get(self, name, default=None):
        self._load_builtin()
        return super().get(name, default)

    def keys(self):
        self._load_builtin()
        return super().keys()

    def values(self):
        self._load_builtin()
        return super().values()

    def items(self):
        self._load_builtin()
        return super().items()


REGISTRY: Registry = Registry()
# The order in which a phase's remedies act, where several act at one point: Muon first (it builds the phase's
# optimiser, which exists before any hook acts; its hook does nothing), then those at the phase start (shrink-and-
# perturb, the full reset, DASH, then FIRE, as FIRE's authors order them, isaac7778/FIRE vision/train.py:166-191, so
# that the step starts from the weights FIRE made), then those in the loss (L2 Init, Parseval), around the step
# (SAM), then those after the steps (ReDo, continual backprop, then SNR, which FIRE calls after continual backprop,
# vision/train.py:272-278; then the weight edits: soft shrink-and-perturb, weight clipping, the Hare & Tortoise EMA,
# which thus averages the weights the step's other remedies left). A remedy not named here (a user's) acts after
# these, in the order the remedies were first registered.
ACTING_ORDER = ("muon", "shrink_perturb", "full_reset", "dash", "fire", "l2_init", "parseval", "sam", "redo", "cbp",
                "snr", "soft_shrink_perturb", "weight_clipping", "hare_tortoise")
RESERVED_NAMES = ("metrics",)  # the run-wide state of the plasticity metrics is stored under this name


def register(cls: type[Remedy]) -> type[Remedy]:
    """Add a remedy type to the registry; usable as a decorator. One not in ACTING_ORDER acts after those that are
    and after the remedies registered before it."""
    if not (isinstance(cls, type) and issubclass(cls, Remedy)) or cls is Remedy:
        raise ConfigError(f"{cls!r} is not a subclass of plasticity_nb.run.remedy.Remedy")
    name = cls.NAME
    if not name.isidentifier() or name in RESERVED_NAMES:
        raise ConfigError(f"{cls.__name__}.NAME must be an identifier other than {', '.join(RESERVED_NAMES)}, "
                          f"got {name!r}")
    if cls.PLACEMENT not in PLACEMENTS:
        raise ConfigError(f"{cls.__name__}.PLACEMENT is {cls.PLACEMENT!r}: choose one of {', '.join(PLACEMENTS)}")
    # dict's own lookup: registering must not load the built-in remedies, whose modules register as they import
    known = dict.get(REGISTRY, name, cls)
    if known is not cls and known.__qualname__ != cls.__qualname__:
        raise ConfigError(f"a remedy named {name!r} is already registered ({known.__qualname__})")
    REGISTRY[name] = cls  # the same class defined again (a re-run notebook cell) replaces the old one, in its place
    return cls


def acting_rank(name: str) -> tuple[int, int]:
    """Where registered remedy `name` acts among a phase's remedies (lower first): its place in ACTING_ORDER, else
    after all of those, in registration order."""
    if name in ACTING_ORDER:
        return ACTING_ORDER.index(name), 0
    return len(ACTING_ORDER), list(REGISTRY).index(name)


def defining_modules(config: Any) -> tuple[str, ...]:
    """The modules that define the remedies of a RunConfig: another process imports them to read its configs."""
    return tuple(sorted({type(r).__module__ for phase in config.phases for r in phase.remedies}))


def remedy_type(name: str) -> type[Remedy]:
    if name not in REGISTRY:
        raise ConfigError(f"no remedy named {name!r} is registered in this process (known: {', '.join(REGISTRY)}); "
                          "import the module that registers it")
    return REGISTRY[name]

