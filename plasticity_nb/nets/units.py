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
    raise TypeError(f"no units defined for {type(model).__name__}: define them in plasticity_nb/nets/units.py")


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


# Where a post-ReLU activation is read from a module: its output, its output through a ReLU (the functional ReLU
# after a BatchNorm), or its input (the head's: the pooled features).
OUTPUT, RELU_OF_OUTPUT, INPUT = "output", "relu_of_output", "input"


@dataclasses.dataclass(frozen=True)
class ActivationSite:
    name: str
    module: nn.Module
    read: str  # OUTPUT | RELU_OF_OUTPUT | INPUT


def dohare_sites(model: nn.Module) -> list[ActivationSite]:
    """The layers Dohare et al. count as units (shibhansh/loss-of-plasticity
    lop/incremental_cifar/post_run_analysis.py:105-131 over lop/nets/torchvision_modified_resnet.py's feature
    list): the stem's output, each block's relu(bn1(conv1)) and each block's output but the last, then the
    pooled features (17 layers for ResNet-18); an MLP's hidden layers."""
    if isinstance(model, MLP):
        return _hidden_sites(model)
    sites, blocks = [ActivationSite("stem", model.stem, OUTPUT)], _blocks(model)
    for i, (name, block) in enumerate(blocks):
        sites.append(ActivationSite(f"{name}.conv1", block.bn1, RELU_OF_OUTPUT))
        if i < len(blocks) - 1:
            sites.append(ActivationSite(f"{name}.out", block, OUTPUT))
    return [*sites, ActivationSite("pooled", model.head, INPUT)]


def redo_sites(model: nn.Module) -> list[ActivationSite]:
    """Every post-ReLU activation but the output, as ReDo's dormant count logs them (google/dopamine
    labs/redo/weight_recyclers.py:261-301, all recorded activations except 'final_layer'): the stem's output,
    each block's relu(bn1(conv1)) and each block's output (the residual stream); an MLP's hidden layers."""
    if isinstance(model, MLP):
        return _hidden_sites(model)
    sites = [ActivationSite("stem", model.stem, OUTPUT)]
    for name, block in _blocks(model):
        sites += [ActivationSite(f"{name}.conv1", block.bn1, RELU_OF_OUTPUT),
                  ActivationSite(f"{name}.out", block, OUTPUT)]
    return sites


def unit_sites(model: nn.Module) -> list[ActivationSite]:
    """The resettable units' activations (`unit_layers`): each block's relu(bn1(conv1)), an MLP's hidden layers."""
    return [ActivationSite(layer.name, layer.pre_activation, RELU_OF_OUTPUT) for layer in unit_layers(model)]


def site_union(groups: list[list[ActivationSite]]) -> list[ActivationSite]:
    """Every site of `groups` once, in first-seen order; a name means one site in every group."""
    union: dict[str, ActivationSite] = {}
    for site in (site for sites in groups for site in sites):
        if union.setdefault(site.name, site) != site:
            raise ValueError(f"activation site {site.name!r} is defined two ways: {union[site.name]} and {site}")
    return list(union.values())


def _blocks(model: ResNet) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, ResNet):
        raise TypeError(f"no activation sites defined for {type(model).__name__}: define them in nets/units.py")
    return [(f"{stage}.{b}", block) for stage in ("stage1", "stage2", "stage3", "stage4")
            for b, block in enumerate(getattr(model, stage))]


def _hidden_sites(model: MLP) -> list[ActivationSite]:
    return [ActivationSite(f"hidden.{i}", layer, RELU_OF_OUTPUT) for i, layer in enumerate(model.hidden)]
