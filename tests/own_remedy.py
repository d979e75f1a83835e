"""A remedy defined in a module of its own (not the package), as a user would: tests/test_remedy_runs.py checks
that worker processes import it to read its runs' configs."""
import dataclasses

from plasticity_nb.core.config import ranged
from plasticity_nb.run.hooks import Hook
from plasticity_nb.run.remedy import Remedy, register


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleHead(Remedy):
    """Multiply the classifier's weights by `factor` at the phase start (a toy: no source)."""

    NAME = "scale_head"
    ACTS = "at the phase start"
    PLACEMENT = "tuning start"

    factor: float = ranged(0.5, gt=0)  # the scale applied once

    def hooks(self, context):
        return [ScaleHeadHook(self.factor)]


class ScaleHeadHook(Hook):
    def __init__(self, factor):
        self.factor = factor

    def on_phase_start(self, model, optimizer, phase):
        model.head.weight.data.mul_(self.factor)
