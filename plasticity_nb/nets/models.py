"""Networks of the study: the CIFAR ResNet family (BatchNorm) and an MLP, each with one output per class of the
run's dataset.

The paper's ResNet-18 is the usual CIFAR variant: a 3x3 stride-1 stem, no max-pool, four stages of
`depth` BasicBlocks with widths w, 2w, 4w, 8w, global average pooling and a linear head.
`module_groups()` names the six groups of the paper's reset experiments, in order:
1 stem conv (+BN), 2-5 the four stages, 6 the classifier.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import DEFAULT_CLASSES, MODELS


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            # Projection shortcut (option B of He et al.), as in the common CIFAR ResNet-18.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: `depth` BasicBlocks per stage, stage widths (w, 2w, 4w, 8w)."""

    def __init__(self, depth: int = 2, width: int = 64, num_classes: int = DEFAULT_CLASSES):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"ResNet needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
        self.depth, self.width = depth, width
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        stages, in_channels = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            out_channels = width * 2**i
            blocks = [BasicBlock(in_channels if b == 0 else out_channels, out_channels, stride if b == 0 else 1)
                      for b in range(depth)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def module_groups(self) -> dict[str, nn.Module]:
        return {"stem": self.stem, "stage1": self.stage1, "stage2": self.stage2,
                "stage3": self.stage3, "stage4": self.stage4, "head": self.head}


class MLP(nn.Module):
    """Fully connected ReLU net on flattened images: 3072 -> width (x depth) -> classes, as in Ash & Adams."""

    def __init__(self, depth: int = 2, width: int = 100, num_classes: int = DEFAULT_CLASSES):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"MLP needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
        self.depth, self.width = depth, width
        sizes = [3 * 32 * 32] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.head(x)

    def module_groups(self) -> dict[str, nn.Module]:
        return {**{f"hidden{i + 1}": layer for i, layer in enumerate(self.hidden)}, "head": self.head}


def build_model(model: str, depth: int, width: int, num_classes: int = DEFAULT_CLASSES) -> nn.Module:
    """A freshly initialised network with `num_classes` outputs (PyTorch default init; seed the global RNG before
    calling)."""
    if model == "resnet":
        return ResNet(depth, width, num_classes)
    if model == "mlp":
        return MLP(depth, width, num_classes)
    raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")


def resnet18(width: int = 64) -> ResNet:
    """The paper's ResNet-18 (depth 2); width 64 has 11,173,962 parameters."""
    return ResNet(depth=2, width=width)


def reinitialise_groups(model: nn.Module, groups: list[int] | tuple[int, ...], generator_seed: int) -> None:
    """Re-draw the parameters of the 1-based module `groups` from the initial distribution, in place.

    BatchNorm layers in those groups go back to their defaults (weight 1, bias 0, fresh running
    statistics); everything else is untouched. The draw is seeded, so a reset is reproducible.
    """
    named = list(model.module_groups().values())
    bad = [g for g in groups if not 1 <= g <= len(named)]
    if bad:
        raise ValueError(f"module group(s) {bad} out of range: this model has groups 1..{len(named)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        for g in sorted(groups):
            for module in named[g - 1].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()  # BatchNorm's also resets its running statistics


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
