"""FIRE (issue 41) against a port of its authors' function on toy nets, as a remedy of a run; and the protocol it is
run with, a phase's learning-rate warm-up and gradient-norm clipping, against FIRE's schedule and torch's
clip_grad_norm_. Runs resume bit-identically; settings off train exactly as before."""
import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.nets.models import build_model
from plasticity_nb.remedies.dash import Dash
from plasticity_nb.remedies.fire import Fire, FireHook, fire_, fire_parameters
from plasticity_nb.remedies.shrink_perturb import ShrinkPerturb
from plasticity_nb.run.remedy import ACTING_ORDER
from plasticity_nb.run.run_state import RunState
from plasticity_nb.training.build import init_model
from plasticity_nb.training.ensemble import clip_members_, train_ensemble
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import SingleLearner, train_run
from tests.helpers import DETERMINISTIC, assert_resumes_bit_identically, tiny_run
from tests.test_ensemble import ACC_ATOL, LOSS_RTOL, TEST_LOSS_RTOL

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


# --- their function: isaac7778/FIRE at c37a0ac, vision/interventions/fire.py:5-47, verbatim ---------------------

@torch.no_grad()
def fire(model, iteration, is_vit=False):
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            param = m.weight

            if is_vit:
                m_type = name.split(".")[-1]
                if m_type not in ["to_q", "to_k"]:  # only perform on mlp for q and k
                    continue

            weight_matrix = param.data.detach().clone()
            if weight_matrix.ndim == 4:
                ortho_weight_matrix = torch.zeros_like(weight_matrix)
                for i in range(weight_matrix.shape[2]):
                    for j in range(weight_matrix.shape[3]):
                        ortho_weight_matrix[:, :, i, j] = newton_schulz(weight_matrix[:, :, i, j], num_iters=iteration)
            else:
                ortho_weight_matrix = newton_schulz(weight_matrix, num_iters=iteration)

            # scale = sqrt(d_out/d_in) / kernel_size
            kernel_size = weight_matrix.shape[2] * weight_matrix.shape[3] if weight_matrix.ndim == 4 else 1.0
            scale = np.sqrt(weight_matrix.shape[0] / weight_matrix.shape[1]) / kernel_size
            ortho_weight_matrix *= scale
            param.data = ortho_weight_matrix


def newton_schulz(matrix, num_iters=10):
    a, b = (1.5, -0.5)
    assert matrix.ndim == 2
    do_transpose = matrix.size(1) > matrix.size(0)

    X = matrix
    if do_transpose:
        X = X.T

    X = X / X.norm()
    for _ in range(num_iters):
        A = X.T @ X
        X = a * X + b * X @ A

    if do_transpose:
        X = X.T
    return X


# --- FIRE's maths ----------------------------------------------------------------------------------------------

TOY_NETS = {  # the ResNet's stem is tall (3 -> 8), its 1x1 shortcuts too, its head and the MLP's first layer wide
    "resnet": lambda: build_model("resnet", 1, 8),
    "resnet_channels_last": lambda: build_model("resnet", 1, 8).to(memory_format=torch.channels_last),
    "mlp": lambda: build_model("mlp", 2, 32),
}


def toy(name, seed=0):
    torch.manual_seed(seed)
    return TOY_NETS[name]()


def untouched(model):
    """Everything FIRE leaves: biases, BatchNorm's parameters and every buffer."""
    weights = set(fire_parameters(model))
    return {k: v for k, v in model.state_dict().items() if k not in weights}


