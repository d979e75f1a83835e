"""The exact maths of each remedy on tiny models (a few thousand parameters, random tensors, no data)."""
import copy
from math import sqrt

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb.core.config import ConfigError
from plasticity_nb.measures.activations import probe_activations, record_activations
from plasticity_nb.measures.plasticity_metrics import dormant_scores, initial_parameters
from plasticity_nb.nets.models import MLP, ResNet
from plasticity_nb.nets.units import unit_layers
from plasticity_nb.remedies.cbp import ContinualBackprop
from plasticity_nb.remedies.dash import dash_
from plasticity_nb.remedies.l2_init import l2_init_penalty
from plasticity_nb.remedies.redo import ReDo, redo_reset_
from plasticity_nb.remedies.shrink_perturb import shrink_perturb_
from plasticity_nb.remedies.unit_reset import fresh_incoming_weights

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def assert_close(actual, expected, rtol=1.3e-6, atol=1e-5):
    """torch.allclose with a message; torch.testing.assert_close imports sympy (seconds on a busy machine)."""
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected).to(actual.dtype)
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


def tiny_resnet(seed=0):
    torch.manual_seed(seed)
    return ResNet(depth=1, width=2)


def tiny_mlp(seed=0, depth=2, width=4):
    torch.manual_seed(seed)
    return MLP(depth=depth, width=width)


def images(n=8, size=32, seed=1):
    """Random CIFAR-shaped batches (the MLP needs 32 x 32; the ResNet also runs on 8 x 8, much faster)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def params(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def buffers(model):
    return {name: b.clone() for name, b in model.named_buffers()}


def adam_step(model, x, y, lr=1e-2):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()
    return optimizer


# --- units -------------------------------------------------------------------------------------------------

def test_units_are_block_conv1_channels_and_hidden_features():
    resnet, mlp = tiny_resnet(), tiny_mlp()
    layers = unit_layers(resnet)
    assert [layer.name for layer in layers] == ["stage1.0.conv1", "stage2.0.conv1", "stage3.0.conv1", "stage4.0.conv1"]
    assert layers[0].incoming is resnet.stage1[0].conv1 and layers[0].outgoing is resnet.stage1[0].conv2
    assert layers[0].norm is resnet.stage1[0].bn1 and layers[3].size == 16
    mlp_layers = unit_layers(mlp)
    assert [layer.outgoing for layer in mlp_layers] == [mlp.hidden[1], mlp.head]
    with pytest.raises(TypeError):
        unit_layers(nn.Linear(2, 2))


def test_recorded_activations_are_the_post_relu_units_and_probes_keep_bn_statistics():
    mlp, resnet = tiny_mlp(), tiny_resnet()
    x, _ = images()
    acts = probe_activations(mlp, x)
    assert torch.equal(acts["hidden.0"], F.relu(mlp.hidden[0](x.flatten(1))))
    before = buffers(resnet)
    acts = probe_activations(resnet.train(), images(size=8)[0])
    assert acts["stage2.0.conv1"].shape == (8, 4, 4, 4)
    assert all(torch.equal(before[k], v) for k, v in buffers(resnet).items())
    with record_activations(mlp) as recorded:
        mlp(x)
    assert set(recorded) == {"hidden.0", "hidden.1"}
    assert not mlp.hidden[0]._forward_hooks  # hooks removed on exit


# --- shrink and perturb ------------------------------------------------------------------------------------

def test_shrink_perturb_one_zero_is_the_identity_bitwise():
    model, fresh = tiny_resnet(0), tiny_resnet(1)
    model(images(size=8)[0])  # BN statistics away from their defaults
    before, before_buffers = params(model), buffers(model)
    shrink_perturb_(model, fresh, shrink=1.0, perturb=0.0, bn_statistics="keep")
    assert all(torch.equal(before[k], v) for k, v in params(model).items())
    assert all(torch.equal(before_buffers[k], v) for k, v in buffers(model).items())


def test_shrink_perturb_zero_one_is_the_fresh_init():
    model, fresh = tiny_mlp(0), tiny_mlp(1)
    shrink_perturb_(model, fresh, shrink=0.0, perturb=1.0)
    assert all(torch.equal(params(fresh)[k], v) for k, v in params(model).items())


def test_shrink_perturb_follows_the_formula_on_every_parameter():
    model, fresh = tiny_resnet(0), tiny_resnet(1)
    theta, theta_fresh = params(model), params(fresh)
    shrink_perturb_(model, fresh, shrink=0.4, perturb=0.1)
    for name, value in params(model).items():
        assert_close(value, 0.4 * theta[name] + 0.1 * theta_fresh[name], rtol=0, atol=1e-7)


@pytest.mark.parametrize("policy", ["reset", "keep"])
def test_shrink_perturb_bn_statistics_follow_the_policy(policy):
    model, fresh = tiny_resnet(0), tiny_resnet(1)
    model(images(size=8)[0])
    before = buffers(model)
    shrink_perturb_(model, fresh, shrink=0.5, perturb=0.5, bn_statistics=policy)
    bn = model.stage1[0].bn1
    if policy == "keep":
        assert all(torch.equal(before[k], v) for k, v in buffers(model).items())
    else:
        assert torch.equal(bn.running_mean, torch.zeros(2)) and torch.equal(bn.running_var, torch.ones(2))
        assert bn.num_batches_tracked.item() == 0


def test_shrink_perturb_refuses_a_bad_policy_or_another_architecture():
    with pytest.raises(ValueError, match="bn_statistics"):
        shrink_perturb_(tiny_mlp(), tiny_mlp(), 0.5, 0.1, bn_statistics="estimate")
    with pytest.raises(ValueError, match="fresh model"):
        shrink_perturb_(tiny_mlp(width=4), tiny_mlp(width=3), 0.5, 0.1)


# --- DASH --------------------------------------------------------------------------------------------------

class TinyConvNet(nn.Module):
    """Conv with bias + BN + Linear: every case DASH distinguishes (kernel slices, rows, biases, BN).

    The BN comes after the ReLU: a conv bias right before a train-mode BN has a zero gradient in exact
    arithmetic, and its cosine would compare rounding noise."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, bias=True)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Linear(2, 10)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.bn(F.relu(self.conv(x))), 1).flatten(1))


