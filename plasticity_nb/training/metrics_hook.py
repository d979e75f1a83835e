"""The plasticity metrics as a hook of the training loop: recorded into each evaluated epoch's history row, and at
each phase's start the gradient norms on the pretraining half and on the new half (the maths: measures/)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..data.cifar10 import class_balanced_subset
from ..measures.activations import probe_activations
from ..measures.curvature import weight_norm
from ..measures.metric_settings import MetricSettings
from ..measures.plasticity_metrics import (
    dohare_dormant_fraction,
    dormant_fraction,
    effective_rank,
    gradient_norms,
    parameter_distance,
    penultimate_features,
    srank,
)
from ..nets.units import dohare_sites, redo_sites, site_union, unit_sites
from ..remedies.redo import dormant_scores
from ..run.hooks import Hook
from ..run.remedy import Examples
from ..run.run_config import Phase


class Metrics(Hook):
    """Plasticity metrics into each evaluated epoch's row, and the start-of-phase measures (gradient norms on
    the pretraining half and on the new half, and the metrics before the first step) into the phase's first row.

    Measured in the model's mode during training (train-mode BatchNorm: batch statistics of the probe batch,
    the function the optimiser trains), in fp32, leaving the running statistics untouched.
    """

    def __init__(self, settings: MetricSettings, probe: Examples, halves: dict[str, Examples],
                 initial: dict[str, torch.Tensor]):
        self.settings, self.probe, self.halves, self.initial = settings, probe, halves, initial
        self.at_start: dict[str, float] = {}

    def on_phase_start(self, model: nn.Module, optimizer: torch.optim.Optimizer, phase: Phase) -> None:
        norms = gradient_norms(model, {name: [examples] for name, examples in self.halves.items()})
        start = {f"start_{name}": value for name, value in self.measure(model).items()}
        self.at_start = {**start, "grad_norm_half": norms["half"], "grad_norm_new": norms["new"],
                         "grad_ratio": norms["new"] / norms["half"] if norms["half"] > 0 else math.nan}

    def on_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, row: dict[str, Any]) -> None:
        row.update(self.at_start)
        self.at_start = {}
        if math.isfinite(row["test_acc"]):
            row.update(self.measure(model))

    def measure(self, model: nn.Module) -> dict[str, float]:
        x, _ = self.probe
        s = self.settings
        groups = [sites(model) for sites in (redo_sites, dohare_sites, unit_sites)]
        recorded = probe_activations(model, x, site_union(groups))  # one pass serves all three counts
        redo, dohare, units = ({site.name: recorded[site.name] for site in sites} for sites in groups)
        features = dohare["pooled"] if "pooled" in dohare else penultimate_features(model, x)
        return {"dormant_redo": dormant_fraction(dormant_scores(redo), s.tau),
                "dormant_dohare": dohare_dormant_fraction(dohare, s.active_share),
                "dormant_redo_units": dormant_fraction(dormant_scores(units), s.tau),
                "effective_rank": effective_rank(features), "srank": float(srank(features, s.srank_delta)),
                "weight_norm": weight_norm(model), "init_distance": parameter_distance(model, self.initial)}


def metric_examples(train_x: torch.Tensor, train_y: torch.Tensor, positions: torch.Tensor, size: int,
                    seed: int) -> Examples:
    """`size` class-balanced examples among `positions` of the subset (the same for every evaluation); all of
    them when there are no more than `size`."""
    pick = positions
    if size < len(positions):
        pick = positions[class_balanced_subset(train_y.cpu()[positions], size, torch.Generator().manual_seed(seed))]
    pick = pick.to(train_x.device)
    return train_x[pick], train_y[pick]
