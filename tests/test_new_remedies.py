"""The remedies of 2024 (issue 23): each one's maths against a port of its authors' function on a toy network,
identities where the maths says so, and runs that resume bit-identically."""
import copy
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.measures.metric_settings import MetricSettings
from plasticity_nb.nets.models import MLP, ResNet, build_model
from plasticity_nb.remedies.hare_tortoise import SHARED, HareTortoise, Tortoise
from plasticity_nb.remedies.parseval import Parseval, hidden_weights, parseval_penalty
from plasticity_nb.remedies.sam import SAM, SAMHook
from plasticity_nb.remedies.soft_shrink_perturb import SoftShrinkPerturb, redraw_, soft_shrink_perturb_
from plasticity_nb.remedies.weight_clipping import WeightClipping, clip_weights_
from plasticity_nb.run.remedy import Budget, Remedy, register
from plasticity_nb.training.build import evaluate, init_model
from plasticity_nb.training.layout import tuned_runtime
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.train import started_as, train_run
from tests.helpers import assert_resumes_bit_identically, tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py
DETERMINISTIC = ["phase", "epoch", "phase_epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"]


def toy_resnet(seed=0):
    torch.manual_seed(seed)
    return ResNet(depth=1, width=4).train()


def batch(seed=1, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, 3, 16, 16, generator=g), torch.randint(0, 10, (size,), generator=g)


# --- SAM: baekrok/DASH-Direction-Aware-SHrinking utils/SAM.py:15-59, main.py:123-133 --------------------------

