"""The resettable units of each model, defined once for ReDo and continual backprop.

A unit is an output channel (conv) or output feature (linear) of an `incoming` layer, optionally normalised
by a BatchNorm, followed by a ReLU and read by exactly one `outgoing` layer. Only units whose outgoing
weights are a single slice qualify, so that zeroing that slice removes the unit's effect on the network:
- ResNet: the channels of each BasicBlock's conv1 -> bn1 -> relu, read by conv2[:, i]. Block outputs (and
  the stem's) are excluded: the residual sum feeds them to the next block's conv1 and to its shortcut.
- MLP: the features of each hidden Linear, read by the next hidden Linear's column, or the head's.
The head's outputs are never units (ReDo and CBP both exclude the output layer).
"""
from __future__ import annotations

import dataclasses

from torch import nn

from .models import MLP, ResNet


@dataclasses.dataclass(frozen=True)
class UnitLayer:
    name: str
    incoming: nn.Conv2d | nn.Linear  # its output channel / row i creates unit i
    norm: nn.BatchNorm2d | None  # normalises the units before the ReLU (None: no normalisation)
    outgoing: nn.Conv2d | nn.Linear  # its input channel / column i reads unit i

    @property
    def size(self) -> int:
        return self.incoming.weight.shape[0]

    @property
    def pre_activation(self) -> nn.Module:
        """The module whose output, passed through a ReLU, is the units' activation."""
        return self.norm if self.norm is not None else self.incoming


def unit_layers(model: nn.Module) -> list[UnitLayer]:
    if isinstance(model, ResNet):
        return resnet_unit_layers(model)
    if isinstance(model, MLP):
        return mlp_unit_layers(model)
    raise TypeError(f"no units defined for {type(model).__name__}: define them in plasticity_nb/remedies/units.py")


def resnet_unit_layers(model: ResNet) -> list[UnitLayer]:
    layers = []
    for stage_name in ("stage1", "stage2", "stage3", "stage4"):
        for b, block in enumerate(getattr(model, stage_name)):
            layers.append(UnitLayer(f"{stage_name}.{b}.conv1", block.conv1, block.bn1, block.conv2))
    return layers


def mlp_unit_layers(model: MLP) -> list[UnitLayer]:
    readers = list(model.hidden)[1:] + [model.head]
    return [UnitLayer(f"hidden.{i}", layer, None, reader)
            for i, (layer, reader) in enumerate(zip(model.hidden, readers))]
