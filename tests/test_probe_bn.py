"""Probes measure the function the optimiser trains: BatchNorm statistics re-estimated on the probe set."""
import copy

import torch

from plasticity_nb.measures.curvature import ProbeSet
from plasticity_nb.measures.probe_settings import ProbeSettings
from plasticity_nb.measures.probes import measure, with_probe_statistics
from plasticity_nb.nets.models import build_model
from plasticity_nb.studies import two_phases


def fresh_resnet_and_probes(depth: int = 2, width: int = 8, examples: int = 128):
    torch.manual_seed(0)
    model = build_model("resnet", depth, width)
    x, y = torch.randn(examples, 3, 32, 32), torch.randint(0, 10, (examples,))
    return model, ProbeSet.from_tensors(x, y, 64), x


@torch.no_grad()
def logit_std(model, x, train: bool) -> float:
    return copy.deepcopy(model).train(train)(x).std().item()


def test_a_fresh_networks_probe_is_no_longer_the_near_constant_eval_mode_artefact():
    model, probes, x = fresh_resnet_and_probes()
    trained_function = logit_std(model, x, train=True)
    default_statistics = logit_std(model, x, train=False)
    assert default_statistics < 0.3 * trained_function  # mean 0 / variance 1 running stats: nearly constant output
    reestimated = logit_std(with_probe_statistics(model, probes), x, train=False)
    assert 0.7 * trained_function < reestimated < 1.3 * trained_function


def test_reestimation_leaves_the_callers_model_alone():
    model, probes, _ = fresh_resnet_and_probes()
    before = copy.deepcopy(model.state_dict())
    with_probe_statistics(model, probes)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_measure_records_the_statistics_and_the_probe_loss():
    model, probes, _ = fresh_resnet_and_probes(depth=1, width=4, examples=32)
    settings = dict(examples=32, eigen_iterations=2, trace_samples=1)
    running = measure(model, probes, ProbeSettings(**settings), seed=0)
    probe = measure(model, probes, ProbeSettings(**settings, bn_statistics="probe"), seed=0)
    assert (running["bn_statistics"], probe["bn_statistics"]) == ("running", "probe")
    assert probe["noise_scale"] != running["noise_scale"] and probe["probe_loss"] > 0


def test_runs_probed_the_old_way_are_not_reused_for_the_new_claims():
    new = two_phases.Config.from_preset("quick")
    old = new.replace(probe_bn_statistics="running")
    assert new.settings().bn_statistics == "probe"
    assert not {c.key() for _, c in new.plan()} & {c.key() for _, c in old.plan() if c.probes is not None}
    assert ProbeSettings().key() == ProbeSettings(bn_statistics="running").key()  # the old default keeps its keys
