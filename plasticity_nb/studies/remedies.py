"""10 · Remedies and plasticity metrics, side by side on the warm-start gap. Claims C11-C14 (C12b added after
seeing C12's result: DASH beat scratch, which an equivalence test calls "not equivalent"; declared below); the
remedies of 2024 and C15 over every remedy: notebook 11 (newer_remedies.py), on this protocol.

Each condition `remedy` pairs, per seed, a warm-started run with a scratch run:
- "none": the plain warm start of notebook 01 against plain scratch;
- shrink_perturb, dash: applied once, at the start of tuning, to the warm run (Ash & Adams 2020; Shin et al.
  2024); compared with plain scratch ("does it recover from-scratch accuracy?");
- l2_init, redo, cbp: the trainability remedies, on in both phases of the warm run (they are meant to keep the
  network trainable while it learns, Kumar et al. 2023, Sokar et al. 2023, Dohare et al. 2024); compared with
  plain scratch;
- augment, weight_decay: standard regularisation changes the training setup, so both arms get it: warm with it
  against scratch with it.
Every run records the plasticity metrics (measures/metric_settings.py) at each evaluation, and at the start
of each phase the gradient norms on the pretraining half and on the new half (Ash & Adams' imbalance).

Each condition's settings are one parameter, `remedies`: a list of names, or a mapping of each name to its
settings (`{"redo": {"every": 100}}`; the settings type's, or a dict of their fields). Where it gives none, they are
the sources' own (the settings types' defaults), or scaled to the budget by the remedy's own rule
(`Remedy.for_budget`); ReDo's period and continual backprop's rate and maturity are scaled to each preset's budget
(AT_PRESET), fixed before any result (study-protocols.md §12).
"""
from __future__ import annotations

import collections.abc
import dataclasses
from typing import Any, ClassVar, Iterable, Mapping

import pandas as pd

from ..analysis.claims import ASH_ADAMS, LEE, RESCIENCE, SHIN, Claim, ClaimResult
from ..analysis.estimates import Share, improvement_share, share_over_conditions, share_test
from ..analysis.stats import Test, bound_test, difference_test
from ..core.config import Config as Settings
from ..core.config import ConfigError, range_of, ranged
from ..data.datasets import DEFAULT_DATASET
from ..measures.metric_settings import METRIC_DEFINITIONS, MetricSettings
from ..run.remedy import REGISTRY, Budget, Remedy, remedy_type
from ..run.run_config import Phase, RunConfig
from . import resets
from .study_config import (
    FIRE_FRACTION,
    FIRE_PHASE,
    PROTOCOLS,
    Plan,
    WarmStartConfig,
    check_sweep,
    equal_steps_epochs,
    part_size,
    presets,
)
from .study_result import CLOSED_THREAT, StudyResult

NONE = "none"
BOTH_ARMS = "both arms"  # a regulariser's placement: it changes the training setup of the warm and the scratch arm


