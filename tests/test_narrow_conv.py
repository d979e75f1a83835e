"""The narrow convolutions (training/narrow_conv.py): the function ATen computes, to bf16's rounding, with ATen's
hooks and state-dict keys, in training and in evaluation; ATen itself wherever they do not take a call."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.measures.activations import probe_activations
from plasticity_nb.nets.models import MLP, ResNet
from plasticity_nb.training import layout, narrow_conv, narrow_norm
from plasticity_nb.training.build import evaluate, evaluation_copy, standard_copy
from plasticity_nb.training.narrow_conv import Narrow3x3, NarrowConv2d, Strided, install, phased_input_grad
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run

CPU = torch.device("cpu")
needs_kernels = pytest.mark.skipif(narrow_conv.kernels() is None,
                                   reason="no AVX512-BF16 or no C compiler to build the narrow convolutions")


def channels_last_bf16(*shape, generator, scale=1.0):
    return (torch.randn(*shape, generator=generator) * scale).bfloat16().contiguous(memory_format=torch.channels_last)


def reference(x, weight, dy, stride, padding, bias=None):
    """ATen's convolution in float32 on the same bf16 values: output and the gradients of input, weight, bias."""
    x, weight = x.float().requires_grad_(), weight.float().requires_grad_()
    bias = None if bias is None else bias.float().requires_grad_()
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    y.backward(dy.float())
    return y, x.grad, weight.grad, None if bias is None else bias.grad


def run_function(function, x, weight, dy, *bias):
    x, weight = x.detach().requires_grad_(), weight.detach().requires_grad_()
    bias = [None if b is None else b.detach().requires_grad_() for b in bias]
    y = function.apply(x, weight, *bias)
    y.backward(dy)
    return y, x.grad, weight.grad, *(None if b is None else b.grad for b in bias)


def assert_bf16_close(got, want):
    """Within bf16's rounding of the float32 sums (8 bits of mantissa: 2**-8 of the largest value, and more)."""
    assert got.dtype == torch.bfloat16 and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.float(), want, atol=want.abs().max().item() * 2 ** -7, rtol=2 ** -7)


@needs_kernels
@pytest.mark.parametrize("batch,rows,cols,with_bias", [(3, 32, 32, False), (4, 16, 16, False), (5, 7, 20, True)])
def test_the_kernels_compute_atens_8_channel_3x3_convolution(batch, rows, cols, with_bias):
    g = torch.Generator().manual_seed(rows * cols + batch)
    x, dy = (channels_last_bf16(batch, 8, rows, cols, generator=g) for _ in range(2))
    weight = channels_last_bf16(8, 8, 3, 3, generator=g, scale=0.3)
    bias = torch.randn(8, generator=g).bfloat16() if with_bias else None
    y, dx, dw, db = run_function(Narrow3x3, x, weight, dy, bias)
    want_y, want_dx, want_dw, want_db = reference(x, weight, dy, 1, 1, bias)
    assert_bf16_close(y, want_y)
    assert_bf16_close(dx, want_dx)
    # the parameters' gradients: float32 sums in another order, returned as bf16 as ATen returns them
    for got, want in ((dw, want_dw), (db, want_db)):
        if want is not None:
            assert got.dtype == torch.bfloat16
            torch.testing.assert_close(got.float(), want, atol=want.abs().max().item() * 2 ** -7, rtol=2 ** -7)


@pytest.mark.parametrize("inputs,outputs,size,kernel", [(8, 16, 32, 3), (16, 32, 16, 3), (8, 16, 9, 3),
                                                        (8, 16, 32, 1), (16, 32, 16, 1), (32, 64, 8, 1),
                                                        (16, 32, 7, 1)])
