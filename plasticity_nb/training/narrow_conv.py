"""Convolutions of few channels off oneDNN's slow paths: an execution setting of a ResNet in bf16 NHWC on a CPU
with AVX512-BF16.

oneDNN blocks bf16 convolutions by 16 output channels, so the quick model's 8-channel 3x3 convolutions (four in
its first stage, over a third of a step) fill half of each dot product; narrow_conv.c computes them (forward,
backward-data, backward-weights) over vectors of 16 pixels instead, 2.4x faster (benchmarks/RESULTS.md). And
oneDNN's backward-data of a stride-2 convolution takes 3-5x its forward: here it is a stride-1 convolution (the
3x3's four parity phases as one convolution of 2x2 taps, the 1x1's a 1x1 convolution scattered to the even
pixels), on ATen. `install` swaps a ResNet's Conv2d classes for NarrowConv2d (same parameters, state-dict keys
and hooks); any call the kernels do not take (NCHW, fp32, other shapes, under torch.func or torch.compile; the
strided ones in eval mode) goes through ATen as before. Evaluation folds batch norms into ATen's convolutions
(torch.fx traces those) and puts the narrow ones back after (`swap_convs`): the folded 8-channel 3x3s, with a
bias, run on the kernels too.

Its sums run in another order than ATen's, so a run trained with it rounds differently: `Runtime.narrow_conv`
is an execution setting (chosen per machine by timed steps in layout.py, kept in checkpoints, recorded in
provenance), never part of a run's key. The kernels are compiled for this CPU the first time (native.py), and
offered only where it has AVX512-BF16 (`vdpbf16ps`).
"""
from __future__ import annotations

import copy
import ctypes
import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.cpu import cpu_identity
from ..nets.models import ResNet
from . import native

SOURCE = Path(__file__).with_name("narrow_conv.c")
CHANNELS = 8  # the kernels' input and output channels
# Widest input of a 3x3 stride-2 convolution whose backward-data runs as the phases' convolution: 1.49 -> 0.61 ms
# at 8 channels, 0.76 -> 0.44 at 16, a tie at 32 (batch 128, one thread, benchmarks/RESULTS.md)
MOST_PHASED_CHANNELS = 16
NEEDS_FLAG = "avx512_bf16"
CHANNELS_LAST = torch.channels_last


@functools.lru_cache(maxsize=1)
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels for this CPU, or None where they cannot run (no AVX512-BF16) or be built."""
    if NEEDS_FLAG not in (cpu_identity()["flags"] or ()):
        return None
    library = native.library(SOURCE)
    return None if library is None else _declared(library)


def _declared(library: ctypes.CDLL) -> ctypes.CDLL:
    p, n = ctypes.c_void_p, ctypes.c_long
    library.nc_conv.argtypes = [p, n, n, n, p, p, p]
    library.nc_weight_grad.argtypes = [p, p, n, n, n, p]
    library.nc_conv.restype = library.nc_weight_grad.restype = ctypes.c_int
    return library


def _checked(status: int) -> None:
    if status:
        raise MemoryError("narrow_conv.c could not allocate its packing buffers")


def _packed(weight: torch.Tensor) -> torch.Tensor:
    """[out][in][ky][kx] bf16 weights as the kernels read them: [ky][kx][in pair][out][2]."""
    out, inputs = weight.shape[:2]
    return weight.permute(2, 3, 1, 0).reshape(3, 3, inputs // 2, 2, out).transpose(3, 4).contiguous()


def _conv(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    y = torch.empty_like(x, memory_format=CHANNELS_LAST)
    n, _, h, w = x.shape
    bias_address = None if bias is None else bias.data_ptr()
    _checked(kernels().nc_conv(x.data_ptr(), n, h, w, packed.data_ptr(), bias_address, y.data_ptr()))
    return y


class Narrow3x3(torch.autograd.Function):
    """An 8-to-8-channel 3x3 convolution, stride 1, padding 1, on the kernels: bf16 NHWC input, bf16 weights and
    bias (as autocast casts them; the bias may be None); the gradients in the parameters' dtype, as ATen gives them."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return _conv(x, _packed(weight), None if bias is None else bias.float())

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        dy = dy.to(x.dtype).contiguous(memory_format=CHANNELS_LAST)
        dx = dw = None
        if ctx.needs_input_grad[0]:  # the same convolution with the weights transposed and flipped
            dx = _conv(dy, _packed(weight.flip(2, 3).transpose(0, 1)))
        if ctx.needs_input_grad[1]:
            sums = torch.empty(weight.shape, dtype=torch.float32)
            n, _, h, w = x.shape
            _checked(kernels().nc_weight_grad(x.data_ptr(), dy.data_ptr(), n, h, w, sums.data_ptr()))
            dw = sums.to(weight.dtype)
        db = dy.sum((0, 2, 3), dtype=torch.float32).to(ctx.bias_dtype) if ctx.needs_input_grad[2] else None
        return dx, dw, db