@dataclasses.dataclass(frozen=True, kw_only=True)
class Regulariser(Settings):
    """Standard regularisation as a condition: it changes the training setup, not the warm start, so both arms get
    it (warm with it against scratch with it). Not a remedy of the registry, but configured as one is: its settings
    type, named in `remedies`, with its defaults where it is given none."""

    NAME: ClassVar[str] = ""  # its name in `remedies`, the plan's labels and the claims
    PLACEMENT: ClassVar[str] = BOTH_ARMS

    @classmethod
    def for_budget(cls, budget: Budget) -> "Regulariser":
        """As `Remedy.for_budget`: its defaults at every budget."""
        return cls()

    def run_fields(self) -> dict[str, Any]:
        """The RunConfig fields it sets, in both arms."""
        raise NotImplementedError(f"{type(self).__name__}.run_fields")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Augment(Regulariser):
    """Random crop and flip in both arms (off in the paper)."""

    NAME = "augment"

    def run_fields(self) -> dict[str, Any]:
        return dict(augment=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WeightDecay(Regulariser):
    """An L2 penalty through the optimiser, in both arms."""

    NAME = "weight_decay"

    coefficient: float = ranged(5e-4, gt=0)  # the usual ResNet/CIFAR value (0 would repeat the plain warm start)

    def run_fields(self) -> dict[str, Any]:
        return dict(weight_decay=self.coefficient)


REGULARISERS = {kind.NAME: kind for kind in (Augment, WeightDecay)}
# The built-in remedies (their PLACEMENT: shrink-and-perturb and DASH once before tuning, the trainability
# remedies in both phases), then the regularisers: every condition of the presets. A remedy registered later
# (run/remedy.py) is a condition too, named in `remedies`, with its class's default settings or its own.
BUILTIN_CONDITIONS = ("shrink_perturb", "dash", "l2_init", "redo", "cbp", *REGULARISERS)
# The settings a preset gives a remedy named without its own, where they are not its class's defaults (the
# sources' values: shrink-and-perturb lambda 0.6, sigma 0.01, Ash & Adams Fig. 8; DASH alpha = lambda = 0.3; L2 Init
# 1e-2; ReDo tau 0.1; weight decay 5e-4) or its `for_budget`: ReDo's period and continual backprop's rate rho and
# maturity m, scaled to the preset's budget (quick: ~1,200 steps, inside the sources' ranges rho 1e-6..1e-4,
# m 100..10k; paper: their own), fixed before any result (study-protocols.md §12).
# In `remedies`' own spelling (dicts of fields), so that the study imports without the remedies' modules (torch).
AT_PRESET = {
    "smoke": {"redo": {"every": 5}, "cbp": {"replacement_rate": 1e-3, "maturity_threshold": 5}},
    "quick": {"redo": {"every": 200}, "cbp": {"replacement_rate": 1e-4, "maturity_threshold": 100}},
    "paper": {"redo": {"every": 1000}, "cbp": {"replacement_rate": 1e-5, "maturity_threshold": 1000}},
}
# Notebook 10's parameters before `remedies` held each remedy's settings, one field of one remedy each: old
# notebooks' (and their papermill parameters') are still read, as that field of that remedy.
FLATTENED = {"sp_shrink": ("shrink_perturb", "shrink"), "sp_perturb": ("shrink_perturb", "perturb"),
             "dash_alpha": ("dash", "alpha"), "dash_shrink_floor": ("dash", "shrink_floor"),
             "l2_init_coefficient": ("l2_init", "coefficient"), "redo_tau": ("redo", "tau"),
             "redo_every": ("redo", "every"), "cbp_replacement_rate": ("cbp", "replacement_rate"),
             "cbp_maturity": ("cbp", "maturity_threshold"), "regulariser_weight_decay": ("weight_decay", "coefficient")}
METRICS = tuple(METRIC_DEFINITIONS)
# What the runs record at the start of tuning: the gradient imbalance, then every metric before the first step
# (C15's candidates, notebook 11).
START_METRICS = ("grad_ratio", *(f"start_{m}" for m in METRICS))


def trainability_claim(claim: str, name: str) -> Claim:
    """Lee et al.'s statement about one remedy that keeps a network trainable (C13a-c)."""
    return Claim(claim, "10_remedies", f"{name} does little for the warm-start gap",
                 f"Methods that keep a network trainable ({name} among them) do little for generalisation after a "
                 "warm start (Lee et al. 2024).",
                 f"reduction = gap(none) - gap({name} in both phases); bound: below the preset's smallest effect of "
                 "interest (`smallest_effect`)", source=LEE)


# The claims this notebook tests (the registry: studies.claim_registry); C15 over every remedy is notebook 11's.
SHRINK_PERTURB_CLOSES = Claim(
    "C11", "10_remedies", "shrink-and-perturb before tuning closes the warm-start gap",
    "Shrink-and-perturb (lambda 0.6, sigma 0.01 at its sweet spot) recovers from-scratch generalisation while "
    "keeping most of warm-starting's speed (Ash & Adams 2020, Fig. 8; their Table 1 gap: 78.0 scratch vs 74.4 "
    "warm, ResNet-18 + Adam, CIFAR-10 at full scale).",
    "remaining gap = scratch - warm with shrink-and-perturb at the start of tuning; equivalence (TOST) within "
    "+/- the preset's margin", source=ASH_ADAMS)
DASH_CLOSES = Claim(
    "C12", "10_remedies", "DASH before tuning closes the warm-start gap",
    "DASH beats warm start, shrink-and-perturb and cold start in test accuracy (Shin et al. 2024, Table 1; "
    "numbers not quoted: we cannot read them in our sources).",
    "remaining gap = scratch - warm with DASH at the start of tuning; equivalence (TOST) within +/- the margin",
    source=SHIN)
DASH_BEATS_SCRATCH = Claim(
    "C12b", "10_remedies", "DASH before tuning generalises better than training from scratch",
    "DASH beats warm start, shrink-and-perturb and cold start in test accuracy (Shin et al. 2024, Table 1). "
    "Added after seeing C12's result (DASH above scratch, so 'not equivalent'): this is their own statement.",
    "warm with DASH - scratch test accuracy (the negative remaining gap); difference test", source=SHIN,
    fixed="2026-11-26")
# Lee et al.'s statements, one per trainability remedy
TRAINABILITY_CLAIMS = {remedy: trainability_claim(claim, name) for remedy, claim, name in (
    ("l2_init", "C13a", "L2 Init"), ("redo", "C13b", "ReDo"), ("cbp", "C13c", "continual backprop"))}
AUGMENTATION_SHRINKS = Claim(
    "C14a", "10_remedies", "data augmentation shrinks the warm-start gap",
    "With standard augmentation the warm-start gap shrinks (ReScience reproduction of Ash & Adams, Kireev "
    "2021); re-initialisation helps little once augmentation is used (Zaidi et al. 2022).",
    "gap(no augmentation) - gap(augmentation, both arms augmented); difference test", source=RESCIENCE)
WEIGHT_DECAY_FALLS_SHORT = Claim(
    "C14b", "10_remedies", "weight decay does not close the warm-start gap",
    "No ordinary knob, L2 regularisation included, closes the gap (Ash & Adams 2020).",
    "gap with weight decay in both arms; difference test", source=ASH_ADAMS)
CLAIMS = (SHRINK_PERTURB_CLOSES, DASH_CLOSES, DASH_BEATS_SCRATCH, *TRAINABILITY_CLAIMS.values(), AUGMENTATION_SHRINKS,
          WEIGHT_DECAY_FALLS_SHORT)


def settings_type(name: str) -> type[Remedy] | type[Regulariser]:
    """The settings type of condition `name`: a regulariser's, or a registered remedy's (ConfigError naming both
    kinds otherwise)."""
    if name in REGULARISERS:
        return REGULARISERS[name]
    if name not in REGISTRY:
        raise ConfigError(f"remedies has {name!r}, which is neither a registered remedy ({', '.join(REGISTRY)}) nor a "
                          f"regulariser ({', '.join(REGULARISERS)}); register your own with "
                          "plasticity_nb.run.remedy.register")
    return remedy_type(name)


def new_spelling(old: str, value: Any = "...") -> str:
    name, field = FLATTENED[old]
    return f"remedies={{{name!r}: {{{field!r}: {value}}}}}"


class RemedyMap(collections.abc.Mapping):
    """The conditions a remedy study runs besides `none`, in order, each with what it was given: its settings, a
    dict of the fields that change its default here, or None for that default (`Config.settings` gives the
    settings it runs with). Its keys are the names, so iterating it, `in` and `tuple()` read as a list of names
    would; read-only and hashable, as a frozen config's fields are."""

    def __init__(self, entries: Mapping[str, Any]):
        self._entries = dict(entries)

    @classmethod
    def of(cls, given: Any) -> "RemedyMap":
        """`remedies` as a notebook or a caller gives it: a list of names (or of settings), or a mapping of names to
        settings, dicts of their fields or None; each entry checked against its condition's settings type."""
        if isinstance(given, RemedyMap):
            return given
        if isinstance(given, collections.abc.Mapping):
            entries = list(given.items())
        elif isinstance(given, (list, tuple)):
            entries = [(v.NAME, v) if isinstance(v, (Remedy, Regulariser)) else (v, None) for v in given]
        else:
            raise ConfigError("remedies must be a list of remedy names or a mapping of each remedy's name to its "
                              f"settings (a dict of their fields, or None for its defaults), got {given!r}")
        names = tuple(name for name, _ in entries)
        if not all(isinstance(name, str) for name in names):
            raise ConfigError(f"remedies must name each remedy by a string, got {list(names)}")
        check_sweep("remedies", names)
        return cls({name: checked(name, spec) for name, spec in entries})

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:  # the order is the plan's: {a, b} is not {b, a}
        return isinstance(other, collections.abc.Mapping) and list(self.items()) == list(other.items())

    def __hash__(self) -> int:
        return hash(tuple((k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in self.items()))

    def __repr__(self) -> str:
        return f"RemedyMap({self._entries!r})"


def checked(name: str, spec: Any) -> Any:
    """An entry of `remedies`: None, settings of `name`'s own type, or a dict of their fields (validated by building
    them; kept as the fields it changes, their values as built)."""
    kind = settings_type(name)
    if spec is None or type(spec) is kind:
        return spec
    if isinstance(spec, collections.abc.Mapping):
        try:
            built = kind.from_dict(dict(spec))
        except ConfigError as err:
            raise ConfigError(f"remedies[{name!r}]: {err}") from None
        return {field: getattr(built, field) for field in spec}
    raise ConfigError(f"remedies[{name!r}] must be {kind.__name__} settings, a dict of their fields or None (its "
                      f"defaults), got {spec!r}")


class RemedyConditions:
    """What a study whose conditions are remedies shares (notebooks 10, 11 and 13; mixed in before its StudyConfig,
    which declares the `remedies` field): `remedies` read as a RemedyMap, each remedy named without settings given
    the preset's (PRESET_SETTINGS) or its own budget rule's, and the conditions it offers the explorer."""

    # The settings a preset gives a remedy named without its own (AT_PRESET), in `remedies`' spelling
    PRESET_SETTINGS: ClassVar[dict[str, dict[str, dict[str, Any]]]] = AT_PRESET

    def __post_init__(self) -> None:
        object.__setattr__(self, "remedies", RemedyMap.of(self.remedies))
        super().__post_init__()

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "RemedyConditions":
        """The preset with `overrides`, where a remedy named without settings of its own takes the preset's for it
        (PRESET_SETTINGS; otherwise its defaults here, `settings`), a dict of fields changes those, and an old
        notebook's parameter of one remedy's field (FLATTENED: `sp_shrink`, `redo_every`, ...) sets that field."""
        if preset not in cls.PRESETS:
            return super().from_preset(preset, **overrides)  # which names the presets
        flattened = {old: overrides.pop(old) for old in list(overrides) if old in FLATTENED}
        given = overrides.get("remedies")
        entries = dict(RemedyMap.of(cls.PRESETS[preset]["remedies"] if given is None else given))
        for old, value in flattened.items():
            if value is not None:
                entries.update(with_flattened(entries, old, value))
        at_preset = cls.PRESET_SETTINGS.get(preset, {})
        for name, spec in entries.items():
            if name in at_preset and (spec is None or isinstance(spec, dict)):
                entries[name] = {**at_preset[name], **(spec or {})}
        return super().from_preset(preset, **{**overrides, "remedies": entries})

    def common_arms(self, remedy: str) -> tuple[dict[str, Any], Remedy | None]:
        """What both arms of `remedy`'s condition get (the metrics; a regulariser's run fields), and the remedy's
        settings where it acts in the warm arm alone (None: the condition none, or a regulariser)."""
        run = dict(metrics=MetricSettings())
        if remedy == NONE:
            return run, None
        settings = self.settings(remedy)
        if settings.PLACEMENT == BOTH_ARMS:
            return {**run, **settings.run_fields()}, None
        return run, settings

    def settings(self, remedy: str) -> Remedy | Regulariser:
        """The settings `remedy` runs with: those `remedies` gives it, else its defaults for this study (its type's
        `for_budget` at the tuning budget: its class's defaults, the sources' values, for a type without a scaling
        rule), with the fields that a dict of them gives changed."""
        spec = self.remedies[remedy]
        if spec is not None and not isinstance(spec, dict):
            return spec
        default = settings_type(remedy).for_budget(self.tuning_budget())
        return default.replace(**spec) if spec else default

    def tuning_budget(self) -> Budget:
        """The tuning phase's size, for a remedy's own scaling rule (`Remedy.for_budget`)."""
        steps_per_epoch = self.train_subset // self.batch_size
        return Budget(steps_per_epoch=steps_per_epoch, task_steps=self.tune_epochs * steps_per_epoch)

    def offers(self) -> tuple[str, ...]:
        return tuple(self.remedies)

    def offering(self, picked: Iterable[str]) -> "RemedyConditions":
        return self.replace(remedies={name: self.remedies[name] for name in picked})


# FIRE's warm start (`protocol="fire"`) at each preset, under what a caller gives: its fixed budget and batch 256, at
# the sizes it runs at here. smoke: plumbing; batch 32, so that the 10 % part (50 of 512 images) holds a step. quick:
# the quick preset's 5,000 images and w8 ResNet-18 on a 2-core CPU, FIRE's batch 256 (as C18b is registered): 19
# steps an epoch of the subset, 1 of its 500-image part (an epoch's last partial batch is dropped here, FIRE's loader
# keeps it: each epoch on the part trains on a fresh 256 of its 500), so 950 epochs on the part then 50 on all, 950
# steps each. 50 epochs, quick's cap: scratch at 5,000 images reached 95-97 % train accuracy in 585-780 steps of 128
# (benchmarks/scale_pilot.py, 15-20 epochs) and 99 % within 22-33 epochs (benchmarks/fit_pilot.py); 50 epochs of 256
# give it both more passes and more steps than those (not piloted at batch 256, with warm-up and clipping). paper:
# FIRE's ResNet-18 run on CIFAR-10 (vision/train.py:83-84, config.py:57-73, scripts/warm_start.sh: 100 epochs a chunk,
# batch 256, seeds 1-3), its metric window the last 10 epochs (FIRE reads the test accuracy after every epoch).
FIRE_AT_PRESET = {
    "smoke": dict(budget="fixed", batch_size=32, fraction=FIRE_FRACTION),
    "quick": dict(budget="fixed", batch_size=256, tune_epochs=50, last_k=5, fraction=FIRE_FRACTION),
    "paper": dict(budget="fixed", seeds=[1, 2, 3], train_subset=50000, batch_size=256, tune_epochs=100, last_k=10,
                  fraction=FIRE_FRACTION),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(RemedyConditions, WarmStartConfig):
    """A remedy study's config: notebook 10's (and 11's) conditions on a warm start, by Berariu et al.'s protocol
    (`protocol="ours"`: pretrain on the half, tune on the whole subset) or by FIRE's (`protocol="fire"`, isaac7778/FIRE
    at c37a0ac, vision/; `study_config.FIRE_PHASE`): the first phase on a seeded class-balanced `fraction` of the
    subset (FIRE's 10 %), the second on all of it, each phase as many optimiser steps as whole epochs allow (the first
    `pretrain_epochs`, derived: about 1 / fraction times `tune_epochs`), a new Adam at each with a linear warm-up over
    its first 10 % of epochs, gradients clipped to norm 0.5, a fixed budget; the scratch arm is FIRE's full reset,
    fresh weights trained on all of it for the tuning phase's steps with the same warm-up and clipping. As FIRE's loop
    applies them (vision/train.py:165, 247, 273, 277, 308), every remedy acts in the second phase only: those at the
    tuning start as here, and those of both phases (L2 Init, ReDo, continual backprop, Parseval, ...) from its first
    step, not while pretraining on the fraction; a regulariser changes both arms' every phase, as here.

    The premise under FIRE's protocol (issue 41 item 4): not fit by construction. Its budget is fixed (FIRE trains
    every chunk a fixed number of epochs, train.py:83-86 and 159, with no train-accuracy target), and must be: a
    target would end the phases at different steps, undoing the equal steps, and the warm-up is spread over the
    phase's fixed epochs. So `budget` is "fixed" (a target is refused), and the premise rule is the fixed budget's
    (`premise_rule`: `PremiseRule`, each arm's train accuracy over the metric window at least `premise_train_acc`,
    the arms within `premise_arm_difference`), not train-to-target's per-run `RunFitRule`.
    """

    # The conditions besides "none", in order: registered remedies (run/remedy.py) and the regularisers, as a list
    # of names or a mapping of each name to its settings (its type's, or a dict of their fields; None: its defaults
    # here). Every setting is checked against its type's ranges when the config is built.
    remedies: Mapping[str, Any]
    # train accuracy (%) whose first tuning step is reported per arm
    speed_target_acc: float = range_of(resets.Config, "speed_target_acc")
    # ours: pretrain on the half, tune on the whole subset (Berariu et al.) | fire: FIRE's warm start (above)
    protocol: str = ranged("ours", choices=PROTOCOLS)
    # protocol fire: the seeded class-balanced fraction of the subset its first phase trains on (FIRE's 0.1)
    fraction: float | None = range_of(Phase, "fraction", None)

    CONDITIONS = ("remedy",)
    RETIRED = {old: new_spelling(old) for old in FLATTENED}
    PRESETS = presets(
        # smoke: one remedy of each kind (the test suite runs it; tests/test_remedy_runs.py covers every remedy)
        smoke=dict(pretrain_epochs=2, remedies=["shrink_perturb", "l2_init", "augment"], speed_target_acc=20.0),
        # quick: ~195 pretraining + 975 tuning steps
        quick=dict(pretrain_epochs=10, remedies=list(BUILTIN_CONDITIONS), speed_target_acc=90.0),
        paper=dict(pretrain_epochs=350, remedies=list(BUILTIN_CONDITIONS), speed_target_acc=99.0))
    PROTOCOL_PRESETS: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {"fire": FIRE_AT_PRESET}

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> "Config":
        """As `RemedyConditions.from_preset`; with protocol "fire", FIRE's settings at the preset (FIRE_AT_PRESET)
        fill what the caller leaves None, and `pretrain_epochs`, unless given, is the first phase's equal steps."""
        protocol = overrides.get("protocol")
        if protocol in cls.PROTOCOL_PRESETS and preset in cls.PRESETS:
            given = {k: v for k, v in overrides.items() if v is not None}
            overrides = {**cls.PROTOCOL_PRESETS[protocol][preset], **given}
            if "pretrain_epochs" not in given:
                values = {**cls.PRESETS[preset], **overrides}
                overrides["pretrain_epochs"] = equal_steps_epochs(
                    values["tune_epochs"], values["train_subset"], values["batch_size"],
                    part_size(values["train_subset"], values.get("fraction") or FIRE_FRACTION,
                              values.get("dataset", DEFAULT_DATASET)))
        return super().from_preset(preset, **overrides)

    def check_sweep(self) -> None:
        if self.protocol != "fire":
            if self.fraction is not None:
                raise ConfigError(f"fraction {self.fraction} is the share of the subset FIRE's warm start pretrains "
                                  "on: set protocol='fire' to use it, or leave fraction None")
            return
        if self.to_target:
            raise ConfigError("budget 'target' does not fit protocol 'fire': FIRE trains every phase a fixed number "
                              "of epochs, the same steps in each, its warm-up spread over them; set budget='fixed'")
        first = self.first_phase_pool()
        part = part_size(self.train_subset, first["fraction"], self.dataset)
        if part < self.batch_size:
            raise ConfigError(f"fraction {first['fraction']} of train_subset {self.train_subset} is {part} examples, "
                              f"fewer than batch_size {self.batch_size}: the first phase would take no step")
        equal = equal_steps_epochs(self.tune_epochs, self.train_subset, self.batch_size, part)
        if self.pretrain_epochs != equal:
            raise ConfigError(f"pretrain_epochs {self.pretrain_epochs} under protocol 'fire': its first phase takes "
                              f"as many steps as the tuning phase, {equal} epochs on the fraction here; leave "
                              "pretrain_epochs None (it follows tune_epochs, batch_size, train_subset and fraction)")

    def first_phase_pool(self) -> dict[str, Any]:
        """The pool of the warm arm's first phase: the half, or FIRE's seeded fraction of the subset."""
        if self.protocol == "fire":
            return dict(pool="part", fraction=self.fraction or FIRE_FRACTION)
        return dict(pool="half")

    def tune(self, **changes: Any) -> Phase:
        """Every phase of both arms; under FIRE's protocol with its warm-up and clipping (FIRE_PHASE)."""
        if self.protocol == "fire":
            changes = {**FIRE_PHASE, **changes}
        return super().tune(**changes)

    def warm(self, seed: int, data_id: str = "", pretrain_epochs: int | None = None, pretrain=None, tune=None,
             **run: Any) -> RunConfig:
        """The warm arm: pretraining on the half, or under FIRE's protocol on its fraction, evaluated at the tuning
        phase's spacing in steps (every `eval_every` x epochs-ratio epochs: at quick every 95 of its 950 epochs on the
        10 %, as every 5 of tuning's 50)."""
        first = self.first_phase_pool()
        if self.protocol == "fire":
            ratio = max(1, round(self.pretrain_epochs / self.tune_epochs))
            first["eval_every"] = self.eval_every * ratio
        return super().warm(seed, data_id, pretrain_epochs, pretrain={**first, **(pretrain or {})}, tune=tune, **run)

    def plan(self, data_id: str = "") -> Plan:
        plan = []
        for remedy in (NONE, *self.remedies):
            warm, scratch = self.arms(remedy)
            plan += self.pairs(dict(remedy=remedy), lambda s: self.warm(s, data_id, **warm),
                               lambda s: self.scratch(s, data_id, **scratch))
        return plan

    def arms(self, remedy: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes `remedy` makes to the warm and to the scratch run (`warm()`/`scratch()` keywords), by where
        its settings act (their PLACEMENT); under FIRE's protocol every remedy in the tuning phase only, as FIRE's
        loop applies them."""
        run, settings = self.common_arms(remedy)
        if settings is None:
            return run, run
        acting = {"remedies": (settings,)}
        if settings.PLACEMENT == "tuning start" or self.protocol == "fire":
            return dict(tune=acting, **run), run
        return dict(pretrain=acting, tune=acting, **run), run


def with_flattened(entries: dict[str, Any], old: str, value: Any) -> dict[str, Any]:
    """The entry of `entries` that old parameter `old` (FLATTENED) sets to `value`, as a dict of fields; ConfigError
    naming `old` and its new spelling where it cannot: its remedy is not run, or is given that field already."""
    name, field = FLATTENED[old]
    new = new_spelling(old, repr(value))
    if name not in entries:
        raise ConfigError(f"{old} sets {name}'s {field}, but remedies does not run {name}: name it there with its "
                          f"settings, {new} ({old}'s new spelling)")
    spec = entries[name]
    if spec is not None and (not isinstance(spec, dict) or field in spec):
        raise ConfigError(f"{old} and remedies[{name!r}] both set {name}'s {field}: give it once, as {new} beside "
                          "its other settings")
    try:
        settings_type(name)(**{field: value})
    except ConfigError as err:
        raise ConfigError(f"{old} (now {new}): {err}") from None
    return {name: {**(spec or {}), field: value}}


def tuned(result: StudyResult) -> pd.DataFrame:
    """History rows of the tuning phase, with `tune_step`: steps since tuning began (scratch: since step 0)."""
    keys = ["remedy", "seed", "arm"]
    h = result.history
    began = h[h.tune_epoch <= 0].groupby(keys).step.max().rename("tuning_from").reset_index()
    rows = h[h.tune_epoch >= 1].merge(began, on=keys, how="left").fillna({"tuning_from": 0})
    return rows.assign(tune_step=rows.step - rows.tuning_from)


def remedy_table(result: StudyResult, config: Config) -> pd.DataFrame:
    """Per condition: the gap to scratch with its CI and its equivalence verdict, each arm's fit, the warm run's
    median tuning-epoch wall time relative to the plain warm start's (`overhead_pct`), and tuning steps until the
    train accuracy first reaches the target."""
    rows = tuned(result)
    # The median epoch is robust to a process's warm-up and to other work on the machine; it leaves out the
    # one-off cost at the phase start (shrink-and-perturb, DASH's pass over the half) and evaluation epochs.
    seconds = rows.groupby(["remedy", "arm", "seed"]).seconds.median().groupby(["remedy", "arm"]).mean()
    reached = rows[rows.train_acc >= config.speed_target_acc].groupby(["remedy", "arm", "seed"]).tune_step.min()
    table = []
    for remedy in (NONE, *config.remedies):
        gap = result.gap_test(remedy=remedy)
        same = result.gap_equivalence(config.equivalence_margin, remedy=remedy)
        steps = reached.get(remedy, pd.Series(dtype=float))
        table.append(dict(remedy=remedy, gap_pp=gap.estimate.mean, ci_low=gap.estimate.ci_low,
                          ci_high=gap.estimate.ci_high, equivalence=same.verdict,
                          warm_train_acc=result.fit("warm", remedy=remedy),
                          scratch_train_acc=result.fit("scratch", remedy=remedy),
                          premise=result.premise(config.premise_rule(), remedy=remedy).state,
                          overhead_pct=100 * (seconds[(remedy, "warm")] / seconds[(NONE, "warm")] - 1),
                          warm_steps_to_target=steps.get("warm", pd.Series(dtype=float)).mean(),
                          seeds_reaching=int(steps.get("warm", pd.Series(dtype=float)).count())))
    return pd.DataFrame(table)


def improvement(result: StudyResult, remedy: str) -> Test:
    """The share of seeds whose gap `remedy` reduces (gap(none) - gap(remedy) > 0), with its exact interval: an
    estimate reported beside the remedy's claim."""
    return share_test(improvement_share(result.gap_change("remedy", NONE, remedy)),
                      f"share of seeds with gap(none) - gap({remedy}) > 0")


IMPROVEMENT_COLUMNS = ["remedy", "improved", "trials", "ties", "missing", "repeated", "share", "ci_low", "ci_high",
                       "ci_level", "notebooks", "method"]


def improvement_table(results: Mapping[str, StudyResult]) -> pd.DataFrame:
    """Per remedy, over every remedy study in `results` (notebook stem -> its StudyResult; a study without a
    `remedy` condition is left out): the (condition, seed) trials whose gap it reduced (`improved`), of `trials`,
    with the exact interval of the share (estimates.share_over_conditions: approximate, since the conditions of a
    study share seeds). `ties`: trials at exactly 0, not improved; `missing`: reductions that are not finite, not
    trials; `repeated`: trials another notebook of `results` already counted (the same four runs: the remedy's
    and the plain warm start's, warm and scratch), counted once."""
    shares: dict[str, list[Share]] = {}
    notebooks: dict[str, list[str]] = {}
    repeated: dict[str, int] = {}
    seen: set[tuple[str, ...]] = set()
    for stem, result in results.items():
        if "remedy" not in result.conditions:
            continue
        for remedy in dict.fromkeys(r for r in result.gaps.remedy if r != NONE):
            runs, reductions = trial_runs(result, remedy), result.gap_change("remedy", NONE, remedy)
            fresh = [seed for seed in reductions.index if runs.get(seed) not in seen]
            seen |= set(runs.values())
            repeated[remedy] = repeated.get(remedy, 0) + len(reductions) - len(fresh)
            if fresh:
                shares.setdefault(remedy, []).append(improvement_share(reductions.loc[fresh]))
                notebooks.setdefault(remedy, []).append(f"{stem} ({len(fresh)} seeds)")
    rows = []
    for remedy, parts in shares.items():
        share = share_over_conditions(parts)
        rows.append(dict(remedy=remedy, improved=share.successes, trials=share.trials, ties=share.ties,
                         missing=share.missing, repeated=repeated[remedy], share=share.share, ci_low=share.ci_low,
                         ci_high=share.ci_high, ci_level=share.confidence, notebooks="; ".join(notebooks[remedy]),
                         method=share.method))
    return pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS)


def trial_runs(result: StudyResult, remedy: str) -> dict[int, tuple[str, ...]]:
    """Per seed: what one trial of `remedy` compares, the keys of its runs and the plain warm start's pair."""
    rows = result.summary[result.summary.remedy.isin([NONE, remedy])]
    return {int(seed): (remedy, *sorted(keys)) for seed, keys in rows.groupby("seed").key}


def metric_curves(result: StudyResult) -> pd.DataFrame:
    """Long table of the plasticity metrics at each evaluation: remedy, arm, seed, tune_epoch, metric, value."""
    h = result.history.dropna(subset=["effective_rank"])
    return h.melt(id_vars=["remedy", "arm", "seed", "tune_epoch"], value_vars=list(METRICS), var_name="metric")


def start_of_tuning(result: StudyResult) -> pd.DataFrame:
    """Per warm-started run: the start-of-tuning metrics and the run's gap to its scratch pair (pp)."""
    h = result.history
    first = h[(h.arm == "warm") & (h.tune_epoch == 1)].set_index(["remedy", "seed"])[list(START_METRICS)]
    gaps = result.gaps.set_index(["remedy", "seed"]).gap_pp
    return first.join(gaps).reset_index()


def claims(result: StudyResult, config: Config) -> list[ClaimResult]:
    """C11-C14 for each remedy in the sweep (C15, over every remedy, is notebook 11's); beside each, the share of
    seeds whose gap the remedy reduces (`improvement`)."""
    rule, found = config.premise_rule(), []
    margin = config.equivalence_margin
    for remedy, claim in (("shrink_perturb", SHRINK_PERTURB_CLOSES), ("dash", DASH_CLOSES)):
        if remedy in config.remedies:
            closes = result.gap_equivalence(margin, remedy=remedy)
            closed = result.premise(rule, threat=CLOSED_THREAT, remedy=remedy)
            found.append(ClaimResult(claim, (closes,), closed,
                                     (result.gap_test(remedy=remedy), improvement(result, remedy))))
    if "dash" in config.remedies:  # C12b: Shin et al.'s own statement, added after C12's result (declared above)
        beats = difference_test(-result.gap_series(remedy="dash"), "warm with DASH - scratch")
        beats_premise = result.premise(rule, threat=CLOSED_THREAT, remedy="dash")
        found.append(ClaimResult(DASH_BEATS_SCRATCH, (beats,), beats_premise, (improvement(result, "dash"),)))
    for remedy, claim in TRAINABILITY_CLAIMS.items():
        if remedy in config.remedies:  # "does little": the gap it removes is below the smallest effect that matters
            little = bound_test(result.gap_change("remedy", NONE, remedy), config.smallest_effect,
                                f"gap(none) - gap({remedy})")
            premise = result.reduction_premise(rule, "remedy", NONE, remedy, fewer=True)
            found.append(ClaimResult(claim, (little,), premise,
                                     (result.gap_test(remedy=remedy), result.gap_equivalence(margin, remedy=remedy),
                                      improvement(result, remedy))))
    if "augment" in config.remedies:
        shrinks = difference_test(result.gap_change("remedy", NONE, "augment"), "gap(none) - gap(augment)")
        found.append(ClaimResult(AUGMENTATION_SHRINKS, (shrinks,),
                                 result.reduction_premise(rule, "remedy", NONE, "augment"),
                                 (result.gap_equivalence(margin, remedy="augment"), improvement(result, "augment"))))
    if "weight_decay" in config.remedies:
        found.append(ClaimResult(WEIGHT_DECAY_FALLS_SHORT, (result.gap_test(remedy="weight_decay"),),
                                 result.premise(rule, remedy="weight_decay"), (improvement(result, "weight_decay"),)))
    return found
