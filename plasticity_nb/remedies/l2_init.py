"""L2 Init (Kumar, Marklund & Van Roy, "Maintaining Plasticity in Continual Learning via Regenerative
Regularization", 2023): a penalty pulling the weights towards the run's *initial* weights theta0.

As in the authors' code (skumar9876/L2_Init, `agents/agents.py`, `L2InitAgent.compute_loss`, lines 282-297):
`loss += lambda * 0.5 * sum ||theta - theta0||^2`, gradient lambda * (theta - theta0), over the weights and biases
of every layer (their nets have no BatchNorm; their one normalisation rule leaves norm parameters out, line 284).
Their swept lambdas {1e-2, 1e-3, 1e-4, 1e-5} are in that convention. Deliberate deviations, as options: the
paper's text writes lambda * sum ||theta - theta0||^2 (twice their penalty: `convention="paper"`), and a
BatchNorm network could also pull gamma and beta towards 1 and 0 (`parameters="all"`).

Two other public implementations differ: baekrok/DASH-Direction-Aware-SHrinking `utils/train_utils.py`
(`l2_init`) squares the sum of per-layer norms (and only regularises `.weight`s); another regularises only the
last parameter, unsquared.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..core.config import ranged, versioned
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

# Factor on lambda * sum ||theta - theta0||^2: the authors' code (0.5) or the paper's text (1).
CONVENTIONS = {"authors": 0.5, "paper": 1.0}
# Penalised parameters: the weights and biases of Conv2d and Linear layers (the authors' nets hold nothing
# else), or every parameter, BatchNorm's gamma and beta included.
PARAMETER_SETS = ("conv_linear", "all")


def penalised_parameters(model: nn.Module, parameters: str = "conv_linear") -> list[str]:
    """Names of the parameters the penalty pulls towards theta0 (`parameters`: one of PARAMETER_SETS)."""
    if parameters not in PARAMETER_SETS:
        raise ValueError(f"parameters must be one of {PARAMETER_SETS}, got {parameters!r}")
    if parameters == "all":
        return [name for name, _ in model.named_parameters()]
    return [f"{module_name}.{param_name}" if module_name else param_name
            for module_name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))
            for param_name, _ in module.named_parameters(recurse=False)]


def l2_init_penalty(model: nn.Module, initial_params: dict[str, torch.Tensor], coefficient: float,
                    convention: str = "authors", parameters: str = "conv_linear") -> torch.Tensor:
    """factor * coefficient * sum ||theta - theta0||^2 over the penalised parameters, differentiable in the
    model's parameters (factor 0.5 in the authors' convention, 1 in the paper's)."""
    named = dict(model.named_parameters())
    if named.keys() != initial_params.keys():
        raise ValueError("initial_params must hold exactly the model's parameters (use initial_parameters(model))")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {tuple(CONVENTIONS)}, got {convention!r}")
    squared = [(named[name] - initial_params[name]).pow(2).sum() for name in penalised_parameters(model, parameters)]
    return CONVENTIONS[convention] * coefficient * torch.stack(squared).sum()


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class L2Init(Remedy):
    """Kumar et al. (2023), as their code (skumar9876/L2_Init, agents/agents.py:282-297): loss +
    0.5 * coefficient * sum ||theta - theta_0||^2 over the conv and linear weights and biases."""

    NAME = "l2_init"
    ACTS = "in every step's loss"
    PLACEMENT = "both phases"
    WANTS_INITIAL = True


    coefficient: float = ranged(1e-2, gt=0)  # lambda: their best in most settings, of {1e-2, 1e-3, 1e-4, 1e-5}
    # authors: 0.5 * lambda (their code, the convention of their sweeps); paper: lambda (their paper's text)
    convention: str = ranged("authors", choices=tuple(CONVENTIONS))
    # conv_linear: what their (BatchNorm-free) nets hold; all: BatchNorm's gamma and beta too
    parameters: str = ranged("conv_linear", choices=PARAMETER_SETS)
    # 2: the authors' convention and parameter set (2026-12-01); 1 (no field) was the paper's over every parameter
    version: int = versioned(2)

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [L2InitHook(self, context.initial())]


class L2InitHook(Hook):
    """L2 Init: 0.5 * coefficient * sum ||theta - theta_0||^2 (as the settings say) joins every step's loss."""

    def __init__(self, settings: L2Init, initial: dict[str, torch.Tensor]):
        self.settings, self.initial = settings, initial

    def penalty(self, model: nn.Module) -> torch.Tensor:
        s = self.settings
        return l2_init_penalty(model, self.initial, s.coefficient, s.convention, s.parameters)