class Strided(torch.autograd.Function):
    """A stride-2 convolution without bias (3x3 padding 1, or 1x1 padding 0) on ATen, its backward-data as a
    stride-1 convolution (`phased_input_grad`)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return _aten_conv(x, weight, stride=2, padding=weight.shape[-1] // 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        dy = dy.to(x.dtype).contiguous(memory_format=CHANNELS_LAST)
        dx = phased_input_grad(dy, weight, x.shape[-2:]) if ctx.needs_input_grad[0] else None
        dw = None
        if ctx.needs_input_grad[1]:
            padding = weight.shape[-1] // 2
            dw = torch.ops.aten.convolution_backward(dy, x, weight, None, [2, 2], [padding, padding], [1, 1], False,
                                                     [0, 0], 1, [False, True, False])[1]
        return dx, dw


def _aten_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
    return torch.ops.aten.convolution(x, weight, None, [stride, stride], [padding, padding], [1, 1], False, [0, 0], 1)


def phased_input_grad(dy: torch.Tensor, weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The input gradient of a stride-2 convolution (3x3 padding 1, or 1x1) of an input of `size`, from dy.

    Input pixel (2i + a, 2j + b) takes dy's pixels (i, j) and, for a or b odd, (i + 1, ...) through the taps of
    its parity phase (a, b): 1, 2, 2 or 4 taps of the weights. As one stride-1 convolution of dy (zero-padded
    below and right) with 2x2 taps and the four phases' input channels as its outputs, the result is a pixel
    shuffle away; oneDNN's strided backward-data runs the zeros between the pixels instead. A 1x1's input
    gradient is a 1x1 convolution at the even pixels and zero elsewhere."""
    n, _, rows, cols = dy.shape
    inputs = weight.shape[1]
    if weight.shape[-1] == 1:
        dx = dy.new_zeros(n, 2 * rows, 2 * cols, inputs)
        dx[:, ::2, ::2] = _aten_conv(dy, weight.transpose(0, 1).contiguous(memory_format=CHANNELS_LAST)).permute(
            0, 2, 3, 1)
    else:
        phases = _aten_conv(F.pad(dy, (0, 1, 0, 1)), _phase_weights(weight))  # [n][4 * inputs][rows][cols] NHWC
        dx = phases.permute(0, 2, 3, 1).reshape(n, rows, cols, 2, 2, inputs).transpose(2, 3).reshape(
            n, 2 * rows, 2 * cols, inputs)
    dx = dx[:, :size[0], :size[1]].permute(0, 3, 1, 2)
    return dx.contiguous(memory_format=CHANNELS_LAST)


# Each parity phase's taps: (phase row a, phase column b) -> [(tap row, tap column) of the 2x2 kernel, (ky, kx) of
# the 3x3 weight it holds]. Input row 2i + a meets output row i + t through ky = 1 + a - 2t.
PHASE_TAPS = {(0, 0): [((0, 0), (1, 1))],
              (0, 1): [((0, 0), (1, 2)), ((0, 1), (1, 0))],
              (1, 0): [((0, 0), (2, 1)), ((1, 0), (0, 1))],
              (1, 1): [((0, 0), (2, 2)), ((0, 1), (2, 0)), ((1, 0), (0, 2)), ((1, 1), (0, 0))]}


def _phase_weights(weight: torch.Tensor) -> torch.Tensor:
    """[4 * in][out][2][2]: phase (a, b)'s transposed taps as output channels (2a + b) * in ..."""
    transposed = weight.transpose(0, 1)  # [in][out][3][3]
    phased = weight.new_zeros(2, 2, *transposed.shape[:2], 2, 2)
    for (a, b), taps in PHASE_TAPS.items():
        for (t, u), (ky, kx) in taps:
            phased[a, b, :, :, t, u] = transposed[:, :, ky, kx]
    return phased.flatten(0, 2).contiguous(memory_format=CHANNELS_LAST)


class NarrowConv2d(nn.Conv2d):
    """A Conv2d whose calls run on the kernels (8-to-8-channel 3x3, stride 1) or, in training mode, with the
    phased backward-data (stride 2, no bias) where they take the call; ATen's elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        function = self.function_for(x)
        if function is None:
            return super().forward(x)
        weight = self.weight.to(torch.bfloat16)  # as autocast casts the parameters
        if function is Strided:
            return Strided.apply(x, weight)
        return Narrow3x3.apply(x, weight, None if self.bias is None else self.bias.to(torch.bfloat16))

    def function_for(self, x: torch.Tensor) -> type[torch.autograd.Function] | None:
        """Narrow3x3, Strided or None (ATen): a bf16 channels-last CPU tensor under bf16 autocast (or with bf16
        weights), no groups or dilation, outside torch.func and torch.compile; for Strided, training mode and no
        bias."""
        if not (self.groups == 1 and self.dilation == (1, 1) and self.padding_mode == "zeros"):
            return None
        if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
            return None
        if not (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 4
                and x.is_contiguous(memory_format=CHANNELS_LAST) and self._bf16_weights()):
            return None
        shape = (self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        if shape == (CHANNELS, CHANNELS, (3, 3), (1, 1), (1, 1)) and kernels() is not None:
            return Narrow3x3
        if not self.training or self.bias is not None:
            return None
        if shape[2:] == ((3, 3), (2, 2), (1, 1)) and self.in_channels <= MOST_PHASED_CHANNELS:
            return Strided
        return Strided if shape[2:] == ((1, 1), (2, 2), (0, 0)) else None

    def _bf16_weights(self) -> bool:
        if torch.is_autocast_enabled("cpu"):
            return torch.get_autocast_dtype("cpu") == torch.bfloat16
        return self.weight.dtype == torch.bfloat16


def install(model: nn.Module) -> nn.Module:
    """`model` (a ResNet) with its convolutions as NarrowConv2d, in place; the same parameters."""
    if not isinstance(model, ResNet):
        raise TypeError(f"the narrow convolutions are for a ResNet, not a {type(model).__name__}")
    return swap_convs(model)


def swap_convs(model: nn.Module) -> nn.Module:
    """`model` with each of its Conv2d a NarrowConv2d, in place."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = NarrowConv2d
    return model


def installed(model: nn.Module) -> bool:
    return any(isinstance(m, NarrowConv2d) for m in model.modules())


def standard_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` with ATen's Conv2d back (what torch.fx traces, e.g. to fold batch norms for evaluation);
    `model` itself if nothing was installed."""
    if not installed(model):
        return model
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, NarrowConv2d):
            module.__class__ = nn.Conv2d
    return plain