def dash_by_hand(model, batches, alpha, floor):
    """The same maths written as explicit loops over kernel slices and rows."""
    model = copy.deepcopy(model)
    work = copy.deepcopy(model)
    shrinkable = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    g = {}
    for x, y in batches:
        work.zero_grad()
        F.cross_entropy(work(x), y).backward()
        for module_name in shrinkable:
            module = work.get_submodule(module_name)
            for kind in ("weight", "bias"):
                p = getattr(module, kind)
                if p is not None:
                    key = f"{module_name}.{kind}"
                    g[key] = (1 - alpha) * g.get(key, torch.zeros_like(p)) - alpha * p.grad

    def scale(a, b):
        cos = (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-8)  # torch's eps: a zero gradient gives 0
        return min(max(cos.item(), floor), 1.0)

    with torch.no_grad():
        for key, direction in g.items():
            p = model.get_parameter(key)
            if key.endswith(".bias"):
                p.mul_(scale(direction, p))
            elif p.ndim == 4:
                for o in range(p.shape[0]):
                    for i in range(p.shape[1]):
                        p[o, i] *= scale(direction[o, i], p[o, i])
            else:
                for o in range(p.shape[0]):
                    p[o] *= scale(direction[o], p[o])
    return model


@pytest.mark.parametrize("floor", [-1.0, 0.0, 0.3])  # -1: no clamping, the cosines themselves
@pytest.mark.parametrize("make,size", [(lambda: TinyConvNet().double(), 6),
                                       (lambda: tiny_mlp(width=3).double(), 32)])
def test_dash_matches_the_maths_written_by_hand(make, size, floor):
    torch.manual_seed(0)
    model = make()
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(6, 3, size, size, generator=g, dtype=torch.float64),
                torch.randint(0, 10, (6,), generator=g)) for _ in range(3)]
    expected = dash_by_hand(model, batches, alpha=0.3, floor=floor)
    scales = dash_(model, batches, alpha=0.3, shrink_floor=floor)
    for name, value in params(model).items():
        assert_close(value, params(expected)[name], rtol=1e-10, atol=1e-12)
    assert all(s.min() >= floor and s.max() <= 1 for s in scales.values())
    assert not any(name.startswith("bn.") for name in scales)


