"""Each plasticity metric on a constructed case whose answer is known."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb.measures.curvature import weight_norm
from plasticity_nb.measures.plasticity_metrics import (
    active_fraction,
    dohare_dormant_fraction,
    dormant_fraction,
    effective_rank,
    feature_norm,
    feature_variance,
    gradient_norms,
    mean_weight_magnitude,
    parameter_distance,
    penultimate_features,
    prediction_churn,
    srank,
    zero_gradient_share,
)
from plasticity_nb.nets.models import MLP, ResNet

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def with_spectrum(singular_values, rows=12, cols=9, seed=0):
    """A rows x cols matrix with exactly these singular values (random orthonormal bases)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(rows, rows, generator=g, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(cols, cols, generator=g, dtype=torch.float64))[0]
    k = len(singular_values)
    return u[:, :k] @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ v[:, :k].T


def test_dormant_fraction_pools_units_over_layers():
    scores = {"a": torch.tensor([0.05, 1.0, 1.95]), "b": torch.tensor([0.1, 1.9])}
    assert dormant_fraction(scores, tau=0.1) == 2 / 5  # score <= tau counts
    assert dormant_fraction(scores, tau=0.0) == 0


def test_dohare_dormant_fraction_is_the_share_of_units_active_on_under_one_percent():
    h = torch.zeros(200, 3)
    h[0, 1] = 1.0  # unit 1: active on 0.5 % of inputs, dormant
    h[:3, 2] = 2.0  # unit 2: active on 1.5 %, not dormant; unit 0 never active
    conv = torch.zeros(10, 2, 2, 5)  # 100 (example, position) pairs per channel
    conv[0, 0, 0, 0] = 1.0  # channel 0: 1 % of them, not dormant (strictly fewer than 1 % is)
    assert dohare_dormant_fraction({"h": h}) == 2 / 3
    assert dohare_dormant_fraction({"h": h, "c": conv}) == 3 / 5


def test_effective_rank_of_equal_singular_values_is_the_rank():
    assert effective_rank(with_spectrum([2.0, 2.0, 2.0])) == pytest.approx(3.0, rel=1e-9)
    assert 1.0 < effective_rank(with_spectrum([5.0, 1.0, 1.0])) < 3.0
    assert effective_rank(with_spectrum([1.0])) == pytest.approx(1.0)


def test_srank_counts_singular_values_up_to_99_percent_of_their_sum():
    features = with_spectrum([50.0, 30.0, 15.0, 4.5, 0.3, 0.2])  # cumulative: .50 .80 .95 .995 .998 1
    assert srank(features) == 4
    assert srank(features, delta=0.1) == 3
    assert srank(with_spectrum([1.0] * 5)) == 5


def test_weight_norm_magnitude_and_distance_on_a_hand_case():
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, -4.0]]))
        layer.bias.zero_()
    assert weight_norm(layer) == pytest.approx(5.0)
    assert mean_weight_magnitude(layer) == pytest.approx(7 / 3)
    origin = {name: torch.zeros_like(p) for name, p in layer.named_parameters()}
    assert parameter_distance(layer, origin) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        parameter_distance(layer, {"weight": origin["weight"]})


def test_penultimate_features_are_the_heads_input_and_leave_bn_statistics():
    torch.manual_seed(0)
    mlp = MLP(depth=2, width=4)
    x = torch.randn(5, 3, 32, 32)
    expected = F.relu(mlp.hidden[1](F.relu(mlp.hidden[0](x.flatten(1)))))
    assert torch.allclose(penultimate_features(mlp, x), expected)
    resnet = ResNet(depth=1, width=2).train()
    before = {n: b.clone() for n, b in resnet.named_buffers()}
    features = penultimate_features(resnet, torch.randn(5, 3, 8, 8))
    assert features.shape == (5, 16)
    assert all(torch.equal(before[n], b) for n, b in resnet.named_buffers())