def test_the_phased_backward_data_computes_atens_stride_2_input_gradient(inputs, outputs, size, kernel):
    g = torch.Generator().manual_seed(inputs * size + kernel)
    batch = 3 if kernel == 3 else 4  # torch 2.14's channels-last backward of a 1x1 stride-2 conv crashes at batch 3
    x = channels_last_bf16(batch, inputs, size, size, generator=g)
    weight = channels_last_bf16(outputs, inputs, kernel, kernel, generator=g, scale=0.3)
    dy = channels_last_bf16(batch, outputs, (size + 1) // 2, (size + 1) // 2, generator=g)
    want_dx = reference(x, weight, dy, 2, kernel // 2)[1]
    assert_bf16_close(phased_input_grad(dy, weight, (size, size)), want_dx)
    y, dx, dw = run_function(Strided, x, weight, dy)[:3]
    aten = torch.ops.aten.convolution_backward(dy, x, weight, None, [2, 2], [kernel // 2] * 2, [1, 1], False,
                                               [0, 0], 1, [False, True, False])[1]
    assert torch.equal(y, F.conv2d(x, weight, stride=2, padding=kernel // 2)) and torch.equal(dw, aten)
    assert_bf16_close(dx, want_dx)


def quick_like(seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ResNet(depth=1, width=8).to(memory_format=torch.channels_last)


def test_the_calls_each_convolution_takes():
    model = install(quick_like())
    x = channels_last_bf16(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    taken = {}

    def seen(name):
        return lambda module, args: taken.update({name: module.function_for(args[0])})

    hooks = [m.register_forward_pre_hook(seen(name)) for name, m in model.named_modules()
             if isinstance(m, NarrowConv2d)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    for hook in hooks:
        hook.remove()
    three_by_three = Narrow3x3 if narrow_conv.kernels() is not None else None
    assert taken["stem.0"] is None  # the image arrives in float32 (autocast casts it inside ATen's call)
    assert taken["stage1.0.conv1"] is three_by_three and taken["stage1.0.conv2"] is three_by_three
    assert taken["stage2.0.conv1"] is Strided and taken["stage2.0.shortcut.0"] is Strided
    assert taken["stage2.0.conv2"] is None and taken["stage4.0.conv1"] is None  # 16 channels; 32 inputs
    assert taken["stage4.0.shortcut.0"] is Strided


def test_an_installed_resnet_is_the_same_function_with_the_same_state_and_hooks():
    plain, narrow = quick_like(), install(quick_like())
    assert list(plain.state_dict()) == list(narrow.state_dict())
    x = channels_last_bf16(32, 3, 32, 32, generator=torch.Generator().manual_seed(1)).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_narrow, out_plain = narrow(x), plain(x)
        seen, wanted = probe_activations(narrow, x), probe_activations(plain, x)
    torch.testing.assert_close(out_narrow.float(), out_plain.float(), atol=0.1, rtol=0.05)
    for name in wanted:
        torch.testing.assert_close(seen[name].float(), wanted[name].float(), atol=0.1, rtol=0.05)
    out_narrow.float().square().sum().backward()
    out_plain.float().square().sum().backward()
    for (name, a), b in zip(narrow.named_parameters(), plain.parameters()):
        assert a.grad.dtype == b.grad.dtype == torch.float32, name
        torch.testing.assert_close(a.grad, b.grad, atol=b.grad.abs().max().item() * 0.05, rtol=0.05)


def test_where_the_kernels_do_not_take_a_call_it_is_atens_bit_for_bit():
    plain, narrow = quick_like(), install(quick_like())
    x = channels_last_bf16(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert torch.equal(narrow(x.float()), plain(x.float()))  # fp32 (NHWC weights)
    nchw = torch.contiguous_format
    nchw_plain, nchw_narrow = quick_like().to(memory_format=nchw), install(quick_like()).to(memory_format=nchw)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # NCHW
        assert torch.equal(nchw_narrow(x.contiguous()), nchw_plain(x.contiguous()))
    strided = NarrowConv2d(8, 16, 3, 2, 1, bias=False).to(memory_format=torch.channels_last)
    x = channels_last_bf16(2, 8, 8, 8, generator=torch.Generator())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert strided.function_for(x) is Strided
        assert strided.eval().function_for(x) is None  # eval mode: its forward is ATen's anyway
        strided.bias = nn.Parameter(torch.zeros(16))
        assert strided.train().function_for(x) is None  # a bias
        assert NarrowConv2d(8, 8, 3, 1, 1, groups=2).function_for(x) is None
        assert NarrowConv2d(8, 8, 3, 1, 2, dilation=2).function_for(x) is None


def test_evaluation_folds_atens_modules_and_puts_the_narrow_convolutions_back():
    model = narrow_norm.install(install(quick_like()))
    plain = standard_copy(model)
    assert not any(isinstance(m, NarrowConv2d) for m in plain.modules())
    assert any(isinstance(m, NarrowConv2d) for m in model.modules()) and standard_copy(plain) is plain
    folded = evaluation_copy(model.eval())
    assert {type(m) for m in folded.modules()} >= {NarrowConv2d}
    assert not any(isinstance(m, NarrowConv2d) for m in evaluation_copy(plain.eval()).modules())
    assert folded.get_submodule("stage1.0.conv1").bias is not None  # the batch norm folded in
    images = channels_last_bf16(40, 3, 32, 32, generator=torch.Generator().manual_seed(3)).float()
    labels = torch.arange(40) % 10
    runtime = Runtime(CPU, "bf16", channels_last=True, narrow_norm=True, narrow_conv=True)
    model.train()
    loss, accuracy = evaluate(model, images, labels, runtime)
    want_loss, want_accuracy = evaluate(quick_like(), images, labels, runtime)
    assert loss == pytest.approx(want_loss, rel=1e-2) and accuracy == pytest.approx(want_accuracy, abs=0.05)
    assert any(isinstance(m, NarrowConv2d) for m in model.modules()) and model.training


def test_refusals_name_the_culprit():
    with pytest.raises(ConfigError, match="narrow_conv .* runs eager bf16 NHWC on a CPU; this run is fp32"):
        Runtime(CPU, "fp32", channels_last=True, narrow_conv=True)
    with pytest.raises(ConfigError, match="narrow_conv .* channels_last=False"):
        Runtime(CPU, "bf16", channels_last=False, narrow_conv=True)
    with pytest.raises(TypeError, match="for a ResNet, not a MLP"):
        install(MLP())


@pytest.fixture
def narrow_here(monkeypatch, tmp_path):
    """This machine's timings say: the narrow convolutions."""
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "time_layouts", lambda config, device, candidates: {
        c.name: (0.5 if c.narrow_conv else 1.0) for c in candidates})


@needs_kernels
def test_a_checkpoint_from_before_the_narrow_convolutions_resumes_without_them(cifar, narrow_here, one_thread):
    config = tiny_run(width=8, precision="bf16", phases=(Phase(epochs=2),))
    saved = []
    train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1,
              runtime=layout.Runtime.for_config(config, "cpu", channels_last=True, narrow_norm=True))
    older = saved[0]
    older.narrow_conv = None  # as a checkpoint written before the setting existed
    resumed = train_run(config, cifar, resume=older)
    assert resumed.narrow_conv is False and resumed.narrow_norm is True