@pytest.mark.parametrize("net", list(TOY_NETS))
@pytest.mark.parametrize("iterations", [10, 3])
def test_fire_is_the_authors_function_bit_for_bit_biases_and_batchnorm_untouched(net, iterations):
    """Ours does their operations in their order on the same slices, so the floats are equal, not just close."""
    before, ours, theirs = toy(net), toy(net), toy(net)
    fire_(ours, iterations)
    fire(theirs, iterations)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert ours_state.keys() == theirs_state.keys()
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in ours_state)
    kept = untouched(before)
    assert kept and all(torch.equal(ours_state[k], v) for k, v in kept.items())
    assert any(".bias" in k for k in kept) and any("running_var" in k for k in kept) == net.startswith("resnet")
    names = fire_parameters(before)
    assert any("shortcut" in n for n in names) == net.startswith("resnet") and "head.weight" in names
    assert all(not torch.equal(ours_state[n], before.state_dict()[n]) for n in names)
    if net == "resnet_channels_last":  # in place: the parameter keeps its tensor and memory format
        assert ours.stem[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_zero_iterations_leave_each_tap_normalised_and_scaled():
    """FIRE without Newton-Schulz steps is its iteration-free formula, W_tap / ||W_tap||_F sqrt(out/in) / (kh kw),
    not the identity (a setting of 0 is allowed, as in their code)."""
    before, ours, theirs = toy("resnet"), toy("resnet"), toy("resnet")
    fire_(ours, 0)
    fire(theirs, 0)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    for name, module in before.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight.detach()
            taps = w.reshape(*w.shape[:2], -1)
            formula = taps / taps.norm(dim=(0, 1)) * math.sqrt(w.shape[0] / w.shape[1]) / taps.shape[2]
            # the same value; the norm's sum may run in another order (their norm is over the tap or its transpose)
            torch.testing.assert_close(ours.get_submodule(name).weight.detach().reshape(taps.shape), formula,
                                       rtol=1e-6, atol=0)


def test_fire_acts_at_the_phase_start_after_shrink_perturb_and_dash():
    order = list(ACTING_ORDER)
    assert order.index("shrink_perturb") < order.index("dash") < order.index("fire") < order.index("l2_init")
    assert Phase(remedies=(Fire(), Dash(), ShrinkPerturb())).remedy_names == ("shrink_perturb", "dash", "fire")
    assert Fire() == Fire(iterations=10) and Fire.PLACEMENT == "tuning start"


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match="iterations"):
        Fire(iterations=-1)
    with pytest.raises(ConfigError, match="from the second phase on"):
        tiny_run(phases=(Phase(pool="half", remedies=(Fire(),)), Phase(pool="full")))
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="lr_warmup"):
            Phase(lr_warmup=bad)
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="clip_grad_norm"):
            Phase(clip_grad_norm=bad)


# --- FIRE in a run --------------------------------------------------------------------------------------------

def test_fire_acts_once_at_the_start_of_every_phase_after_the_first_as_their_function(cifar, monkeypatch):
    """Before each later phase's first step (a new optimiser, no state yet), on the weights the phase before left,
    exactly as their function would; never in the first phase."""
    calls = []
    original = FireHook.on_phase_start

    def recorded(self, model, optimizer, phase):
        before = copy.deepcopy(model)
        original(self, model, optimizer, phase)
        fire(before, self.settings.iterations)
        calls.append((phase, len(optimizer.state), all(torch.equal(a, b) for a, b in
                                                       zip(model.state_dict().values(), before.state_dict().values()))))

    monkeypatch.setattr(FireHook, "on_phase_start", recorded)
    config = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=1, remedies=(Fire(),)),
                              Phase(pool="full", epochs=1, lr=5e-4, remedies=(Fire(iterations=5),))))
    outcome = train_run(config, cifar)
    assert calls == [(config.phases[1], 0, True), (config.phases[2], 0, True)]
    plain = train_run(tiny_run(phases=tuple(p.replace(remedies=()) for p in config.phases)), cifar)
    rows, plain_rows = pd.DataFrame(outcome.history), pd.DataFrame(plain.history)
    first = rows.phase == 1
    pd.testing.assert_frame_equal(rows[first][DETERMINISTIC], plain_rows[plain_rows.phase == 1][DETERMINISTIC])
    assert not rows[rows.phase == 2].train_loss.equals(plain_rows[plain_rows.phase == 2].train_loss)


def test_a_fire_run_warmed_up_and_clipped_resumes_mid_warm_up_bit_identically(cifar, tmp_path):
    """FIRE's protocol on a tiny run: FIRE at the tuning start, a warm-up over its 3 epochs (checkpoints after the
    first and second are mid-warm-up), clipping that bites; every checkpoint and the stored prefix continue exactly."""
    tune = Phase(pool="full", epochs=3, lr=3e-3, lr_warmup=1.0, clip_grad_norm=0.5, remedies=(Fire(),))
    config = tiny_run(phases=(Phase(pool="half", epochs=1, clip_grad_norm=0.5), tune))
    whole, saved = assert_resumes_bit_identically(config, cifar, tmp_path)
    assert [s.epoch for s in saved if s.phase_index == 1] == [1, 2]
    assert pd.DataFrame(whole.history).lr.tolist() == pytest.approx([1e-3, 1e-3, 2e-3, 3e-3])


# --- the warm-up --------------------------------------------------------------------------------------------------