def authors_dash(args, model, criterion, chunk_loader):
    """baekrok/DASH-Direction-Aware-SHrinking, utils/train_utils.py:111-174 (commit 3d3cea6c), verbatim except
    einops' rearrange(w, 'o i h w -> o i (h w)'), written as the equivalent reshape, and the CUDA cache call."""
    ####################
    #### initialize
    temp_net = copy.deepcopy(model)
    all_grad_lst = []
    all_grad_bias_lst = []

    for m in temp_net.modules():
        if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
            all_grad_lst.append(torch.zeros_like(m.weight))
            if m.bias != None:  # noqa: E711 (verbatim)
                all_grad_bias_lst.append(torch.zeros_like(m.bias))

    ####################
    #### Gather Gradient
    for i, (x_batch, y_batch) in enumerate(chunk_loader):
        temp_net.zero_grad()
        y_hat = temp_net(x_batch.to(args.device))
        loss = criterion(y_hat, y_batch.to(args.device))
        loss.backward()

        step = 0
        bias_step = 0
        for m in temp_net.modules():
            if isinstance(m, nn.Conv2d) or isinstance(m, nn.Linear):
                all_grad_lst[step] = (1 - args.dash_alpha) * all_grad_lst[step] + args.dash_alpha * (-m.weight.grad.detach())  # noqa: E501 (verbatim)
                if m.bias != None:  # noqa: E711 (verbatim)
                    all_grad_bias_lst[bias_step] = (1 - args.dash_alpha) * all_grad_bias_lst[bias_step] + args.dash_alpha * (-m.bias.grad.detach())  # noqa: E501 (verbatim)
                    bias_step += 1
                step += 1
    #########################
    ## Shrink
    step = 0
    bias_step = 0

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                o, i, h, w = all_grad_lst[step].shape
                grad = all_grad_lst[step].reshape(o, i, h * w)
                param_r = m.weight.reshape(o, i, h * w)
                cos_sim = torch.cosine_similarity(grad, param_r, dim=-1)
                scale = torch.clamp(cos_sim, min=args.dash_lambda, max=1)
                param_r.mul_(scale[:, :, None])
                step += 1

                if m.bias is not None:
                    cos_sim_bias = torch.cosine_similarity(all_grad_bias_lst[bias_step].reshape(1, -1), m.bias.reshape(1, -1))  # noqa: E501 (verbatim)
                    scale_bias = torch.clamp(cos_sim_bias, min=args.dash_lambda, max=1)
                    m.bias.mul_(scale_bias)
                    bias_step += 1

            elif isinstance(m, nn.Linear):
                cos_sim = torch.cosine_similarity(all_grad_lst[step], m.weight, dim=-1)
                scale = torch.clamp(cos_sim, min=args.dash_lambda, max=1)
                m.weight.mul_(scale[:, None])
                step += 1
                if m.bias is not None:
                    cos_sim_bias = torch.cosine_similarity(all_grad_bias_lst[bias_step].reshape(1, -1), m.bias.reshape(1, -1))  # noqa: E501 (verbatim)
                    scale_bias = torch.clamp(cos_sim_bias, min=args.dash_lambda, max=1)
                    m.bias.mul_(scale_bias)
                    bias_step += 1

    return model


@pytest.mark.parametrize("make", [lambda: TinyConvNet().double(), lambda: tiny_resnet().double()])
def test_dash_as_its_authors_call_it_equals_their_function(make):
    """Their procedure (main.py:54, 68-69; train_utils.py:184-186): the buffer of chunks, the new one last, one
    batch per chunk (shuffle=False), the model in eval mode; ours gets each chunk as micro-batches."""
    from types import SimpleNamespace

    from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

    torch.manual_seed(3)
    model = make()
    model(torch.randn(16, 3, 8, 8, dtype=torch.float64))  # BatchNorm running statistics away from their defaults
    model.eval()
    g = torch.Generator().manual_seed(4)
    buffer = [TensorDataset(torch.randn(12, 3, 8, 8, generator=g, dtype=torch.float64),
                            torch.randint(0, 10, (12,), generator=g)) for _ in range(3)]
    args = SimpleNamespace(device="cpu", dash_alpha=0.3, dash_lambda=0.3)
    loader = DataLoader(ConcatDataset(buffer), batch_size=12, shuffle=False)
    before = params(model)
    theirs = authors_dash(args, copy.deepcopy(model), nn.CrossEntropyLoss(), loader)
    chunks = [[(c.tensors[0][i:i + 5], c.tensors[1][i:i + 5]) for i in range(0, 12, 5)] for c in buffer]
    dash_(model, chunks, alpha=0.3, shrink_floor=0.3)
    for name, value in params(model).items():
        assert_close(value, params(theirs)[name], rtol=1e-10, atol=1e-12)
    assert any(not torch.equal(v, before[k]) for k, v in params(theirs).items())  # it did shrink


def test_dash_with_floor_one_is_the_identity_and_leaves_batchnorm_alone():
    model = TinyConvNet()
    model(torch.randn(4, 3, 8, 8))
    before, before_buffers = params(model), buffers(model)
    x = torch.randn(4, 3, 8, 8)
    scales = dash_(model, [(x, torch.randint(0, 10, (4,)))], shrink_floor=1.0)
    assert all(torch.equal(before[k], v) for k, v in params(model).items())
    assert all(torch.equal(before_buffers[k], v) for k, v in buffers(model).items())  # gradients ran on a copy
    assert scales["conv.weight"].shape == (2, 3) and scales["head.weight"].shape == (10,)
    assert scales["conv.bias"].shape == ()


