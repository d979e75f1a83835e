"""The built-in remedies, registered in the order they act within a phase: those at the phase start first
(shrink-and-perturb, then DASH), then L2 Init in the loss, then ReDo and continual backprop after the steps.
plasticity_nb/__init__.py imports this module, so every process that imports the package has them, ahead of any
remedy a user registers (which acts after them).
"""
from ..run.remedy import REGISTRY
from . import cbp, dash, l2_init, redo, shrink_perturb

ACTING_ORDER = (shrink_perturb.ShrinkPerturb, dash.Dash, l2_init.L2Init, redo.ReDo, cbp.ContinualBackpropSettings)
for _remedy in ACTING_ORDER:  # each module registered itself on import; put them in acting order
    REGISTRY[_remedy.NAME] = REGISTRY.pop(_remedy.NAME)
