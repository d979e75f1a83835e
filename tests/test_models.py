import pytest
import torch

from plasticity_nb.nets.models import MLP, ResNet, build_model, count_parameters, reinitialise_groups, resnet18


def test_resnet18_has_the_papers_parameter_count():
    assert count_parameters(resnet18()) == 11_173_962


@pytest.mark.parametrize("depth,width", [(1, 1), (1, 4), (3, 5), (2, 16)])
def test_any_depth_and_width_maps_images_to_ten_logits(depth, width):
    net = ResNet(depth, width)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert all(len(stage) == depth for stage in (net.stage1, net.stage2, net.stage3, net.stage4))
    assert net.stage4[0].conv1.out_channels == 8 * width


def test_mlp_shapes():
    net = build_model("mlp", 2, 100)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert count_parameters(net) == 3072 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10


def test_six_named_groups_partition_the_resnet():
    net = resnet18(8)
    groups = net.module_groups()
    assert list(groups) == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    grouped = [id(p) for g in groups.values() for p in g.parameters()]
    assert sorted(grouped) == sorted(id(p) for p in net.parameters())


@pytest.mark.parametrize("model", [ResNet(1, 4), MLP(2, 8)])
def test_bad_sizes_are_rejected(model):
    with pytest.raises(ValueError, match="depth >= 1 and width >= 1"):
        type(model)(0, 4)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", 2, 4)


def test_reinitialise_changes_chosen_groups_and_keeps_the_rest_bit_identical():
    torch.manual_seed(0)
    net = resnet18(4)
    net(torch.randn(8, 3, 32, 32))  # a train-mode pass moves BatchNorm running statistics off their defaults
    before = {k: v.clone() for k, v in net.state_dict().items()}
    reinitialise_groups(net, [4, 5, 6], generator_seed=1)
    groups = list(net.module_groups().values())
    for number, group in enumerate(groups, start=1):
        prefix = list(net.module_groups())[number - 1] + "."
        for name, value in group.state_dict().items():
            if number < 4:
                assert torch.equal(value, before[prefix + name]), f"{prefix + name} should stay bit-identical"
            elif value.dim() > 1:  # conv and linear weights: a fresh draw
                assert not torch.equal(value, before[prefix + name]), f"{prefix + name} should change"
        if number >= 4:
            for bn in (m for m in group.modules() if isinstance(m, torch.nn.BatchNorm2d)):
                assert torch.all(bn.running_mean == 0) and torch.all(bn.running_var == 1) and torch.all(bn.weight == 1)


def test_reinitialise_is_seeded_and_range_checked():
    a, b = resnet18(4), resnet18(4)
    reinitialise_groups(a, [6], 3)
    reinitialise_groups(b, [6], 3)
    assert torch.equal(a.head.weight, b.head.weight)
    with pytest.raises(ValueError, match=r"group\(s\) \[7\] out of range"):
        reinitialise_groups(a, [7], 0)