class AuthorsSAM(torch.optim.Optimizer):
    """Their class, lines 4-59 (adaptive off, as they call it)."""

    def __init__(self, params, base_optimizer, rho=0.05, **kwargs):
        super().__init__(params, dict(rho=rho, adaptive=False, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = torch.norm(torch.stack([p.grad.norm(p=2) for g in self.param_groups for p in g["params"]
                                            if p.grad is not None]), p=2)
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                p.add_(1.0 * p.grad * scale.to(p))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()


def test_sam_steps_exactly_as_the_authors_class_batchnorm_statistics_moving_twice():
    ours, theirs = toy_resnet(), toy_resnet()
    x, y = batch()
    sam = AuthorsSAM(theirs.parameters(), torch.optim.Adam, rho=0.1, lr=1e-2)
    adam = torch.optim.Adam(ours.parameters(), lr=1e-2)
    for _ in range(3):
        sam.zero_grad()
        F.cross_entropy(theirs(x), y).backward()
        sam.first_step(zero_grad=True)
        F.cross_entropy(theirs(x), y).backward()
        sam.second_step(zero_grad=True)

        def backward_again():
            adam.zero_grad(set_to_none=True)
            F.cross_entropy(ours(x), y).backward()
        backward_again()
        SAMHook(SAM(rho=0.1)).refine_gradient(ours, adam, backward_again)
        adam.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
    assert ours.stem[1].num_batches_tracked.item() == 6  # two train-mode passes per step


# --- Hare & Tortoise: dojeon-ai/Hare-Tortoise src/trainers/base.py:151-157, 182-188 ---------------------------

def test_the_tortoise_is_the_authors_ema_of_parameters_and_buffers_and_the_reset_copies_it():
    hare, their_hare = toy_resnet(), toy_resnet()
    tortoise, their_tortoise = Tortoise(hare), copy.deepcopy(their_hare)
    x, y = batch()
    for model in (hare, their_hare):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if model is hare:
                tortoise.update(hare, 0.9)
            else:  # their lines 152-157
                for slow, fast in zip(their_tortoise.parameters(), their_hare.parameters()):
                    slow.data = 0.9 * slow.data + (1 - 0.9) * fast.data
                for slow, fast in zip(their_tortoise.buffers(), their_hare.buffers()):
                    if slow.is_floating_point():  # theirs turns num_batches_tracked into a float; ours follows the hare
                        slow.data = 0.9 * slow.data + (1 - 0.9) * fast.data
    theirs = their_tortoise.state_dict()
    for name, value in tortoise.values.items():
        assert not value.is_floating_point() or torch.equal(value, theirs[name]), name
    assert tortoise.values["stem.1.num_batches_tracked"].item() == 3
    tortoise.reset_hare(hare)
    assert all(torch.equal(hare.state_dict()[k], v) for k, v in tortoise.values.items())
    hare.stem[0].weight.data.add_(1.0)  # a copy, not shared storage (their `fast.data = slow.data` aliases them)
    assert not torch.equal(hare.stem[0].weight, tortoise.values["stem.0.weight"])


def their_hare_tortoise(hare, plan, beta):
    """Their trainer's steps (base.py), event by event: "task" builds a new AdamW (line 70), "step" is one step and
    the EMA (lines 141-157; gradients zeroed first, as ours are), "reset" their aliasing reset (182-188), "end" their
    end-of-task blend at its defaults (205-211). Yields (hare, tortoise) after each event."""
    tortoise, init = copy.deepcopy(hare), copy.deepcopy(hare)
    for i, event in enumerate(plan):
        if event == "task":
            opt = torch.optim.AdamW(hare.parameters(), lr=1e-2, weight_decay=1e-2)
        elif event == "step":
            opt.zero_grad()
            F.cross_entropy(hare(batch(seed=i)[0]), batch(seed=i)[1]).backward()
            opt.step()
            for slow, fast in zip(tortoise.parameters(), hare.parameters()):
                slow.data = (beta) * slow.data + (1 - beta) * fast.data
            for slow, fast in zip(tortoise.buffers(), hare.buffers()):
                slow.data = (beta) * slow.data + (1 - beta) * fast.data
        elif event == "reset":
            for slow, fast in zip(tortoise.parameters(), hare.parameters()):
                fast.data = slow.data
            for slow, fast in zip(tortoise.buffers(), hare.buffers()):
                fast.data = slow.data
        elif event == "end":
            for param, init_param in zip(hare.parameters(), init.parameters()):
                param.data = (1 - 0.0) * param.data + 0.0 * init_param.data
        yield hare, tortoise


def our_hare_tortoise(hare, plan, beta, shared):
    """The same events through our Tortoise, as HareTortoiseHook calls it (end_task at the next phase's start)."""
    tortoise = Tortoise(hare)
    for i, event in enumerate(plan):
        if event == "task":
            tortoise.end_task()
            opt = torch.optim.AdamW(hare.parameters(), lr=1e-2, weight_decay=1e-2)
        elif event == "step":
            opt.zero_grad()
            F.cross_entropy(hare(batch(seed=i)[0]), batch(seed=i)[1]).backward()
            opt.step()
            tortoise.update(hare, beta)
        elif event == "reset":
            tortoise.reset_hare(hare, shared=shared)
        yield hare, tortoise.values


# two tasks of two 2-step epochs, a reset after every epoch: the first task's last reset crosses into the second
PLAN = ("task", "step", "step", "reset", "step", "step", "reset", "end", "task", "step", "step", "reset", "step")


def floating_equal(ours, theirs):
    """Every floating entry of our state equals theirs (their EMA makes num_batches_tracked a float; ours counts)."""
    return all(torch.equal(v, theirs[k]) for k, v in ours.items() if v.is_floating_point())


def test_the_shared_reset_step_is_their_aliased_reset_bit_for_bit():
    beta = 0.9
    theirs = their_hare_tortoise(toy_resnet(), PLAN, beta)
    ours = our_hare_tortoise(toy_resnet(), PLAN, beta, shared=True)
    for event, (their_hare, their_tortoise), (hare, tortoise) in zip(PLAN, theirs, ours):
        assert floating_equal(hare.state_dict(), their_hare.state_dict()), event
        assert floating_equal(tortoise, their_tortoise.state_dict()), event
    # their aliasing, seen on their side: after a reset hare and tortoise are one tensor, until the EMA that follows
    # the next step makes the tortoise a new tensor at the stepped hare's values
    steps = their_hare_tortoise(toy_resnet(), ("task", "step", "reset", "step"), beta)
    *_, (hare, tortoise) = (next(steps) for _ in range(3))
    assert hare.stem[0].weight.data_ptr() == tortoise.stem[0].weight.data_ptr()
    hare, tortoise = next(steps)
    assert hare.stem[0].weight.data_ptr() != tortoise.stem[0].weight.data_ptr()
    assert torch.equal(tortoise.stem[0].weight, beta * hare.stem[0].weight + (1 - beta) * hare.stem[0].weight)


def test_the_default_reset_copies_so_the_tortoise_takes_a_share_of_the_next_step():
    beta, plan = 0.9, ("task", "step", "reset", "step")
    snapshot = lambda hare, tortoise: (copy.deepcopy(hare.state_dict()), copy.deepcopy(dict(tortoise)))
    theirs = [snapshot(h, t.state_dict()) for h, t in their_hare_tortoise(toy_resnet(), plan, beta)]
    ours = [snapshot(h, t) for h, t in our_hare_tortoise(toy_resnet(), plan, beta, shared=False)]
    assert floating_equal(ours[2][1], theirs[2][1])  # the same tortoise, into which the hare was reset
    assert floating_equal(ours[3][0], theirs[3][0])  # the same step of the hare
    reset, stepped = ours[2][1]["stem.0.weight"], ours[3][0]["stem.0.weight"]
    assert torch.equal(ours[3][1]["stem.0.weight"], beta * reset + (1 - beta) * stepped)  # a share of the step
    assert not torch.equal(ours[3][1]["stem.0.weight"], theirs[3][1]["stem.0.weight"])  # theirs took it whole


def test_what_a_shared_reset_leaves_shared_is_checkpointed_and_a_new_task_unshares_the_parameters():
    hare = toy_resnet()
    tortoise = Tortoise(hare)
    assert SHARED not in tortoise.state_dict()  # nothing shared: the state has its old entries only
    tortoise.reset_hare(hare, shared=True)
    state = tortoise.state_dict()
    again = Tortoise(toy_resnet(1))
    again.load_state_dict(state)
    assert again.shared == set(tortoise.values) and floating_equal(again.values, tortoise.values)
    tortoise.end_task()
    assert tortoise.shared == {name for name, _ in hare.named_buffers()}
    tortoise.update(hare, 0.9)
    assert not tortoise.shared and SHARED not in tortoise.state_dict()
    again.load_state_dict(tortoise.state_dict())
    assert not again.shared
    assert HareTortoise().key() == HareTortoise(shared_reset_step=False).key()  # the default keeps stored keys


def test_the_quick_budget_keeps_their_horizon_in_epochs():
    assert HareTortoise.for_budget(Budget(steps_per_epoch=195, task_steps=21645)).beta == pytest.approx(0.999)
    assert HareTortoise.for_budget(Budget(steps_per_epoch=39, task_steps=975)).beta == pytest.approx(0.995)


# --- weight clipping: mohmdelsayed/weight-clipping core/optim/weight_clipping.py:3-53 ------------------------

def authors_clip(model, zeta):
    """Their InitBounds.get and weight_clipping loop over the model's parameters in order."""
    previous = None
    for p in model.parameters():
        if p.dim() == 1:
            fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(previous)
        else:
            previous = p
            fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(p)
        bound = 1.0 / math.sqrt(fan_in)
        p.data.clamp_(-zeta * bound, zeta * bound)


def test_weight_clipping_clamps_as_their_code_batchnorm_by_the_preceding_weight():
    ours, theirs = toy_resnet(), toy_resnet()
    with torch.no_grad():
        for a, b in zip(ours.parameters(), theirs.parameters()):
            noise = torch.randn_like(a)
            a.mul_(3).add_(noise)
            b.mul_(3).add_(noise)
    share = clip_weights_(ours, zeta=1.0)
    authors_clip(theirs, zeta=1.0)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert 0 < share.item() < 1
    assert ours.stem[1].weight.abs().max() <= 1 / math.sqrt(3 * 9)  # gamma bounded by the stem conv's fan-in
    skipped = toy_resnet()
    gamma = skipped.stem[1].weight.detach().clone()
    clip_weights_(skipped, zeta=1.0, norm_parameters="skip")
    assert torch.equal(skipped.stem[1].weight, gamma)  # left at 1


# --- Parseval: wechu/parseval_reg parseval_reg/agent.py:278-319 ---------------------------------------------

def test_parseval_is_their_penalty_on_an_mlp_and_zero_at_scaled_orthogonal_rows():
    torch.manual_seed(0)
    mlp = MLP(depth=2, width=32)
    theirs = 0
    for layer in mlp.hidden:  # their 'linear_orthog_*' layers: every hidden layer, the output layer left out
        w = layer.weight
        theirs = theirs + torch.norm(torch.matmul(w, w.t()) - 2 * torch.eye(w.shape[0]), p="fro") ** 2
    theirs = 1e-3 * (64 / 32) ** 2 * theirs
    assert torch.allclose(parseval_penalty(mlp, 1e-3, 2.0), theirs, rtol=1e-5)
    with torch.no_grad():
        for layer in mlp.hidden:
            torch.nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
        mlp.head.weight.mul_(100)  # the output layer is not penalised
    assert parseval_penalty(mlp, 1e-3, 2.0).item() == pytest.approx(0, abs=1e-6)


def test_parseval_reads_a_conv_kernel_as_out_by_in_k_k_rows():
    model = toy_resnet()
    penalty = parseval_penalty(model, 1.0, 2.0)
    w = model.stem[0].weight.flatten(1)  # (4, 27)
    stem = (64 / 4) ** 2 * torch.linalg.matrix_norm(w @ w.t() - 2 * torch.eye(4)) ** 2
    assert penalty > stem > 0


def test_parseval_starts_far_from_s_at_the_packages_init_as_its_docstring_says():
    """parseval.py's module doc: rows' squared norm 1/3 at PyTorch's default init, not s = 2; at width 8 the
    penalty starts at 13.5 (lambda 1e-3), the diagonal alone giving 1e-3 * sum (64/rows)^2 rows (2 - 1/3)^2."""
    torch.manual_seed(0)
    model = build_model("resnet", 2, 8)
    weights = hidden_weights(model)
    assert torch.cat([(w * w).sum(1) for w in weights]).mean().item() == pytest.approx(1 / 3, abs=0.01)
    diagonal = 1e-3 * sum((64 / w.shape[0]) ** 2 * w.shape[0] * (2 - 1 / 3) ** 2 for w in weights)
    assert diagonal == pytest.approx(13.33, abs=0.01)
    assert parseval_penalty(model, 1e-3).item() == pytest.approx(13.5, abs=0.05)


# --- soft shrink-and-perturb: awjuliani/deep-rl-plasticity shared/modules.py:287-292 ------------------------

def test_soft_shrink_perturb_is_their_sp_module_with_a_seeded_fresh_network():
    ours, theirs = toy_resnet(), toy_resnet()
    fresh = redraw_(toy_resnet(5), seed=11)
    again = redraw_(toy_resnet(6), seed=11)
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), again.parameters()))  # the seed decides
    soft_shrink_perturb_(ours, fresh, 0.9, 0.1)
    for current, init in zip(theirs.parameters(), fresh.parameters()):  # their lines 287-292
        current.data *= 0.9
        current.data += 0.1 * init.data
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))


