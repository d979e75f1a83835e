"""The plasticity metrics as a hook of the training loop: recorded into each evaluated epoch's history row, and at
each phase's start the gradient norms on the pretraining half and on the new half (the maths: measures/)."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import class_balanced_subset
from ..measures.activations import call_keeping_buffers, record_activations
from ..measures.curvature import weight_norm
from ..measures.metric_settings import MetricSettings
from ..measures.plasticity_metrics import (
    active_fraction,
    dohare_dormant_fraction,
    dormant_fraction,
    dormant_scores,
    effective_rank,
    feature_norm,
    feature_variance,
    gradient_norms,
    parameter_distance,
    prediction_churn,
    srank,
    zero_gradient_share,
)
from ..nets.units import INPUT, ActivationSite, dohare_sites, redo_sites, site_union, unit_sites
from ..run.hooks import Hook
from ..run.remedy import Examples
from ..run.run_config import Phase


class PredictionReference:
    """The probe batch's predicted classes at the run's last measurement (for the churn), carried across phases,
    checkpoints and stored prefixes with the remedies' state."""

    def __init__(self):
        self.predictions: torch.Tensor | None = None

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.predictions is None else {"predictions": self.predictions.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.predictions = state.get("predictions")


class Metrics(Hook):
    """Plasticity metrics into each evaluated epoch's row, and the start-of-phase measures (gradient norms on
    the pretraining half and on the new half, and the metrics before the first step) into the phase's first row.

    Measured in the model's mode during training (train-mode BatchNorm: batch statistics of the probe batch,
    the function the optimiser trains), in fp32, leaving the running statistics untouched, from one forward and
    backward pass over the probe batch. Which definition each column follows: MetricSettings' docstring.
    """

    def __init__(self, settings: MetricSettings, probe: Examples, halves: dict[str, Examples],
                 initial: dict[str, torch.Tensor], reference: PredictionReference):
        self.settings, self.probe, self.halves, self.initial = settings, probe, halves, initial
        self.reference = reference
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
        x, y = self.probe
        s = self.settings
        groups = [sites(model) for sites in (redo_sites, dohare_sites, unit_sites)]
        features_site = ActivationSite("features", model.head, INPUT)  # the penultimate features
        params = [p for p in model.parameters() if p.requires_grad]
        with record_activations(model, site_union([*groups, [features_site]])) as recorded:
            logits = call_keeping_buffers(model, x)  # one pass serves every count
        gradients = torch.autograd.grad(F.cross_entropy(logits, y), params)
        redo, dohare, units = ({site.name: recorded[site.name] for site in sites} for sites in groups)
        features, predictions = recorded["features"], logits.detach().argmax(1)
        previous, self.reference.predictions = self.reference.predictions, predictions
        return {"dormant_redo": dormant_fraction(dormant_scores(redo), s.tau),
                "dormant_dohare": dohare_dormant_fraction(dohare, s.active_share),
                "dormant_redo_units": dormant_fraction(dormant_scores(units), s.tau),
                "effective_rank": effective_rank(features), "srank": float(srank(features, s.srank_delta)),
                "weight_norm": weight_norm(model), "init_distance": parameter_distance(model, self.initial),
                "active_units": active_fraction(features), "feature_norm": feature_norm(features),
                "feature_variance": feature_variance(features), "zero_grad_share": zero_gradient_share(gradients),
                "churn": prediction_churn(previous, predictions)}


def metric_examples(train_x: torch.Tensor, train_y: torch.Tensor, positions: torch.Tensor, size: int,
                    seed: int, num_classes: int) -> Examples:
    """`size` examples among `positions` of the subset, balanced over the dataset's `num_classes` classes (the same
    for every evaluation); all of them when there are no more than `size`."""
    pick = positions
    if size < len(positions):
        generator = torch.Generator().manual_seed(seed)
        pick = positions[class_balanced_subset(train_y.cpu()[positions], size, generator, num_classes)]
    pick = pick.to(train_x.device)
    return train_x[pick], train_y[pick]