def authors_learning_rates(target_lr=1e-3, n_epochs=100, n_chunks=2, warm_start_subset_ratio=10):
    """Each chunk's per-epoch learning rates as FIRE's warm start sets them: isaac7778/FIRE vision/train.py
    lines 132-134 and 146-224 (the logging counters of 211, 282-283 and 311 included: they drive the schedule), with
    n_epochs 100 (get_task, lines 84 and 99) and the first chunk's log_every from line 153; the training left out."""
    initial_lr = 0.0
    warmup_rate = 0.1
    global_epoch = 0
    global_step = 0
    chunks = []
    for i_iter in range(n_chunks):
        if i_iter == 0:  # cfg.benchmark == 'warm_start'
            log_every = 100 // warm_start_subset_ratio
        else:
            log_every = 1  # cfg.log_every
        real_epochs = n_epochs * log_every
        rates = []
        for epoch in range(real_epochs):
            do_logging = global_epoch % log_every == 0
            ls = global_step % n_epochs
            we = n_epochs * warmup_rate
            remain = (epoch + 1) / n_epochs - int((epoch + 1) / n_epochs)
            if ls < we:
                current_lr = initial_lr + (target_lr - initial_lr) * remain * (10 // log_every)
            else:
                current_lr = target_lr
            rates.append(current_lr)
            if do_logging:
                global_step += 1
            global_epoch += 1
        chunks.append(rates)
    return chunks


def test_the_warm_up_is_fires_schedule_per_epoch():
    """Their later chunks: lr/10, 2 lr/10, ..., lr from the 10th of 100 epochs, to float rounding (they multiply by
    10 after dividing by the epochs; ours divides by 0.1 x epochs once). Their first chunk's 1,000 epochs (on a tenth
    of the data) ramp over the first 100 too, but their counter counts logged epochs and wraps at 100: the ramp stops
    at 0.91 lr after 91 epochs, and restarts for the last 9, the very last at lr 0. Ours ramps to lr and stays."""
    first, second = authors_learning_rates()
    ours = Phase(epochs=100, lr=1e-3, lr_warmup=0.1)
    assert [ours.epoch_lr(e) for e in range(100)] == pytest.approx(second, rel=1e-15, abs=0)
    assert second[:3] == pytest.approx([1e-4, 2e-4, 3e-4]) and set(second[9:]) == {1e-3}
    long = Phase(epochs=1000, lr=1e-3, lr_warmup=0.1)
    expected = [long.epoch_lr(e) for e in range(1000)]
    assert expected[:91] == pytest.approx(first[:91], rel=1e-15, abs=0) and set(expected[99:]) == {1e-3}
    assert first[90] == pytest.approx(0.91e-3) and set(first[91:991]) == {1e-3} and expected[91] < 1e-3
    assert first[991:999] == pytest.approx([0.92e-3 + i * 1e-5 for i in range(8)]) and first[999] == 0
    assert Phase(lr=1e-3).epoch_lr(0) == 1e-3 and Phase(epochs=15, lr_warmup=0.1).epoch_lr(1) == Phase().lr


def test_every_step_of_an_epoch_takes_the_epochs_warm_up_rate(cifar, monkeypatch):
    rates = []
    original = SingleLearner.step

    def recorded(self, batch, hooks=()):
        rates.append((self.phase, self.optimizer.param_groups[0]["lr"]))
        return original(self, batch, hooks)

    monkeypatch.setattr(SingleLearner, "step", recorded)
    config = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=4, lr=2e-3, lr_warmup=0.5)))
    rows = pd.DataFrame(train_run(config, cifar).history)
    tune = [lr for phase, lr in rates if phase == config.phases[1]]
    steps = 256 // 32  # the full pool's steps per epoch
    assert tune == [1e-3] * steps + [2e-3] * 3 * steps  # W = 2 epochs: lr / 2, then lr
    assert [lr for phase, lr in rates if phase == config.phases[0]] == [1e-3] * (steps // 2)
    assert rows.lr.tolist() == [1e-3, 1e-3, 2e-3, 2e-3, 2e-3]


# --- clipping -----------------------------------------------------------------------------------------------------

def learner(config, data):
    runtime = Runtime.for_config(config, "cpu")
    model = init_model(config, runtime)
    return SingleLearner(model, config, RunState([], [], 0, 0, 0), RunTensors(config, data, runtime), runtime)


def test_clipping_is_torchs_clip_grad_norm_applied_by_hand_before_each_update(cifar):
    """The loop's step with clip_grad_norm, against the plain step's backward, clip_grad_norm_ over all parameters
    and the update by hand; and the step a CUDA graph captures (run eagerly here) clips the same way."""
    clipped = tiny_run(phases=(Phase(pool="full", epochs=1, lr=1e-2, clip_grad_norm=0.5),), width=8)
    ours, by_hand, captured = learner(clipped, cifar), learner(clipped.replace(phases=(Phase(pool="full", lr=1e-2),)),
                                                                cifar), learner(clipped, cifar)
    batches, _ = ours.epoch_batches(0)
    norms = []
    for batch in batches:
        x, y = by_hand.tensors.train_x[batch], by_hand.tensors.train_y[batch]
        loss, right = ours.step(batch)
        by_hand.backward(x, y, (), record=True)
        norms.append(torch.nn.utils.clip_grad_norm_(by_hand.model.parameters(), 0.5).item())
        by_hand.optimizer.step()
        graph_loss, graph_right = captured.train_step(x, y)
        assert torch.equal(loss, graph_loss) and torch.equal(right, graph_right)
        for a, b, c in zip(ours.model.parameters(), by_hand.model.parameters(), captured.model.parameters()):
            assert torch.equal(a, b) and torch.equal(a, c)
    assert max(norms) > 0.5  # it bit


def test_each_ensemble_member_is_clipped_by_its_own_norm():
    torch.manual_seed(0)
    members = [[torch.randn(3, 4, requires_grad=True), torch.randn(5, requires_grad=True)] for _ in range(3)]
    for i, params in enumerate(members):
        for p in params:
            p.grad = torch.randn_like(p) * (i + 0.2)  # the first member's norm stays under the bound
    stacked = [torch.stack([m[k].detach() for m in members]).requires_grad_() for k in range(2)]
    for k, s in enumerate(stacked):
        s.grad = torch.stack([m[k].grad for m in members])
    clip_members_(stacked, 2.0)
    for i, params in enumerate(members):
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        for k, p in enumerate(params):
            torch.testing.assert_close(stacked[k].grad[i], p.grad, rtol=1e-6, atol=0)  # the order of the sums
    assert torch.equal(stacked[0].grad[0], members[0][0].grad)


def test_an_ensemble_warms_up_and_clips_each_member_as_when_trained_alone(cifar):
    phases = (Phase(pool="half", epochs=1, clip_grad_norm=0.5),
              Phase(pool="full", epochs=2, lr=3e-3, lr_warmup=1.0, clip_grad_norm=0.5))
    configs = [tiny_run(seed=s, phases=phases) for s in (0, 1)]
    for config, member in zip(configs, train_ensemble(configs, cifar)):
        alone, joint = pd.DataFrame(train_run(config, cifar).history), pd.DataFrame(member.history)
        assert joint.lr.tolist() == alone.lr.tolist() == [1e-3, 1.5e-3, 3e-3]
        assert joint.train_loss.values == pytest.approx(alone.train_loss.values, rel=LOSS_RTOL)
        assert joint.test_loss.values == pytest.approx(alone.test_loss.values, rel=TEST_LOSS_RTOL)
        assert joint.train_acc.values == pytest.approx(alone.train_acc.values, abs=ACC_ATOL)


# --- off ----------------------------------------------------------------------------------------------------------

def test_off_keeps_keys_and_identity_settings_train_exactly_as_before(cifar):
    """Unset, the fields are not in a phase's key; a warm-up of at most one epoch (its first epoch at lr) and a bound
    no gradient reaches (each scaled by exactly 1.0) run the new code and train bit for bit as the plain run."""
    plain = tiny_run()
    assert "lr_warmup" not in Phase().identity() and "clip_grad_norm" not in Phase().identity()
    assert plain.key() == tiny_run(phases=tuple(p.replace(lr_warmup=None, clip_grad_norm=None)
                                                for p in plain.phases)).key()
    identity = tiny_run(phases=tuple(p.replace(lr_warmup=1.0, clip_grad_norm=1e30) for p in plain.phases))
    assert identity.key() != plain.key()
    want, got = train_run(plain, cifar), train_run(identity, cifar)
    pd.testing.assert_frame_equal(pd.DataFrame(got.history).drop(columns="seconds"),
                                  pd.DataFrame(want.history).drop(columns="seconds"))
    assert all(torch.equal(got.state[k], want.state[k]) for k in want.state)
