"""The built-in remedies, registered in the order they act within a phase: those at the phase start first
(shrink-and-perturb, then DASH, then FIRE), then those in the loss (L2 Init, Parseval), around the step (SAM), then
those after the steps (ReDo, continual backprop, then the weight edits: soft shrink-and-perturb, weight clipping, the
Hare & Tortoise EMA, which thus averages the weights the step's other remedies left).
The registry imports this module on its first read (run/remedy.py), so every process has them, ahead of any
remedy a user registers (which acts after them).
"""
from ..run.remedy import REGISTRY
from . import (
    cbp,
    dash,
    fire,
    hare_tortoise,
    l2_init,
    parseval,
    redo,
    sam,
    shrink_perturb,
    soft_shrink_perturb,
    weight_clipping,
)

# FIRE last of those at the phase start: its authors' code applies shrink-and-perturb, DASH, then FIRE
# (isaac7778/FIRE vision/train.py:166-191), and the step then starts from the weights FIRE made, not from ones a
# later shrink took off its scaled isometry.
ACTING_ORDER = (shrink_perturb.ShrinkPerturb, dash.Dash, fire.Fire, l2_init.L2Init, parseval.Parseval, sam.SAM,
                redo.ReDo, cbp.ContinualBackpropSettings, soft_shrink_perturb.SoftShrinkPerturb,
                weight_clipping.WeightClipping, hare_tortoise.HareTortoise)
# Each module registered itself on import; put them in acting order, ahead of any remedy registered before them.
_others = {name: cls for name, cls in dict.items(REGISTRY) if cls not in ACTING_ORDER}
dict.clear(REGISTRY)
dict.update(REGISTRY, {cls.NAME: cls for cls in ACTING_ORDER}, **_others)
