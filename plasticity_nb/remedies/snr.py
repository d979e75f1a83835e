"""Self-Normalized Resets (Farias & Jozefiak, "Self-Normalized Resets for Plasticity in Continual Learning", ICLR
2025), as their official code does it: ajozefiak/SelfNormalizedResets at 8b84f0c, `src/algorithms/snr.py` (JAX):
`increment_neuron_ages_snr_new` (lines 156-183), `reset_neurons_snr_adam_` (270-333; the CNN's conv-to-conv reset,
555-615, is the same per layer), `update_tau_` / `update_tau` (45-95), called as `src/experiments/pm_experiment.py`
does (lines 77-94). FIRE (Han et al., ICLR 2026) runs SNR as a baseline through a PyTorch port, isaac7778/FIRE at
c37a0ac `vision/interventions/node_reset/snr.py` (with `redo.py`'s reset, lines 43-125); where the two differ this
module follows the official code, and FIRE's schedule of the thresholds is an option (below).

Per unit, in samples: its age (examples since it last fired), a histogram of the ages at which it fired or was reset,
and its threshold tau. Each step, on the step's batch of B examples (the forward pass of the step, before its update):
a unit fires if its post-ReLU activation is positive for some example (and, for a conv channel, some position);
a unit that fires adds its age to its histogram (if the age is at most tau_max) and goes to age 0, one that does not
ages by B. After the update, every unit whose age reached its tau is reset: its age is added to its histogram, goes
to 0, and the unit re-initialised (fresh incoming weights from the layer's initial distribution, zero incoming bias,
zero outgoing weights, the optimiser moments of all of those zeroed; the step counts stay: `unit_reset.py`). Every
`tau_update_every` tasks, each unit's tau moves: with c the CDF of its histogram over ages >= 1 and a the first age
where c >= `percentile` (1 if it has none), tau <- a if a < tau, else `expansion` x tau; then tau <- max(B, min(tau,
tau_max)), and the histograms empty. Every unit starts at age 0 and tau `initial_tau`.

Differences from the official code:
- Units: theirs are every hidden layer of their MLP and CNN (no normalisation), a neuron silent when its pre-activation
  is <= 0 on the batch. Here they are `nets/units.py`'s: an MLP's hidden features (theirs exactly), and each ResNet
  block's conv1 channel after its BatchNorm (silent: relu(bn1(conv1)) is 0 everywhere, the activation the next layer
  reads), with conv2's input channel as its outgoing weights. The stem, conv2 and block outputs are not units (zeroing
  one slice does not remove them: the residual sum), as for ReDo and continual backprop. A reset unit's BatchNorm
  entries also go to their defaults (weight 1, bias 0, running mean 0, variance 1): theirs have none.
- Fresh incoming weights: theirs take the reset units' slices of a whole new initialisation (`model.init(key, x)`);
  ours draw just those rows from the same distribution (PyTorch's default init, the package's) with the run's SNR
  generator.
- Ages are counted in multiples of B, so the histograms keep one bin per multiple (tau_max // B + 1 bins, not
  tau_max + 1): the same counts, a fraction of the memory. The CDF is computed in float64 (theirs in JAX's default
  float32: a CDF within float32 rounding of the percentile may fall on the other side).
- Their lower bound on tau is a literal 100 (`batch_size = 100`, line 57: their batch size); ours is B.
- A task is a phase here: thresholds move at the start of a phase when the phases SNR has trained in before it are a
  multiple of `tau_update_every` (theirs: after the task, `update_tau(..., task + 1)`; the same for training). With
  their default 16, a two-phase warm start never moves them: SNR then resets at the fixed tau `initial_tau`.

FIRE's port differs from the official code in (besides bugs we do not copy):
- the schedule: thresholds move every `threshold_reset_freq` = 16 *steps* (its `_step` counter, snr.py:66, 109),
  before that step's resets, the first time at SNR's first step: `tau_update_unit="steps"` here;
- the evidence: its forward hooks keep the last `n_analysis_samples` = 512 rows of activations (snr.py:50-56), so with
  FIRE's batch of 256 a unit fires if it fired in the last two batches (and evaluation batches, which pass through the
  same hooks, enter the window), ages grow by 512 per step and the lower bound on tau is 512: not reproduced (ours:
  the step's batch, B);
- the units: every Conv2d and Linear but the shortcuts, read before their BatchNorm (`relu(conv(x)) > 0`), each
  reset paired with the next module in registration order (ignoring the residual path and BatchNorm);
- the reset: fresh weights *and biases* from `reset_parameters()`; the outgoing weights and the optimiser moments are
  meant to be zeroed, but `weight.data[:, mask, ...].data.fill_(0)` and `buf[indices].zero_()` act on copies made by
  boolean indexing, so they stay (redo.py:92, 98, 121), while Adam's step count of every reset tensor is zeroed
  (redo.py:122-123), which rescales the whole tensor's next updates;
- the histogram clamps an age above tau_max into its last bin; the official code drops it (only reachable when tau_max
  is not a multiple of B), and the CDF divides by (sum + 1e-8).
tests/test_snr.py holds ours to a numpy port of the official functions and to FIRE's port where they agree.

Defaults: `percentile` 0.99 (official `init_fn`'s threshold_percentile, src/models/MLP.py:106; FIRE's config default
0.98, vision/config.py:54, and its warm-start ResNet-18 runs 0.99, scripts/warm_start.sh:12); `tau_update_every` 16
(official threshold_reset_freq 16, MLP.py:106, in tasks; FIRE's 16 in steps, config.py:55); `expansion` 2 (both);
`tau_max` 20000 and `initial_tau` 10000 samples (FIRE's tau_max and tau_max // 2, snr.py:23, 95; the official code
leaves both to its caller: pm_experiment's tau_max, init_fn's threshold). FIRE's arm is thus `SNR(tau_update_unit=
"steps")`, run in the tuning phase only (vision/train.py:277); its authors run SNR throughout training.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, ContextManager

import torch
from torch import nn

from ..core.config import ConfigError, ranged
from ..measures.activations import record_activations
from ..nets.units import unit_layers
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register
from .unit_reset import UnitCount, reinitialise_units_

UPDATE_UNITS = ("phases", "steps")  # what `tau_update_every` counts: tasks (the official code's) or steps (FIRE's)
GENERATOR_SEED_TAG = 8  # derived_seed(run seed, 8): the run's SNR generator (fresh incoming weights)


class SelfNormalizedResets:
    """The ages, histograms and thresholds of a model's units, and the resets. `bind(B)` before the first step (the
    histograms' bins depend on B); per step, `observe` the step's activations, then `reset` after the update;
    `update_thresholds` when the schedule says."""

    def __init__(self, model: nn.Module, percentile: float, expansion: float, tau_max: int, initial_tau: int,
                 generator: torch.Generator | None = None):
        self.layers = unit_layers(model)
        self.percentile, self.expansion, self.tau_max = percentile, expansion, tau_max
        self.generator = generator
        device = next(model.parameters()).device
        self.ages = {layer.name: torch.zeros(layer.size, dtype=torch.long, device=device) for layer in self.layers}
        self.tau = {layer.name: torch.full((layer.size,), float(initial_tau), dtype=torch.float64, device=device)
                    for layer in self.layers}
        self.hist: dict[str, torch.Tensor] = {}  # unit x (tau_max // B + 1): bin k counts age k B
        self.batch_size = 0  # B, once bound
        self.steps = 0  # SNR's steps so far (FIRE's `_step`)
        self.phases = 0  # phases SNR trained in before the current one (the official code's tasks done)

    def bind(self, batch_size: int) -> None:
        """Size the histograms for batches of `batch_size` (a run's is fixed)."""
        if self.batch_size and batch_size != self.batch_size:
            raise ValueError(f"SNR counted ages in batches of {self.batch_size}, now {batch_size}")
        if not self.batch_size:
            self.batch_size = batch_size
            bins = self.tau_max // batch_size + 1
            self.hist = {name: torch.zeros(len(age), bins, dtype=torch.int32, device=age.device)
                         for name, age in self.ages.items()}

    @torch.no_grad()
    def observe(self, activations: dict[str, torch.Tensor]) -> None:
        """Ages and histograms after a batch (snr.py:156-183): `activations` post-ReLU, dim 1 the units."""
        for layer in self.layers:
            h = activations[layer.name]
            if h.shape[0] != self.batch_size:
                raise ValueError(f"SNR is bound to batches of {self.batch_size}, got {h.shape[0]}")
            fired = h.amax(dim=[d for d in range(h.ndim) if d != 1]) > 0
            age = self.ages[layer.name]
            self._count(layer.name, fired)
            self.ages[layer.name] = torch.where(fired, 0, age + self.batch_size)

    def due(self) -> dict[str, torch.Tensor]:
        """The units whose age reached their threshold, per layer (snr.py:297)."""
        return {name: torch.nonzero(self.ages[name] >= self.tau[name]).flatten() for name in self.ages}

    @torch.no_grad()
    def reset(self, optimizer: torch.optim.Optimizer | None = None) -> dict[str, torch.Tensor]:
        """Reset the units due (snr.py:289-331: their ages into the histogram, ages to 0, the units re-initialised);
        returns their indices per layer."""
        due = self.due()
        for layer in self.layers:
            index, age = due[layer.name], self.ages[layer.name]
            self._count(layer.name, torch.zeros_like(age, dtype=torch.bool).index_fill_(0, index, True))
            age[index] = 0
            # the bias's moments zeroed with the rest, as theirs (snr.py:319-321)
            reinitialise_units_(layer, index, optimizer, self.generator, "default", bias_state="zero")
        return due

    def _count(self, name: str, which: torch.Tensor) -> None:
        """Add the ages of units `which` to their histograms, where at most tau_max (snr.py:168-178: an age
        beyond the histogram matches no bin)."""
        age = self.ages[name]
        rows = torch.nonzero(which & (age <= self.tau_max)).flatten()
        self.hist[name][rows, age[rows] // self.batch_size] += 1

    @torch.no_grad()
    def update_thresholds(self) -> None:
        """Each unit's tau from its histogram, then the histograms emptied (snr.py:62-86)."""
        for name, hist in self.hist.items():
            counts = hist[:, 1:].double()  # ages B, 2B, ...: age 0 (fired on consecutive batches) left out
            cdf = counts.cumsum(1) / counts.sum(1, keepdim=True)  # 0/0 = nan for a unit with none: never crosses
            crossed = cdf >= self.percentile
            first = crossed.to(torch.uint8).argmax(1)  # the first bin that crosses, or 0 (their argmax of all-False)
            age = torch.where(crossed.any(1), (first + 1) * self.batch_size, 1).double()
            tau = self.tau[name]
            moved = torch.where(age < tau, age, self.expansion * tau)
            self.tau[name] = torch.clamp(torch.clamp(moved, max=self.tau_max), min=self.batch_size)
            hist.zero_()

    def state_dict(self) -> dict[str, torch.Tensor]:
        state: dict[str, Any] = {"batch_size": torch.tensor(self.batch_size), "steps": torch.tensor(self.steps),
                                 "phases": torch.tensor(self.phases)}
        for name in self.ages:
            state[f"{name}.age"], state[f"{name}.tau"] = self.ages[name], self.tau[name]
            if name in self.hist:
                state[f"{name}.hist"] = self.hist[name]
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return {key: value.clone() for key, value in state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from `state` (empty: a stored prefix without SNR, so it starts now)."""
        if not state:
            return
        if int(state["batch_size"]):
            self.bind(int(state["batch_size"]))
        if state.keys() != self.state_dict().keys():
            raise ValueError("state does not match this model's unit layers (or generator)")
        self.steps, self.phases = int(state["steps"]), int(state["phases"])
        for name in self.ages:
            self.ages[name].copy_(state[f"{name}.age"])
            self.tau[name].copy_(state[f"{name}.tau"])
            if name in self.hist:
                self.hist[name].copy_(state[f"{name}.hist"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class SNR(Remedy):
    """Farias & Jozefiak (ICLR 2025): after every step, reset each unit silent for longer than its own threshold, a
    percentile of the unit's own silences (ajozefiak/SelfNormalizedResets src/algorithms/snr.py)."""

    NAME = "snr"
    ACTS = "after every step"
    PLACEMENT = "both phases"

    # eta: a unit's tau is the age at which the CDF of its silences reaches this (official 0.99, MLP.py:106)
    percentile: float = ranged(0.99, gt=0, le=1)
    # thresholds move every this many tasks (official threshold_reset_freq 16, MLP.py:106) or steps (FIRE's 16)
    tau_update_every: int = ranged(16, gt=0)
    # phases: count tasks, a phase each (the official code's, pm_experiment.py:94); steps: FIRE's (its snr.py:109)
    tau_update_unit: str = ranged("phases", choices=UPDATE_UNITS)
    expansion: float = ranged(2.0, ge=1)  # tau grows by this where no silence as long was seen (both: 2)
    tau_max: int = ranged(20000, gt=0)  # samples: the histogram's reach and tau's cap (FIRE's, snr.py:23)
    initial_tau: int = ranged(10000, gt=0)  # samples: every unit's first tau (FIRE's tau_max // 2, snr.py:95)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        state = context.state(self.NAME)
        state.bind(context.config.batch_size)
        return [SNRHook(self, state)]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if len({s for _, s in settings}) > 1:
            raise ConfigError("snr settings differ between phases: a run's units keep one age, histogram and "
                              "threshold throughout, so every phase with snr needs the same settings")

    @classmethod
    def run_state(cls, settings: list["SNR"], model: nn.Module, seed) -> SelfNormalizedResets:
        s = settings[0]
        return SelfNormalizedResets(model, s.percentile, s.expansion, s.tau_max, s.initial_tau,
                                    generator=torch.Generator().manual_seed(seed(GENERATOR_SEED_TAG)))


class SNRHook(UnitCount):
    """SNR after every step, on the activations of that step's forward pass; the thresholds on their schedule."""

    def __init__(self, settings: SNR, snr: SelfNormalizedResets):
        self.settings, self.snr = settings, snr
        self.recorded: dict[str, torch.Tensor] = {}

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase) -> None:
        """A new task, if SNR trained before: the official code's `update_tau(state, hist, task + 1)` after it."""
        if self.settings.tau_update_unit == "phases" and self.snr.steps:
            self.snr.phases += 1
            if self.snr.phases % self.settings.tau_update_every == 0:
                self.snr.update_thresholds()

    def around_forward(self, model: nn.Module) -> ContextManager:
        @contextlib.contextmanager
        def recording():
            with record_activations(model) as recorded:
                yield
            self.recorded = dict(recorded)
        return recording()

    def on_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        snr = self.snr
        snr.observe(self.recorded)
        if self.settings.tau_update_unit == "steps" and snr.steps % self.settings.tau_update_every == 0:
            snr.update_thresholds()  # FIRE's: before the step's resets, first at SNR's first step
        reset = snr.reset(optimizer)
        snr.steps += 1
        self.reset += sum(int(index.numel()) for index in reset.values())
