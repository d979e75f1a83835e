"""The fused batch norm (training/narrow_norm.py): the function ATen computes, to bf16's rounding, with ATen's
running statistics, hooks and state-dict keys; ATen itself wherever the kernels do not take a tensor."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb import Phase
from plasticity_nb.measures.activations import probe_activations
from plasticity_nb.nets.models import ResNet
from plasticity_nb.training import layout, narrow_norm
from plasticity_nb.training.build import evaluate
from plasticity_nb.training.narrow_norm import NarrowBatchNorm2d, install, standard_copy
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run

pytestmark = pytest.mark.skipif(narrow_norm.kernels() is None, reason="no C compiler to build the fused kernels")



def channels_last_bf16(*shape, generator):
    return torch.randn(*shape, generator=generator).mul(2).add(0.5).bfloat16().contiguous(
        memory_format=torch.channels_last)


def reference(x, weight, bias, residual, relu, dy):
    """ATen's batch norm (+ residual, ReLU) in float32 on the same bf16 values, rounding to bf16 where ATen's
    bf16 kernels store (the batch norm's output, the sum): output, gradients, running statistics, and where the
    ReLU's input is clear of 0 (elsewhere a rounding may flip which side it is)."""
    x = x.float().requires_grad_()
    weight, bias = weight.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()
    residual = None if residual is None else residual.float().requires_grad_()
    running_mean, running_var = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    y = stored(F.batch_norm(x, running_mean, running_var, weight, bias, True, 0.1, 1e-5))
    before_relu = stored(y + residual) if residual is not None else y
    clear = before_relu.abs() > 0.05 if relu or residual is not None else torch.ones_like(y, dtype=torch.bool)
    y = F.relu(before_relu) if relu or residual is not None else y
    y.backward(dy.float())
    grads = [x.grad, weight.grad, bias.grad, None if residual is None else residual.grad]
    return y, grads, running_mean, running_var, clear


def stored(values):
    """`values` rounded to bf16, the gradient passed straight through."""
    return values + (values.bfloat16().float() - values).detach()


@pytest.mark.parametrize("channels,size", [(8, 16), (16, 8), (32, 4), (64, 4)])
@pytest.mark.parametrize("mode", ["plain", "relu", "residual"])
def test_the_kernels_compute_atens_batch_norm(channels, size, mode):
    g = torch.Generator().manual_seed(channels)
    x, dy = (channels_last_bf16(16, channels, size, size, generator=g) for _ in range(2))
    residual = channels_last_bf16(16, channels, size, size, generator=g) if mode == "residual" else None
    bn = NarrowBatchNorm2d(channels)
    bn.relu = mode == "relu"
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.uniform_(-0.5, 0.5, generator=g)
    assert bn.fused_for(x, residual)
    xs = x.detach().requires_grad_()
    rs = None if residual is None else residual.detach().requires_grad_()
    y = bn(xs, rs)
    y.backward(dy)
    want, grads, running_mean, running_var, clear = reference(x, bn.weight, bn.bias, residual, bn.relu, dy)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=torch.channels_last)
    # the output and the input's gradient: within bf16's rounding of the float32 values
    torch.testing.assert_close(y.float(), want, atol=0.02, rtol=0.01)
    torch.testing.assert_close(xs.grad.float()[clear], grads[0][clear], atol=0.02, rtol=0.02)
    if rs is not None:
        torch.testing.assert_close(rs.grad.float()[clear], grads[3][clear], atol=0.01, rtol=0.01)
    assert clear.float().mean() > 0.9
    # the parameters' gradients and the running statistics: sums in float32 and double, in another order
    torch.testing.assert_close(bn.weight.grad, grads[1], atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(bn.bias.grad, grads[2], atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(bn.running_mean, running_mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(bn.running_var, running_var, atol=1e-6, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1


def quick_like(seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ResNet(depth=1, width=8).to(memory_format=torch.channels_last)


def test_an_installed_resnet_is_the_same_function_with_the_same_state_and_hooks():
    plain, fused = quick_like(), install(quick_like())
    assert list(plain.state_dict()) == list(fused.state_dict())
    x = channels_last_bf16(32, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(fused(x).float(), plain(x).float(), atol=0.1, rtol=0.05)
        # the units' activations, read by forward hooks on bn1 (relu of its output: bn1 now returns it)
        seen, wanted = probe_activations(fused, x), probe_activations(plain, x)
    for name in wanted:
        torch.testing.assert_close(seen[name].float(), wanted[name].float(), atol=0.1, rtol=0.05)
    for a, b in zip(fused.modules(), plain.modules()):
        if isinstance(b, nn.BatchNorm2d):
            torch.testing.assert_close(a.running_mean, b.running_mean, atol=2e-3, rtol=1e-2)


def test_where_the_kernels_do_not_take_a_tensor_it_is_atens_bit_for_bit():
    plain, fused = quick_like(), install(quick_like())
    x = channels_last_bf16(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fused.eval()(x), plain.eval()(x))  # eval mode
    plain.train(), fused.train()
    assert torch.equal(fused(x.float().contiguous()), plain(x.float().contiguous()))  # fp32 (NHWC weights)
    nchw = torch.contiguous_format
    nchw_plain, nchw_fused = quick_like().to(memory_format=nchw), install(quick_like()).to(memory_format=nchw)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # NCHW
        assert torch.equal(nchw_fused(x.contiguous()), nchw_plain(x.contiguous()))


def test_evaluation_folds_atens_modules_and_leaves_the_model_fused():
    from plasticity_nb.training.runtime import Runtime

    fused = install(quick_like())
    plain = standard_copy(fused)
    assert not any(isinstance(m, NarrowBatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, NarrowBatchNorm2d) for m in fused.modules()) and standard_copy(plain) is plain
    images = channels_last_bf16(40, 3, 32, 32, generator=torch.Generator().manual_seed(3)).float()
    labels = torch.arange(40) % 10
    runtime = Runtime(torch.device("cpu"), "bf16", channels_last=True, narrow_norm=True)
    assert evaluate(fused, images, labels, runtime) == evaluate(quick_like(), images, labels, runtime)


@pytest.fixture
def fused_here(monkeypatch, tmp_path):
    """This machine's timings say: the fused batch norm."""
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "time_layouts", lambda config, device, candidates: {
        c.name: (0.5 if c.narrow_norm else 1.0) for c in candidates})


def test_a_checkpoint_from_before_the_fused_batch_norm_resumes_without_it(cifar, fused_here, one_thread):
    config = tiny_run(width=8, precision="bf16", phases=(Phase(epochs=2),))
    saved = []
    train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1,
              runtime=layout.Runtime.for_config(config, "cpu", channels_last=True))
    older = saved[0]
    older.narrow_norm = None  # as a checkpoint written before the setting existed
    assert train_run(config, cifar, resume=older).narrow_norm is False