def test_the_quick_rule_keeps_their_shrink_per_task():
    quick = SoftShrinkPerturb.for_budget(Budget(steps_per_epoch=39, task_steps=975))
    assert quick.shrink ** 975 == pytest.approx(0.999999 ** 240_000)
    assert quick.shrink + quick.perturb == pytest.approx(1)
    assert SoftShrinkPerturb() == SoftShrinkPerturb(shrink=0.999999, perturb=1e-6)  # the class keeps theirs


# --- runs ----------------------------------------------------------------------------------------------------

def history(outcome):
    return pd.DataFrame(outcome.history).drop(columns="seconds")


def test_identity_settings_train_exactly_like_the_plain_warm_start(cifar):
    plain = history(train_run(tiny_run(), cifar))
    identities = (Parseval(coefficient=0.0), SoftShrinkPerturb(shrink=1.0, perturb=0.0),
                  WeightClipping(zeta=1e9), HareTortoise(beta=0.0))  # beta 0: the hare reset to itself
    config = tiny_run(phases=(Phase(pool="half", epochs=1, remedies=identities),
                              Phase(pool="full", epochs=1, remedies=identities)))
    pd.testing.assert_frame_equal(history(train_run(config, cifar))[DETERMINISTIC], plain[DETERMINISTIC])


