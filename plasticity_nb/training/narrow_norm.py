"""Batch norm of few channels on this package's fused CPU kernels: an execution setting of a ResNet in bf16 NHWC.

ATen's channels-last batch norm vectorises over channels, so the quick model's 8-channel layers leave three
quarters of each AVX-512 vector idle, and the ReLU and residual add after them are two more passes over memory.
narrow_norm.c computes batch norm (training mode), its ReLU and the residual add in one pass each way, over
vectors that hold several pixels' channels. `install` swaps a ResNet's BatchNorm and BasicBlock classes for the
ones below (same parameters, buffers and state-dict keys; the same forward hooks fire); any tensor the kernels
do not take (eval mode, NCHW, fp32, under torch.func or torch.compile) goes through ATen as before.

Its sums run in another order than ATen's, so a run trained with it rounds differently: `Runtime.narrow_norm` is
an execution setting (chosen per machine by timed steps in layout.py, kept in checkpoints, recorded in
provenance), never part of a run's key. The kernels are compiled for this CPU (`-march=native`) the first time,
into the cache folder (native.py); without a C compiler the setting is simply never offered.
"""
from __future__ import annotations

import copy
import ctypes
import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..nets.models import BasicBlock, ResNet
from . import native

SOURCE = Path(__file__).with_name("narrow_norm.c")
LANES = 16  # bf16 values the kernels treat as one row: a channel count must divide it or be a multiple of it
MOST_CHANNELS = 64  # the kernels' lane buffers; wider layers vectorise well in ATen anyway


@functools.lru_cache(maxsize=1)
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels for this CPU (native.py), or None where they cannot be built."""
    library = native.library(SOURCE)
    return None if library is None else _declared(library)


def _declared(library: ctypes.CDLL) -> ctypes.CDLL:
    p, n, d, i = ctypes.c_void_p, ctypes.c_long, ctypes.c_double, ctypes.c_int
    library.nn_stats.argtypes = [p, n, n, n, d, p, p]
    library.nn_apply.argtypes = [p, p, n, n, n, p, p, i, p]
    library.nn_grad_sums.argtypes = [p, p, p, n, n, n, p, p, p, p]
    library.nn_grad_input.argtypes = [p, p, p, n, n, n, p, p, p, p]
    for function in (library.nn_stats, library.nn_apply, library.nn_grad_sums, library.nn_grad_input):
        function.restype = None
    return library


def lanes(channels: int) -> int:
    """Values per row of the kernels' view: 16 pixels' worth of channels, or one pixel's when wider."""
    return LANES if LANES % channels == 0 else channels


def takes_channels(channels: int) -> bool:
    return channels <= MOST_CHANNELS and (LANES % channels == 0 or channels % LANES == 0)