# --- L2 Init -----------------------------------------------------------------------------------------------

def authors_l2_init_loss(model, init_params_dict, l2_weight):
    """skumar9876/L2_Init, agents/agents.py, L2InitAgent.compute_loss, lines 282-297 (commit 3f86d26f), less
    the task loss and the resampled-init branch (sample_init_values is False in config/agent/l2_init.yaml)."""
    l2_loss = 0
    for name, param in model.named_parameters():
        if not param.requires_grad or 'layer_norm' in name or \
            'init_params' in name or \
                'original_last_layer_params' in name:
            continue
        init_param = init_params_dict[name].detach()
        diff = param - init_param
        l2_loss += torch.sum(diff ** 2)
    return l2_weight * 0.5 * l2_loss


def displaced(model):
    theta0 = initial_parameters(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    return theta0


@pytest.mark.parametrize("l2_weight", [1e-2, 1e-3, 1e-4, 1e-5])  # the authors' swept values
def test_l2_init_is_the_authors_penalty_on_their_kind_of_network(l2_weight):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).double()
    theta0 = displaced(model)
    ours, theirs = l2_init_penalty(model, theta0, l2_weight), authors_l2_init_loss(model, theta0, l2_weight)
    assert_close(ours, theirs, rtol=1e-12, atol=0)
    assert_close(l2_init_penalty(model, theta0, l2_weight, convention="paper"), 2 * theirs, rtol=1e-12, atol=0)


def test_l2_init_leaves_batchnorm_out_by_default_and_takes_it_in_as_an_option():
    torch.manual_seed(1)
    model = tiny_resnet().double()
    theta0 = displaced(model)
    norms = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    without_bn = copy.deepcopy(model)
    for name in norms:  # the authors' network: the same layers, no BatchNorm
        parent, _, leaf = name.rpartition(".")
        setattr(without_bn.get_submodule(parent) if parent else without_bn, leaf, nn.Identity())
    theirs = authors_l2_init_loss(without_bn, theta0, 1e-2)
    assert_close(l2_init_penalty(model, theta0, 1e-2), theirs, rtol=1e-12, atol=0)
    assert_close(l2_init_penalty(model, theta0, 1e-2, parameters="all"), authors_l2_init_loss(model, theta0, 1e-2),
                 rtol=1e-12, atol=0)
    assert l2_init_penalty(model, theta0, 1e-2, parameters="all") > l2_init_penalty(model, theta0, 1e-2)


def test_l2_init_is_a_sum_of_squared_norms_on_a_hand_case():
    layer = nn.Linear(2, 1)
    theta0 = initial_parameters(layer)
    with torch.no_grad():
        layer.weight.add_(torch.tensor([[3.0, 0.0]]))
        layer.bias.add_(torch.tensor([4.0]))
    # sum of squared norms 9 + 16 = 25 (the wrong "square of the sum of norms" would give 49)
    assert_close(l2_init_penalty(layer, theta0, 0.1), torch.tensor(1.25))
    assert_close(l2_init_penalty(layer, theta0, 0.1, convention="paper"), torch.tensor(2.5))


def test_l2_init_gradient_is_the_coefficient_times_the_displacement_exactly():
    model = tiny_resnet()
    theta0 = displaced(model)
    coefficient = 0.25  # a power of two: every product below is exact, so equality can be bitwise
    l2_init_penalty(model, theta0, coefficient).backward()
    batchnorm = {f"{n}.{leaf}" for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
                 for leaf, _ in m.named_parameters(recurse=False)}
    assert batchnorm
    for name, p in model.named_parameters():
        if name in batchnorm:
            assert p.grad is None, name
        else:
            assert torch.equal(p.grad, coefficient * (p.detach() - theta0[name])), name


def test_l2_init_refuses_other_parameters_and_unknown_options():
    with pytest.raises(ValueError):
        l2_init_penalty(tiny_mlp(), initial_parameters(tiny_resnet()), 0.1)
    with pytest.raises(ValueError, match="convention"):
        l2_init_penalty(tiny_mlp(), initial_parameters(tiny_mlp()), 0.1, convention="half")


# --- ReDo --------------------------------------------------------------------------------------------------

