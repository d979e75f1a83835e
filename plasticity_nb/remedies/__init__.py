"""Remedies for loss of plasticity, as pure functions over modules, tensors and optimisers.

Each module holds one remedy and cites its paper and reference code; a per-phase or per-step hook of the
training loop calls them. `units` says, in one place, which units ReDo and continual backprop may reset.
"""
from .cbp import ContinualBackprop
from .dash import dash_
from .l2_init import initial_parameters, l2_init_penalty
from .redo import dormant_scores, redo_reset_
from .shrink_perturb import shrink_perturb_
from .units import UnitLayer, unit_layers

__all__ = ["ContinualBackprop", "UnitLayer", "dash_", "dormant_scores", "initial_parameters", "l2_init_penalty",
           "redo_reset_", "shrink_perturb_", "unit_layers"]
