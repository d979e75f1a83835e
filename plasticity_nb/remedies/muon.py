"""Muon in the tuning phase, as FIRE runs it (Han et al., ICLR 2026; isaac7778/FIRE at c37a0ac): the tuning phase's
Adam replaced by `SingleDeviceMuonWithAuxAdam`, their copy of Keller Jordan's optimiser (`vision/interventions/
muon.py`, which is KellerJordan/Muon `muon.py` at 857d1ad but for whitespace), with their parameter split and learning
rates (`vision/train.py:21-61`), only from the second chunk on in their warm start (`train.py:193-205`: Adam in the
first chunk, Muon after).

The update (ported here op for op, so the floats are theirs: tests/test_muon.py holds ours to a verbatim
copy of their class bit for bit):
- Muon, for every weight with two or more dimensions outside the head (FIRE's rule: their ResNet-18's backbone
  filters, `train.py:29-35`; their VGG's and ViT's backbone weights of ndim >= 2, `train.py:36-49`): momentum
  M <- lerp(M, G, 1 - beta); Nesterov U = lerp(G, M, beta); a conv filter viewed as (out, in*kh*kw); U / (||U||_F +
  1e-7) in bfloat16, then `ns_steps` quintic Newton-Schulz steps X <- a X + (b A + c A A) X, A = X X^T, (a, b, c) =
  (3.4445, -4.7750, 2.0315), on the transpose when rows > cols; U *= sqrt(max(1, size(-2) / size(-1))) of the
  *gradient's* last two dimensions (for a conv filter kh / kw = 1: theirs, and Keller's, scale a filter by 1);
  W <- W (1 - lr wd) - lr U, at lr = phase lr / `adam_lr_ratio`.
- Adam for the rest (BatchNorm's gains and biases, every bias, the head): m <- lerp(m, g, 1 - b1), v <- lerp(v, g^2,
  1 - b2), W <- W (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t a Python int per tensor, at the
  phase's lr. Not torch's Adam (which rounds differently): theirs.
One difference, on purpose: their Nesterov step overwrites `p.grad` with U (`grad.lerp_`); ours computes the same U
out of place and leaves the gradient.

Defaults: FIRE's call (`train.py:27-58`): Muon lr = lr / 0.1 (10x the phase's Adam lr), momentum 0.95, Adam betas
(0.9, 0.95), eps 1e-10, no weight decay, 5 Newton-Schulz steps, Nesterov. Keller's own defaults differ only in the
learning rates (Muon 0.02, Adam 3e-4, muon.py:237-247), which FIRE sets from its lr (1e-3: Muon 1e-2, Adam 1e-3).

torch 2.14's `torch.optim.Muon` is the same Muon for 2-D weights with `weight_decay=0` (its default is 0.1) and
`adjust_lr_fn="original"`, but not the same floats: its Newton-Schulz uses fused addmm, it scales the rate (in float32)
instead of the bfloat16 update, clamps the norm instead of adding 1e-7, and it refuses conv filters (no reshape) and
has no Adam half. The tests measure how close it comes.

Where a warm-up (`Phase.lr_warmup`) is on, each group is warmed up to its own rate (FIRE's target_lr per group,
`train.py:205, 217-224`). The phase steps eagerly (never in a CUDA graph: the Adam half counts steps in a Python int,
as theirs does).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..core.config import ConfigError, ranged
from ..run.hooks import Hook
from ..run.remedy import Remedy, RemedyContext, register

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # muon.py:16


def zeropower_via_newtonschulz5(G: torch.Tensor, steps: int) -> torch.Tensor:
    """muon.py:5-31: the quintic Newton-Schulz iteration towards U V^T, in bfloat16, their operations in their order."""
    assert G.ndim >= 2
    a, b, c = NS_COEFFICIENTS
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # spectral norm at most 1
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def muon_update(grad: torch.Tensor, momentum: torch.Tensor, beta: float = 0.95, ns_steps: int = 5,
                nesterov: bool = True) -> torch.Tensor:
    """muon.py:34-41 (the momentum buffer updated in place, the gradient left as it was)."""
    momentum.lerp_(grad, 1 - beta)
    update = grad.lerp(momentum, beta) if nesterov else momentum
    if update.ndim == 4:  # a conv filter, as (out, in * kh * kw)
        update = update.view(len(update), -1)
    update = zeropower_via_newtonschulz5(update, steps=ns_steps)
    update *= max(1, grad.size(-2) / grad.size(-1)) ** 0.5
    return update


def adam_update(grad: torch.Tensor, buf1: torch.Tensor, buf2: torch.Tensor, step: int, betas: tuple[float, float],
                eps: float) -> torch.Tensor:
    """muon.py:130-135."""
    buf1.lerp_(grad, 1 - betas[0])
    buf2.lerp_(grad.square(), 1 - betas[1])
    buf1c = buf1 / (1 - betas[0] ** step)
    buf2c = buf2 / (1 - betas[1] ** step)
    return buf1c / (buf2c.sqrt() + eps)


MUON_KEYS = {"params", "lr", "momentum", "weight_decay", "use_muon", "ns_steps", "nesterov", "lr_divisor"}
ADAM_KEYS = {"params", "lr", "betas", "eps", "weight_decay", "use_muon"}


class MuonWithAuxAdam(torch.optim.Optimizer):
    """FIRE's `SingleDeviceMuonWithAuxAdam` (muon.py:228-286): param groups flagged `use_muon`, Muon for those, their
    Adam for the others. Ours adds three keys to a Muon group: `ns_steps` and `nesterov` (their muon_update's
    arguments, fixed at 5 and True in their call) and `lr_divisor` (the group's rate is the phase's / this: the
    loop's warm-up keeps the ratio)."""

    def __init__(self, param_groups: list[dict]):
        for group in param_groups:
            if "use_muon" not in group:
                raise ValueError("each group says whether it uses Muon (use_muon)")
            if group["use_muon"]:
                group.setdefault("lr", 0.02)
                group.setdefault("momentum", 0.95)
                group.setdefault("weight_decay", 0)
                group.setdefault("ns_steps", 5)
                group.setdefault("nesterov", True)
                group.setdefault("lr_divisor", 1.0)
                keys = MUON_KEYS
            else:
                group.setdefault("lr", 3e-4)
                group.setdefault("betas", (0.9, 0.95))
                group.setdefault("eps", 1e-10)
                group.setdefault("weight_decay", 0)
                keys = ADAM_KEYS
            if set(group) != keys:
                raise ValueError(f"a group has keys {sorted(set(group) - keys)} this optimiser does not know")
        super().__init__(param_groups, dict())

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)  # theirs steps every parameter
                state = self.state[p]
                if group["use_muon"]:
                    if len(state) == 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    update = muon_update(p.grad, state["momentum_buffer"], beta=group["momentum"],
                                         ns_steps=group["ns_steps"], nesterov=group["nesterov"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update.reshape(p.shape), alpha=-group["lr"])
                else:
                    if len(state) == 0:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        state["step"] = 0
                    state["step"] += 1
                    update = adam_update(p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                         group["betas"], group["eps"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"])
        return loss


def muon_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(Muon's, Adam's) parameters, in the model's order: every weight with ndim >= 2 outside the head is Muon's
    (FIRE train.py:29-49; the package's ResNet: every conv filter, stem and shortcuts included; its MLP: the hidden
    layers' weights); the rest (BatchNorm, biases, the head) Adam's."""
    head = {id(p) for p in model.head.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    muon = [p for p in params if p.ndim >= 2 and id(p) not in head]
    chosen = {id(p) for p in muon}
    return muon, [p for p in params if id(p) not in chosen]


@register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Muon(Remedy):
    """Keller Jordan's Muon (orthogonalised momentum) for the hidden weights, their Adam for the rest, as the
    optimiser of a phase after the first, as FIRE runs it (isaac7778/FIRE vision/train.py:21-61, 193-205)."""

    NAME = "muon"
    ACTS = "as the phase's optimiser"
    PLACEMENT = "tuning start"

    # Adam's rate / Muon's: the Muon group steps at the phase's lr / this (FIRE's adam_lr_ratio, train.py:28, 54)
    adam_lr_ratio: float = ranged(0.1, gt=0)
    momentum: float = ranged(0.95, ge=0, lt=1)  # Muon's beta (muon.py:238 default; FIRE keeps it)
    ns_steps: int = ranged(5, ge=0)  # Newton-Schulz steps (muon.py:34, the only value their call uses)
    nesterov: bool = True  # Nesterov momentum (muon.py:34, the only value their call uses)
    adam_beta1: float = ranged(0.9, ge=0, lt=1)  # the Adam half's betas: FIRE passes (0.9, 0.95), train.py:56
    adam_beta2: float = ranged(0.95, ge=0, lt=1)
    adam_eps: float = ranged(1e-10, gt=0)  # the Adam half's eps (muon.py:244 default; FIRE keeps it)

    def optimizer(self, model: nn.Module, phase) -> MuonWithAuxAdam:
        muon, adam = muon_parameters(model)
        return MuonWithAuxAdam([
            dict(params=muon, use_muon=True, lr=phase.lr / self.adam_lr_ratio, momentum=self.momentum,
                 weight_decay=0, ns_steps=self.ns_steps, nesterov=self.nesterov, lr_divisor=self.adam_lr_ratio),
            dict(params=adam, use_muon=False, lr=phase.lr, betas=(self.adam_beta1, self.adam_beta2),
                 eps=self.adam_eps, weight_decay=0),
        ])

    def hooks(self, context: RemedyContext) -> list[Hook]:
        return [EagerSteps()]

    @classmethod
    def check_run(cls, config, settings) -> None:
        if any(index == 0 for index, _ in settings):
            raise ConfigError("muon replaces the optimiser of the tuning phase only (FIRE's warm start trains its "
                              "first chunk with Adam, vision/train.py:194-205): set it on a later phase")
        for index, _ in settings:
            if config.phases[index].optimizer != "adam":
                raise ConfigError(f"muon replaces Adam, but phase {index + 1} sets optimizer "
                                  f"{config.phases[index].optimizer!r}: leave it at 'adam'")
        if config.weight_decay:
            raise ConfigError(f"muon runs without weight decay, as FIRE's (its groups' decay is 0), but the run sets "
                              f"weight_decay={config.weight_decay}")


class EagerSteps(Hook):
    """Does nothing; being graph-unsafe, it keeps the phase's steps out of a CUDA graph, which would freeze the Adam
    half's Python step count (and rate) at capture."""