def test_dormant_scores_on_a_hand_case_and_average_one_per_layer():
    h = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # mean |h| per unit: 2, 0, 1 -> layer mean 1
    assert_close(dormant_scores({"a": h})["a"], torch.tensor([2.0, 0.0, 1.0]))
    for model, size in ((tiny_resnet(), 8), (tiny_mlp(), 32)):
        for score in dormant_scores(probe_activations(model.train(), images(size=size)[0])).values():
            assert_close(score.mean(), torch.tensor(1.0))
    conv = torch.zeros(2, 2, 3, 3)
    conv[0, 1, 0, 0] = 18.0  # channel 1: mean over batch and positions 1; channel 0: 0
    assert_close(dormant_scores({"c": conv})["c"], torch.tensor([0.0, 2.0]))


def force_dormant(layer, unit):
    with torch.no_grad():
        layer.incoming.weight[unit] = 0
        if layer.incoming.bias is not None:
            layer.incoming.bias[unit] = 0


@pytest.mark.parametrize("make,layer_index,size", [(tiny_resnet, 1, 8), (tiny_mlp, 0, 32)])
def test_redo_resets_exactly_the_dormant_unit(make, layer_index, size):
    model = make().train()
    x, y = images(size=size)
    optimizer = adam_step(model, x, y)  # non-zero moments everywhere
    layer = unit_layers(model)[layer_index]
    force_dormant(layer, unit=1)
    if layer.norm is not None:
        with torch.no_grad():
            layer.norm.weight[1], layer.norm.running_mean[1], layer.norm.running_var[1] = 2.0, 0.5, 3.0
    before = params(model)
    moments = {p: {k: v.clone() for k, v in optimizer.state[p].items()} for p in model.parameters()}
    scores = dormant_scores(probe_activations(model, x))
    reset = redo_reset_(model, scores, optimizer, tau=0.1, generator=torch.Generator().manual_seed(0))
    assert reset[layer.name].tolist() == [1]
    assert all(index.numel() == 0 for name, index in reset.items() if name != layer.name)
    assert layer.incoming.weight[1].abs().sum() > 0  # a fresh draw, not the forced zeros
    assert torch.equal(layer.outgoing.weight[:, 1], torch.zeros_like(layer.outgoing.weight[:, 1]))
    for p, dim in ((layer.incoming.weight, 0), (layer.outgoing.weight, 1)):
        for key in ("exp_avg", "exp_avg_sq"):
            state = optimizer.state[p][key]
            assert torch.equal(state.select(dim, 1), torch.zeros_like(state.select(dim, 1)))
            keep = [i for i in range(state.shape[dim]) if i != 1]
            assert torch.equal(state.index_select(dim, torch.tensor(keep)),
                               moments[p][key].index_select(dim, torch.tensor(keep)))
    if layer.norm is not None:
        bn = layer.norm
        entries = (bn.weight[1], bn.bias[1], bn.running_mean[1], bn.running_var[1])
        assert [e.item() for e in entries] == [1, 0, 0, 1]
        assert optimizer.state[bn.weight]["exp_avg"][1] == 0
    # every other entry of the model is as it was: other parameters whole, the unit's layers outside slice 1
    sliced = {layer.incoming.weight: 0, layer.outgoing.weight: 1}
    if layer.incoming.bias is not None:
        sliced[layer.incoming.bias] = 0
    if layer.norm is not None:
        sliced.update({layer.norm.weight: 0, layer.norm.bias: 0})
    for name, p in model.named_parameters():
        new, old = p.detach(), before[name]
        if p in sliced:
            others = torch.tensor([i for i in range(p.shape[sliced[p]]) if i != 1])
            new, old = new.index_select(sliced[p], others), old.index_select(sliced[p], others)
        assert torch.equal(new, old), name


def test_redo_zeroes_sgd_momentum_and_is_reproducible_with_a_generator():
    outcomes = []
    for _ in range(2):
        model = tiny_mlp()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = images()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        layer = unit_layers(model)[0]
        force_dormant(layer, unit=2)
        scores = dormant_scores(probe_activations(model, x))
        redo_reset_(model, scores, optimizer, generator=torch.Generator().manual_seed(5))
        assert torch.equal(optimizer.state[layer.incoming.weight]["momentum_buffer"][2],
                           torch.zeros(layer.incoming.weight.shape[1]))
        outcomes.append(layer.incoming.weight[2].clone())
    assert torch.equal(*outcomes)