def test_new_remedies_resume_and_continue_their_prefix_bit_identically(cifar, tmp_path):
    acting = (SAM(), SoftShrinkPerturb(shrink=0.99, perturb=0.01), WeightClipping(zeta=2.0),
              HareTortoise(beta=0.9, reset_every=2), Parseval())
    config = tiny_run(phases=(Phase(pool="half", epochs=2, remedies=acting), Phase(pool="full", epochs=3,
                                                                                  remedies=acting)),
                      metrics=MetricSettings(examples=64))
    whole, saved = assert_resumes_bit_identically(config, cifar, tmp_path)
    assert any("hare_tortoise.stem.0.weight" in s.remedies for s in saved)
    assert history(whole).clipped_share.gt(0).any()


def test_the_tortoise_is_tested_beside_the_hare_and_a_shared_reset_resumes_bit_identically(cifar, tmp_path):
    """Their test() logs the tortoise's accuracy beside the hare's (base.py:227-258): `tortoise_test_acc` is the
    test accuracy of the tortoise each checkpoint holds; the first phase's last epoch resets (epochs 1 and 3 of 3),
    so its shared buffers cross into the second phase, through checkpoints and a stored prefix."""
    acting = (HareTortoise(beta=0.9, reset_every=2, shared_reset_step=True),)
    config = tiny_run(phases=(Phase(pool="half", epochs=3, eval_every=2, remedies=acting),
                              Phase(pool="full", epochs=2, remedies=acting)))
    whole, saved = assert_resumes_bit_identically(config, cifar, tmp_path)
    rows = history(whole)
    assert rows.tortoise_test_acc.isna().tolist() == rows.test_acc.isna().tolist() == [True, False, False, False,
                                                                                         False]
    reset = rows.phase_epoch.isin([1, 3]) & rows.test_acc.notna()  # the hare was just reset to the tortoise
    assert rows.tortoise_test_acc[reset].tolist() == rows.test_acc[reset].tolist()
    for state in saved:
        runtime = tuned_runtime(config, "cpu", **started_as(state))
        tensors = RunTensors(config, cifar, runtime)
        slow = init_model(config, runtime)
        prefix = "hare_tortoise."
        slow.load_state_dict({k[len(prefix):]: v for k, v in state.remedies.items()
                              if k.startswith(prefix) and k != prefix + SHARED})
        expected = state.history[-1]["tortoise_test_acc"]
        if math.isfinite(expected):
            assert evaluate(slow, tensors.test_x, tensors.test_y, runtime)[1] == expected
    assert (prefix + SHARED) in saved[2].remedies  # the first phase's last reset, checkpointed while shared


def test_the_metrics_state_name_is_reserved():
    class Metrics(Remedy):
        NAME = "metrics"

    with pytest.raises(ConfigError, match="other than metrics"):
        register(Metrics)