def _address(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _view(x: torch.Tensor) -> tuple[int, int, int, float]:
    """Rows, lanes and channels of the kernels' view of `x`, and the values per channel."""
    channels = x.shape[1]
    return x.numel() // lanes(channels), lanes(channels), channels, x.numel() / channels


class NormReLU(torch.autograd.Function):
    """relu(batch_norm(x) [+ residual]) in training mode, or batch_norm(x) alone; returns the output and the
    batch's mean and (biased) variance, for the running statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, residual, relu: bool, eps: float):
        rows, width, channels, count = _view(x)
        mean, var = x.new_empty(channels, dtype=torch.float32), x.new_empty(channels, dtype=torch.float32)
        kernels().nn_stats(x.data_ptr(), rows, width, channels, count, mean.data_ptr(), var.data_ptr())
        invstd = torch.rsqrt(var + eps)
        scale = weight.detach() * invstd
        shift = bias.detach() - mean * scale
        y = torch.empty_like(x)
        kernels().nn_apply(x.data_ptr(), _address(residual), rows, width, channels, scale.data_ptr(),
                           shift.data_ptr(), int(relu), y.data_ptr())
        ctx.has_residual = residual is not None
        ctx.save_for_backward(x, weight, mean, invstd, y if relu or residual is not None else None)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, _mean, _var):
        x, weight, mean, invstd, y = ctx.saved_tensors
        dy = dy.to(x.dtype).contiguous(memory_format=torch.channels_last)
        rows, width, channels, count = _view(x)
        sum_g, sum_g_centred = torch.empty_like(mean), torch.empty_like(mean)
        g = torch.empty_like(x) if ctx.has_residual else None  # the residual's gradient: dy through the ReLU
        kernels().nn_grad_sums(x.data_ptr(), dy.data_ptr(), _address(y), rows, width, channels, mean.data_ptr(),
                               _address(g), sum_g.data_ptr(), sum_g_centred.data_ptr())
        # dx = a (g - mean(g) - xhat mean(g xhat)) with a = weight * invstd, as a * g + b * x + d per channel
        a = weight.detach() * invstd
        b = -a * invstd * invstd * sum_g_centred / count
        d = -a * sum_g / count - b * mean
        dx = torch.empty_like(x)
        kernels().nn_grad_input(x.data_ptr(), dy.data_ptr(), _address(y), rows, width, channels, a.data_ptr(),
                                b.data_ptr(), d.data_ptr(), dx.data_ptr())
        return dx, sum_g_centred * invstd, sum_g, g, None, None


class NarrowBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d whose training-mode forward runs on the fused kernels where they take the tensor. With
    `relu` set it returns relu(bn(x)); given a residual, relu(bn(x) + residual) (as a BasicBlock ends)."""

    relu = False

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if not self.fused_for(x, residual):
            out = super().forward(x)
            if residual is not None:
                return F.relu(out + residual)
            return F.relu(out) if self.relu else out
        y, mean, var = NormReLU.apply(x, self.weight, self.bias, residual, self.relu, self.eps)
        with torch.no_grad():
            count = x.numel() / x.shape[1]
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (count / (count - 1)), self.momentum)  # unbiased, as ATen keeps it
        return y

    def fused_for(self, x: torch.Tensor, residual: torch.Tensor | None) -> bool:
        """Whether the kernels take this call: training mode with running statistics and a momentum, affine,
        a bf16 channels-last CPU tensor of a channel count they take, outside torch.func and torch.compile."""
        if not (self.training and self.track_running_stats and self.momentum is not None and self.affine):
            return False
        if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
            return False
        fits = (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 4 and takes_channels(x.shape[1])
                and x.is_contiguous(memory_format=torch.channels_last) and x.numel() % lanes(x.shape[1]) == 0)
        return fits and (residual is None or (residual.shape == x.shape and residual.dtype == x.dtype and
                                              residual.is_contiguous(memory_format=torch.channels_last)))


class NarrowBasicBlock(BasicBlock):
    """BasicBlock.forward with its ReLUs and residual add inside the batch norms: the same function."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))  # relu(bn1(conv1(x)))
        return self.bn2(self.conv2(out), self.shortcut(x))  # relu(bn2(conv2(out)) + shortcut(x))


class NarrowStem(nn.Sequential):
    """The stem (conv, BatchNorm, ReLU) with its ReLU inside the batch norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[1](self[0](x))


def install(model: nn.Module) -> nn.Module:
    """`model` (a ResNet) with its batch norms on the fused kernels, in place; the same parameters and buffers."""
    if not isinstance(model, ResNet):
        raise TypeError(f"the fused batch norm is for a ResNet, not a {type(model).__name__}")
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = NarrowBatchNorm2d
        elif type(module) is BasicBlock:
            module.__class__ = NarrowBasicBlock
            module.bn1.relu = True
    model.stem.__class__ = NarrowStem
    model.stem[1].relu = True
    return model


def standard_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` with ATen's modules back (what torch.fx traces, e.g. to fold batch norms for
    evaluation); `model` itself if nothing was installed."""
    if not any(isinstance(m, NarrowBatchNorm2d) for m in model.modules()):
        return model
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, NarrowBatchNorm2d):
            module.__class__ = nn.BatchNorm2d
            module.__dict__.pop("relu", None)
        elif isinstance(module, NarrowBasicBlock):
            module.__class__ = BasicBlock
    plain.stem.__class__ = nn.Sequential
    return plain