def their_moment_reset(optimizer, layers, dormant):
    """google/dopamine labs/redo/weight_recyclers.py (5873f54), in torch's (out, in) layout: masks for the parameters
    of two or more dimensions only (lines 587-594; None for a bias), each dormant unit's incoming row and outgoing
    column (652-697), and mu, nu <- momentum * (1 - mask) (51-53, 554-559). The new state of every parameter."""
    masks = {}
    for layer in layers:
        for p, dim in ((layer.incoming.weight, 0), (layer.outgoing.weight, 1)):
            shape = [1] * p.ndim
            shape[dim] = -1
            masks[p] = masks.get(p, torch.zeros_like(p)) + dormant[layer.name].float().view(shape).expand_as(p)
    return {p: {key: value * (1.0 - masks[p]) if p in masks and key in ("exp_avg", "exp_avg_sq") else value.clone()
                for key, value in optimizer.state[p].items()} for p in optimizer.state}


@pytest.mark.parametrize("bias_state", ["keep", "zero"])
def test_redo_resets_adam_moments_as_their_code_the_incoming_bias_kept_by_default(bias_state):
    model = tiny_mlp().train()
    x, y = images()
    optimizer = adam_step(model, x, y)
    layers = unit_layers(model)
    force_dormant(layers[0], unit=2)
    scores = dormant_scores(probe_activations(model, x))
    dormant = {name: score <= 0.1 for name, score in scores.items()}  # their _score2mask (lines 567-570)
    expected = their_moment_reset(optimizer, layers, dormant)
    bias = layers[0].incoming.bias
    kept = optimizer.state[bias]["exp_avg"][2].item()
    assert kept != 0
    settings = {} if bias_state == "keep" else {"bias_state": bias_state}
    reset = redo_reset_(model, scores, optimizer, tau=0.1, **settings)
    assert all(torch.equal(reset[name], torch.nonzero(mask).flatten()) for name, mask in dormant.items())
    assert bias[2] == 0  # the bias itself is zeroed either way (their lines 637-642)
    if bias_state == "zero":  # the package's earlier reset, as continual backprop's gnt.py:217, 219
        for layer in layers:
            for key in ("exp_avg", "exp_avg_sq"):
                expected[layer.incoming.bias][key][dormant[layer.name]] = 0
    for p, state in expected.items():
        for key, value in state.items():
            assert torch.equal(optimizer.state[p][key], value), (key, tuple(p.shape))
    assert (optimizer.state[bias]["exp_avg"][2].item() == kept) == (bias_state == "keep")
    assert ReDo().bias_state == "keep" and ReDo().key() == ReDo(bias_state="keep").key()
    with pytest.raises(ConfigError, match="bias_state"):
        ReDo(bias_state="reset")


# --- continual backprop ------------------------------------------------------------------------------------

def train_steps(model, steps, cbp=None):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = images(seed=step)
        with record_activations(model) as acts:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cbp is not None:
            cbp.step(acts, optimizer)
    return model


def test_cbp_with_rate_zero_is_plain_training_bitwise():
    plain = train_steps(tiny_mlp(), 4)
    model = tiny_mlp()
    with_cbp = train_steps(model, 4, ContinualBackprop(model, replacement_rate=0.0, maturity_threshold=0))
    assert all(torch.equal(params(plain)[k], v) for k, v in params(with_cbp).items())


def test_cbp_utility_update_on_a_hand_case():
    model = tiny_mlp(depth=1, width=2)
    with torch.no_grad():
        model.head.weight[:, 0], model.head.weight[:, 1] = -0.5, 0.1  # sum |w_out|: 5 and 1
    cbp = ContinualBackprop(model, replacement_rate=0.0, maturity_threshold=0)
    h = {"hidden.0": torch.tensor([[1.0, 2.0], [3.0, 0.0]])}  # mean |h|: 2 and 1
    cbp.step(h)
    assert_close(cbp.utility["hidden.0"], torch.tensor([0.01 * 10, 0.01 * 1]))
    cbp.step(h)
    assert_close(cbp.utility["hidden.0"], torch.tensor([0.99 * 0.1 + 0.1, 0.99 * 0.01 + 0.01]))
    assert cbp.age["hidden.0"].tolist() == [2, 2]


def test_cbp_replaces_the_lowest_bias_corrected_utility():
    model = tiny_mlp(depth=1, width=2)
    cbp = ContinualBackprop(model, replacement_rate=0.5, maturity_threshold=0)
    state = cbp.state_dict()
    state["hidden.0.utility"] = torch.tensor([0.01, 0.3])  # unit 0 is young, unit 1 old
    state["hidden.0.age"] = torch.tensor([1, 99])
    cbp.load_state_dict(state)
    # after this step the raw utilities rank unit 0 lowest (0.0099 < 0.297), the corrected ones unit 1:
    # 0.0099 / (1 - 0.99^2) = 0.497 > 0.297 / (1 - 0.99^100) = 0.468
    replaced = cbp.step({"hidden.0": torch.zeros(3, 2)})
    assert replaced["hidden.0"].tolist() == [1]
    assert cbp.age["hidden.0"].tolist() == [2, 0] and cbp.utility["hidden.0"][1] == 0
    assert torch.equal(model.head.weight[:, 1], torch.zeros(10))


