"""The built-in remedies: importing this module registers each of them (its module does, on import); the order in
which they act within a phase is declared once, run/remedy.py's ACTING_ORDER, not by the order they register in.
The registry imports this module on its first read (run/remedy.py), so every process has them; a remedy a user
registers acts after them.
"""
from . import (  # each registers itself on import
    cbp,
    dash,
    fire,
    full_reset,
    hare_tortoise,
    l2_init,
    muon,
    parseval,
    redo,
    sam,
    shrink_perturb,
    snr,
    soft_shrink_perturb,
    weight_clipping,
)

BUILTIN = (cbp.ContinualBackpropSettings, dash.Dash, fire.Fire, full_reset.FullReset, hare_tortoise.HareTortoise,
           l2_init.L2Init, muon.Muon, parseval.Parseval, redo.ReDo, sam.SAM, shrink_perturb.ShrinkPerturb, snr.SNR,
           soft_shrink_perturb.SoftShrinkPerturb, weight_clipping.WeightClipping)