def test_gradient_norms_are_those_of_the_mean_loss_over_each_named_set():
    torch.manual_seed(0)
    model = MLP(depth=1, width=3)
    g = torch.Generator().manual_seed(1)
    sets = {name: [(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)) for n in (4, 2)]
            for name in ("pretraining", "new")}
    norms = gradient_norms(model, sets)
    for name, batches in sets.items():
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
        assert norms[name] == pytest.approx(math.sqrt(sum(g.pow(2).sum().item() for g in grads)), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


# --- which layers the dormant fractions count ---------------------------------------------------------------

def resnet18_probe(seed=0):
    from plasticity_nb.measures.activations import probe_activations
    from plasticity_nb.nets.units import dohare_sites, redo_sites

    torch.manual_seed(seed)
    model = ResNet(depth=2, width=4)
    x = torch.randn(6, 3, 16, 16)
    return model, x, probe_activations(model, x, dohare_sites(model)), probe_activations(
        model, x, redo_sites(model))


def test_dohare_counts_the_stem_each_first_conv_each_block_output_but_the_last_and_the_pooled_features():
    """lop/nets/torchvision_modified_resnet.py's feature list: stem (221), per block relu(bn1(conv1)) (96) and
    the block output (107), the last block output popped (228), the pooled features appended (233): 17 layers."""
    model, x, dohare, _ = resnet18_probe()
    blocks = [f"stage{s}.{b}" for s in range(1, 5) for b in range(2)]
    expected = ["stem", *[name for block in blocks for name in (f"{block}.conv1", f"{block}.out")][:-1], "pooled"]
    assert list(dohare) == expected and len(expected) == 17
    assert torch.equal(dohare["pooled"], penultimate_features(model, x))
    assert torch.allclose(dohare["stem"], model.stem(x))
    assert all((h >= 0).all() for h in dohare.values())  # every one of them after a ReLU
    _, _, _, redo = resnet18_probe()
    assert list(redo) == ["stem", *[f"{block}.{part}" for block in blocks for part in ("conv1", "out")]]


def authors_dohare_proportion(features_per_layer, dormant_unit_threshold=0.01):
    """shibhansh/loss-of-plasticity lop/incremental_cifar/post_run_analysis.py:127-131 (commit 63c35f3c)."""
    dead_neurons = torch.zeros(len(features_per_layer), dtype=torch.float32)
    for layer_idx in range(len(features_per_layer) - 1):
        dead_neurons[layer_idx] = ((features_per_layer[layer_idx] != 0).float().mean(dim=(0, 2, 3)) < dormant_unit_threshold).sum()  # noqa: E501 (verbatim)
    dead_neurons[-1] = ((features_per_layer[-1] != 0).float().mean(dim=0) < dormant_unit_threshold).sum()
    number_of_features = torch.sum(torch.tensor([layer_feats.shape[1] for layer_feats in features_per_layer])).item()
    return dead_neurons.sum().item() / number_of_features


def authors_redo_fraction(activations, tau):
    """google/dopamine labs/redo/weight_recyclers.py:303-326 (score, channels last) and 261-301 (the count over
    every recorded layer), in torch: mean |a| over all but the unit axis, normalised by its layer mean + 1e-9."""
    dead = total = 0
    for a in activations:
        a = a.movedim(1, -1)
        score = a.abs().mean(dim=tuple(range(a.ndim - 1)))
        score = score / (score.mean() + 1e-9)
        dead, total = dead + int((score <= tau).sum()), total + score.numel()
    return dead / total


@pytest.mark.parametrize("kill", [0, 1, 3])
def test_both_dormant_fractions_equal_the_authors_over_their_layers(kill):
    from plasticity_nb.measures.plasticity_metrics import dormant_scores

    model, x, dohare, redo = resnet18_probe()
    for h in (dohare, redo):  # silence some channels, so that the counts are not all zero
        for name in list(h)[:kill]:
            h[name][:, : h[name].shape[1] // 2] = 0
    assert dohare_dormant_fraction(dohare, 0.01) == authors_dohare_proportion(list(dohare.values()), 0.01)
    assert dormant_fraction(dormant_scores(redo), 0.1) == authors_redo_fraction(list(redo.values()), 0.1)
    if kill:
        assert dohare_dormant_fraction(dohare, 0.01) > 0 and dormant_fraction(dormant_scores(redo), 0.1) > 0


def test_the_metrics_hook_reads_every_count_from_one_probe_pass_and_matches_separate_passes():
    from plasticity_nb.measures.activations import probe_activations
    from plasticity_nb.measures.metric_settings import METRIC_DEFINITIONS, MetricSettings
    from plasticity_nb.measures.plasticity_metrics import dormant_scores
    from plasticity_nb.nets.units import dohare_sites, redo_sites, unit_sites
    from plasticity_nb.training.metrics_hook import Metrics, PredictionReference

    model, x, _, _ = resnet18_probe()
    calls = []
    model.register_forward_pre_hook(lambda module, inputs: calls.append(len(inputs[0])))
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    reference = PredictionReference()
    hook = Metrics(MetricSettings(), (x, torch.zeros(len(x), dtype=torch.long)), {}, initial, reference)
    measured = hook.measure(model)
    assert calls == [len(x)]
    assert list(measured) == list(METRIC_DEFINITIONS)  # every column named with the definition it follows
    assert math.isnan(measured["churn"]) and torch.equal(reference.predictions, model(x).argmax(1))
    separate = {name: probe_activations(model, x, sites(model))
                for name, sites in (("redo", redo_sites), ("dohare", dohare_sites), ("units", unit_sites))}
    s = MetricSettings()
    assert measured["dormant_redo"] == dormant_fraction(dormant_scores(separate["redo"]), s.tau)
    assert measured["dormant_dohare"] == dohare_dormant_fraction(separate["dohare"], s.active_share)
    assert measured["dormant_redo_units"] == dormant_fraction(dormant_scores(separate["units"]), s.tau)
    assert measured["effective_rank"] == effective_rank(separate["dohare"]["pooled"])
    assert measured["active_units"] == active_fraction(separate["dohare"]["pooled"])
    before = reference.predictions
    with torch.no_grad():
        model.head.bias[3] += 100.0  # every prediction becomes class 3
    assert hook.measure(model)["churn"] == (before != 3).double().mean().item() > 0
    assert (reference.predictions == 3).all()


def test_a_site_name_defined_two_ways_is_refused():
    from plasticity_nb.nets.units import OUTPUT, RELU_OF_OUTPUT, ActivationSite, site_union

    stem = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="'stem' is defined two ways"):
        site_union([[ActivationSite("stem", stem, OUTPUT)], [ActivationSite("stem", stem, RELU_OF_OUTPUT)]])


def test_the_field_metrics_on_constructed_cases():
    features = torch.tensor([[0.0, 3.0, 4.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    assert active_fraction(features) == 3 / 8  # pooled over entries, as Plasticine
    assert feature_norm(features) == (5.0 + 2.0) / 2  # mean per-input L2 norm
    assert math.isclose(feature_variance(features), (features[0].var().item() + features[1].var().item()) / 2)
    assert zero_gradient_share([torch.tensor([0.0, 1.0]), torch.zeros(2, 3)]) == 7 / 8
    assert math.isnan(prediction_churn(None, torch.tensor([1, 2])))
    assert prediction_churn(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5


def test_a_dead_unit_has_exactly_zero_gradients_on_its_incoming_weights():
    mlp = MLP(depth=1, width=4)
    with torch.no_grad():
        mlp.hidden[0].weight[2] = 0.0
        mlp.hidden[0].bias[2] = -1.0  # unit 2 never fires
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    grads = torch.autograd.grad(F.cross_entropy(mlp(x), y), list(mlp.parameters()))
    zero = int((grads[0][2] == 0).sum()) + 1 + 10  # its incoming row, its bias, its outgoing column
    assert zero_gradient_share(grads) == zero / sum(g.numel() for g in grads)