def test_cbp_counts_only_mature_units_so_no_burst_at_maturity():
    model = tiny_mlp(depth=1, width=4)
    cbp = ContinualBackprop(model, replacement_rate=0.1, maturity_threshold=3)
    h = {"hidden.0": torch.rand(5, 4)}
    for _ in range(3):
        assert cbp.step(h)["hidden.0"].numel() == 0
    assert cbp.to_replace["hidden.0"].item() == 0  # nothing owed for immature steps
    assert cbp.step(h)["hidden.0"].numel() == 0
    assert_close(cbp.to_replace["hidden.0"].item(), 0.4)  # 0.1 x 4 mature units, once
    assert cbp.step(h)["hidden.0"].numel() == 0  # 0.8 owed
    assert cbp.step(h)["hidden.0"].numel() == 1  # 1.2 owed: one unit replaced, 0.2 carried
    assert_close(cbp.to_replace["hidden.0"].item(), 0.2)


def test_cbp_zeroes_the_optimizer_state_and_resets_batchnorm_of_replaced_units():
    model = tiny_resnet().train()
    x, y = images(size=8)
    optimizer = adam_step(model, x, y)
    cbp = ContinualBackprop(model, replacement_rate=0.5, maturity_threshold=0,
                            generator=torch.Generator().manual_seed(0))
    with record_activations(model) as acts:
        model(x)
    replaced = cbp.step(acts, optimizer)
    layer = unit_layers(model)[0]
    [unit] = replaced[layer.name].tolist()  # 0.5 x 2 units: exactly one
    assert torch.equal(layer.outgoing.weight[:, unit], torch.zeros_like(layer.outgoing.weight[:, unit]))
    for p, dim in ((layer.incoming.weight, 0), (layer.outgoing.weight, 1), (layer.norm.weight, 0)):
        for key in ("exp_avg", "exp_avg_sq"):
            assert optimizer.state[p][key].select(dim, unit).abs().sum() == 0
            assert optimizer.state[p][key].select(dim, 1 - unit).abs().sum() > 0
    assert layer.norm.running_var[unit] == 1 and layer.norm.running_mean[unit] == 0


def test_cbp_state_round_trips_through_a_plain_dict_of_tensors():
    model = tiny_mlp()
    cbp = ContinualBackprop(model, 0.3, 1, generator=torch.Generator().manual_seed(0))
    train_steps(model, 3, cbp)
    state = cbp.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    other = ContinualBackprop(model, 0.3, 1, generator=torch.Generator())
    other.load_state_dict(state)
    assert all(torch.equal(state[k], v) for k, v in other.state_dict().items())
    with pytest.raises(ValueError):
        ContinualBackprop(tiny_mlp(depth=1), 0.3, 1).load_state_dict(state)


def authors_gnt_bound(in_features, hidden_activation="relu"):
    """shibhansh/loss-of-plasticity, lop/algos/gnt.py:74-75 (init='kaiming', the default), for one layer."""
    return torch.nn.init.calculate_gain(nonlinearity=hidden_activation) * sqrt(3 / in_features)


def test_continual_backprop_draws_fresh_weights_as_gnt_py():
    """gnt.py:193-195: torch.empty(n, in_features).uniform_(-bound, bound); fan-in 100: std sqrt(2/100) = 0.141."""
    layer = nn.Linear(100, 7)
    ours = fresh_incoming_weights(layer, 5, torch.Generator().manual_seed(0), "kaiming")
    bound = authors_gnt_bound(layer.in_features)
    theirs = torch.empty(5, layer.in_features).uniform_(-bound, bound, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours, theirs)
    conv = nn.Conv2d(16, 8, 3)  # fan-in 16 * 3 * 3 = 144, as gnt.py's in_features for a conv kernel
    many = fresh_incoming_weights(conv, 4000, torch.Generator().manual_seed(1), "kaiming")
    assert many.abs().max() <= authors_gnt_bound(144) and abs(many.std().item() - sqrt(2 / 144)) < 0.002
    default = fresh_incoming_weights(layer, 4000, torch.Generator().manual_seed(1))  # the layer's own init
    assert abs(default.std().item() - 1 / sqrt(300)) < 0.002 and abs(bound / sqrt(3) / (1 / sqrt(300)) - 2.449) < 1e-3
    with pytest.raises(ValueError, match="init"):
        fresh_incoming_weights(layer, 1, None, "xavier")


