"""Muon as the tuning phase's optimiser (issue 41: a baseline of FIRE's) against FIRE's copy of Keller Jordan's
optimiser, bit for bit, and against torch's own Muon; in runs, which resume bit-identically mid warm-up."""
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.nets.models import build_model
from plasticity_nb.remedies.muon import Muon, MuonWithAuxAdam, muon_parameters, zeropower_via_newtonschulz5
from plasticity_nb.run.remedy import ACTING_ORDER
from plasticity_nb.training.train import SingleLearner, train_run
from tests.helpers import DETERMINISTIC, assert_resumes_bit_identically, history_frame, tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def toy(name, seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", 2, 16) if name == "mlp" else build_model("resnet", 1, 4)


def images(name, generator, n):
    side = 32 if name == "mlp" else 8
    return torch.randn(n, 3, side, side, generator=generator), torch.randint(0, 10, (n,), generator=generator)


# === Muon =========================================================================================================
# --- their optimiser: isaac7778/FIRE at c37a0ac, vision/interventions/muon.py:5-41, 130-135, 228-286, verbatim
# (= KellerJordan/Muon muon.py at 857d1ad but for whitespace) ------------------------------------------------------

def their_zeropower_via_newtonschulz5(G, steps: int):
    assert G.ndim >= 2
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def their_muon_update(grad, momentum, beta=0.95, ns_steps=5, nesterov=True):
    momentum.lerp_(grad, 1 - beta)
    update = grad.lerp_(momentum, beta) if nesterov else momentum
    if update.ndim == 4:
        update = update.view(len(update), -1)
    update = their_zeropower_via_newtonschulz5(update, steps=ns_steps)
    update *= max(1, grad.size(-2) / grad.size(-1))**0.5
    return update


def their_adam_update(grad, buf1, buf2, step, betas, eps):
    buf1.lerp_(grad, 1 - betas[0])
    buf2.lerp_(grad.square(), 1 - betas[1])
    buf1c = buf1 / (1 - betas[0]**step)
    buf2c = buf2 / (1 - betas[1]**step)
    return buf1c / (buf2c.sqrt() + eps)


class SingleDeviceMuonWithAuxAdam(torch.optim.Optimizer):
    def __init__(self, param_groups):
        for group in param_groups:
            assert "use_muon" in group
            if group["use_muon"]:
                group["lr"] = group.get("lr", 0.02)
                group["momentum"] = group.get("momentum", 0.95)
                group["weight_decay"] = group.get("weight_decay", 0)
                assert set(group.keys()) == set(["params", "lr", "momentum", "weight_decay", "use_muon"])
            else:
                group["lr"] = group.get("lr", 3e-4)
                group["betas"] = group.get("betas", (0.9, 0.95))
                group["eps"] = group.get("eps", 1e-10)
                group["weight_decay"] = group.get("weight_decay", 0)
                assert set(group.keys()) == set(["params", "lr", "betas", "eps", "weight_decay", "use_muon"])
        super().__init__(param_groups, dict())

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    state = self.state[p]
                    if len(state) == 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    update = their_muon_update(p.grad, state["momentum_buffer"], beta=group["momentum"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update.reshape(p.shape), alpha=-group["lr"])
            else:
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    state = self.state[p]
                    if len(state) == 0:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        state["step"] = 0
                    state["step"] += 1
                    update = their_adam_update(p.grad, state["exp_avg"], state["exp_avg_sq"],
                                               state["step"], group["betas"], group["eps"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"])
        return loss


def their_groups(model, lr):
    """FIRE vision/train.py:27-58 for their RESNET18 (filters of the backbone to Muon) and VGG16 (the backbone's weights
    of ndim >= 2), on ours: the backbone is everything but the head."""
    head = {id(p) for p in model.head.parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head]
    if isinstance(model, nn.Module) and hasattr(model, "stem"):  # RESNET18
        muon_params = [p for p in backbone if len(p.shape) == 4 and p.requires_grad]
    else:  # VGG16 / TinyViT
        muon_params = [p for p in backbone if p.ndim >= 2 and p.requires_grad]
    hidden_gains_biases = [p for p in backbone if p.ndim < 2 and p.requires_grad]
    head_params = list(model.head.parameters())
    adam_lr_ratio = 0.1
    return [dict(params=muon_params, use_muon=True, lr=lr / adam_lr_ratio),
            dict(params=hidden_gains_biases + head_params, use_muon=False, lr=lr, betas=(0.9, 0.95))]


@pytest.mark.parametrize("name", ["resnet", "mlp"])
def test_our_muon_steps_as_fires_optimiser_bit_for_bit(name):
    """Their class with their groups and rates against the optimiser our remedy builds, 4 steps on the same batches:
    weights (and so every update, bfloat16 Newton-Schulz included) and state equal bit for bit."""
    ours, theirs = toy(name), toy(name)
    opt = Muon().optimizer(ours, Phase(lr=1e-3))
    their_opt = SingleDeviceMuonWithAuxAdam(their_groups(theirs, 1e-3))
    assert [len(g["params"]) for g in opt.param_groups] == [len(g["params"]) for g in their_opt.param_groups]
    assert opt.param_groups[0]["lr"] == their_opt.param_groups[0]["lr"] == 1e-3 / 0.1
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x, y = images(name, g, 16)
        for model, optimizer in ((ours, opt), (theirs, their_opt)):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), key
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert opt.state[p].keys() == their_opt.state[q].keys()
        assert all(torch.equal(v, their_opt.state[q][k]) if torch.is_tensor(v) else v == their_opt.state[q][k]
                   for k, v in opt.state[p].items())


def test_the_split_is_fires_conv_filters_and_hidden_weights_to_muon_the_rest_to_adam():
    resnet, mlp = toy("resnet"), toy("mlp")
    muon, adam = muon_parameters(resnet)
    assert {p.ndim for p in muon} == {4} and len(muon) == sum(isinstance(m, nn.Conv2d) for m in resnet.modules())
    assert [id(p) for p in adam if p.ndim > 1] == [id(resnet.head.weight)]  # BatchNorm, the head's bias and weight
    assert len(muon) + len(adam) == len(list(resnet.parameters()))
    muon, adam = muon_parameters(mlp)
    assert [id(p) for p in muon] == [id(layer.weight) for layer in mlp.hidden]
    assert [id(p) for p in adam] == [*(id(layer.bias) for layer in mlp.hidden), id(mlp.head.weight), id(mlp.head.bias)]


def test_torch_muon_is_the_same_algorithm_with_other_roundings_and_2d_only():
    """torch 2.14's Muon (weight decay 0, `adjust_lr_fn="original"`) against ours on 2-D weights, one step from the
    same gradient: not bit-equal (fused addmm, its rate scaled in float32 rather than the bfloat16 update, a clamped
    rather than shifted norm), within 5 % of ours, and as far from the exact polar factor as ours (Keller's
    coefficients stop short of it by design). It refuses conv filters."""
    torch.manual_seed(0)
    for shape in ((16, 3072), (32, 32), (64, 16)):
        grad = torch.randn(shape)
        ours, theirs = nn.Parameter(torch.zeros(shape)), nn.Parameter(torch.zeros(shape))
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        MuonWithAuxAdam([dict(params=[ours], use_muon=True, lr=1.0)]).step()
        torch.optim.Muon([theirs], lr=1.0, weight_decay=0.0, adjust_lr_fn="original").step()
        assert not torch.equal(ours, theirs)
        assert ((ours - theirs).norm() / ours.norm()).item() < 0.05
        u, _, v = torch.linalg.svd(grad.double(), full_matrices=False)  # the first update is along the gradient
        polar = -(u @ v).float() * max(1, shape[0] / shape[1]) ** 0.5
        assert abs(((ours - polar).norm() - (theirs - polar).norm()) / polar.norm()).item() < 0.02
    with pytest.raises(ValueError, match="2D"):
        torch.optim.Muon([nn.Parameter(torch.zeros(4, 3, 3, 3))])
    assert torch.equal(zeropower_via_newtonschulz5(grad, 5), their_zeropower_via_newtonschulz5(grad, 5))


# --- Muon in a run -------------------------------------------------------------------------------------------------

def test_muon_is_the_tuning_phases_optimiser_only_and_warms_up_each_group_to_its_own_rate(cifar, monkeypatch):
    seen = []
    original = SingleLearner.step

    def recorded(self, batch, hooks=()):
        seen.append((type(self.optimizer).__name__, [g["lr"] for g in self.optimizer.param_groups]))
        return original(self, batch, hooks)

    monkeypatch.setattr(SingleLearner, "step", recorded)
    config = tiny_run(phases=(Phase(pool="half", epochs=1),
                              Phase(pool="full", epochs=2, lr=2e-3, lr_warmup=1.0, remedies=(Muon(),))))
    outcome = train_run(config, cifar)
    assert seen[:4] == [("Adam", [1e-3])] * 4
    assert seen[4:] == [("MuonWithAuxAdam", [1e-3 / 0.1, 1e-3])] * 8 + [("MuonWithAuxAdam", [2e-3 / 0.1, 2e-3])] * 8
    plain = train_run(tiny_run(phases=(config.phases[0], config.phases[1].replace(remedies=()))), cifar)
    rows, plain_rows = history_frame(outcome), history_frame(plain)
    first = DETERMINISTIC
    pd.testing.assert_frame_equal(rows[rows.phase == 1][first], plain_rows[plain_rows.phase == 1][first])
    assert not rows[rows.phase == 2].train_loss.equals(plain_rows[plain_rows.phase == 2].train_loss)


def test_a_muon_run_resumes_mid_warm_up_and_continues_its_prefix_bit_identically(cifar, tmp_path):
    tune = Phase(pool="full", epochs=3, lr=3e-3, lr_warmup=1.0, clip_grad_norm=0.5, remedies=(Muon(),))
    config = tiny_run(phases=(Phase(pool="half", epochs=1), tune))
    whole, saved = assert_resumes_bit_identically(config, cifar, tmp_path)
    assert [s.epoch for s in saved if s.phase_index == 1] == [1, 2]
    assert any("momentum_buffer" in v for s in saved if s.optimizer for v in s.optimizer["state"].values())


def test_muon_bad_settings_are_refused_by_name():
    for field, bad in (("adam_lr_ratio", 0), ("momentum", 1.0), ("ns_steps", -1), ("adam_beta1", 1.0),
                       ("adam_beta2", -0.1), ("adam_eps", 0)):
        with pytest.raises(ConfigError, match=field):
            Muon(**{field: bad})
    with pytest.raises(ConfigError, match="tuning phase only"):
        tiny_run(phases=(Phase(pool="half", remedies=(Muon(),)), Phase(pool="full")))
    with pytest.raises(ConfigError, match="leave it at 'adam'"):
        tiny_run(phases=(Phase(pool="half"), Phase(pool="full", optimizer="sgd", remedies=(Muon(),))))
    with pytest.raises(ConfigError, match="weight_decay"):
        tiny_run(phases=(Phase(pool="half"), Phase(pool="full", remedies=(Muon(),))), weight_decay=1e-4)
    assert ACTING_ORDER[0] == "muon" and Muon.PLACEMENT == "tuning start"