class AuthorsGnT:
    """shibhansh/loss-of-plasticity lop/algos/gnt.py (63c35f3), `test_features` (lines 122-179, accumulate=True,
    util_type 'contribution') and `gen_new_features` (181-204) for one hidden layer of net = [Linear, ReLU,
    Linear], in their order (`gen_and_test`, 235-236)."""

    def __init__(self, net, decay_rate, replacement_rate, maturity_threshold):
        self.net, self.decay_rate, self.replacement_rate = net, decay_rate, replacement_rate
        self.maturity_threshold = maturity_threshold
        out = net[0].out_features
        self.util, self.ages, self.mean_feature_act = torch.zeros(out), torch.zeros(out), torch.zeros(out)
        self.bias_corrected_util, self.accumulated = torch.zeros(out), 0.0
        self.bound = torch.nn.init.calculate_gain(nonlinearity="relu") * sqrt(3 / net[0].in_features)

    @torch.no_grad()
    def gen_and_test(self, features):
        self.ages += 1  # test_features
        self.util *= self.decay_rate
        bias_correction = 1 - self.decay_rate ** self.ages
        self.mean_feature_act *= self.decay_rate
        self.mean_feature_act -= - (1 - self.decay_rate) * features.mean(dim=0)
        output_wight_mag = self.net[2].weight.data.abs().mean(dim=0)
        self.util += (1 - self.decay_rate) * output_wight_mag * features.abs().mean(dim=0)
        self.bias_corrected_util = self.util / bias_correction
        eligible = torch.where(self.ages > self.maturity_threshold)[0]
        self.accumulated += self.replacement_rate * eligible.shape[0]
        count = int(self.accumulated)
        self.accumulated -= count
        if count == 0:
            return eligible[:0]
        replace = eligible[torch.topk(-self.bias_corrected_util[eligible], count)[1]]
        self.util[replace] = 0
        self.mean_feature_act[replace] = 0.  # line 174: before gen_new_features reads it
        current_layer, next_layer = self.net[0], self.net[2]  # gen_new_features
        current_layer.weight.data[replace, :] *= 0.0
        current_layer.weight.data[replace, :] += torch.empty(count, current_layer.in_features).uniform_(
            -self.bound, self.bound)
        current_layer.bias.data[replace] *= 0
        next_layer.bias.data += (next_layer.weight.data[:, replace] * self.mean_feature_act[replace]
                                 / (1 - self.decay_rate ** self.ages[replace])).sum(dim=1)
        next_layer.weight.data[:, replace] = 0
        self.ages[replace] = 0
        return replace


def test_gnt_py_writes_a_bias_correction_that_adds_nothing_and_ours_has_none():
    """cbp.py's module doc: gnt.py's correction of the next layer's bias (lines 197-202) reads the replaced unit's
    mean activation after line 174 zeroed it, so the next bias is as it was; so is ours."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    theirs = AuthorsGnT(net, decay_rate=0.9, replacement_rate=0.5, maturity_threshold=1)
    model = tiny_mlp(depth=1, width=4)
    ours = ContinualBackprop(model, replacement_rate=0.5, maturity_threshold=1)
    their_bias, our_bias = net[2].bias.clone(), model.head.bias.clone()
    replaced = []
    for step in range(4):
        features = torch.relu(net[0](torch.randn(5, 6) + 1.0))  # positive mean activations
        replaced.append(theirs.gen_and_test(features))
        ours.step({"hidden.0": torch.relu(torch.randn(5, 4) + 1.0)})
    assert sum(r.numel() for r in replaced) > 0 and torch.equal(net[2].bias, their_bias)
    assert torch.equal(model.head.bias, our_bias)


def test_continual_backprop_replaces_with_the_fresh_init_it_was_given():
    torch.manual_seed(0)
    model = tiny_resnet()
    cbp = ContinualBackprop(model, replacement_rate=1.0, maturity_threshold=0,
                            generator=torch.Generator().manual_seed(0))
    layer = cbp.layers[0]
    with record_activations(model) as recorded:
        model(images(4, size=8)[0])
    replaced = cbp.step({k: v.float() for k, v in recorded.items()})[layer.name]
    assert replaced.numel() > 0
    expected = fresh_incoming_weights(layer.incoming, replaced.numel(), torch.Generator().manual_seed(0), "kaiming")
    assert torch.equal(layer.incoming.weight[replaced], expected)
