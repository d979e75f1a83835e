"""Self-Normalized Resets (issue 41: a baseline of FIRE's) against a numpy port of the official JAX code
(ajozefiak/SelfNormalizedResets, no JAX needed) on a toy MLP and ResNet, and against FIRE's PyTorch port where the two
agree; where FIRE's reset departs from the official one; SNR in runs, which resume bit-identically, and a threshold no
unit reaches, which trains as the plain warm start."""
import copy
import types

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.measures.activations import record_activations
from plasticity_nb.nets.models import build_model
from plasticity_nb.nets.units import OUTPUT, ActivationSite, unit_layers
from plasticity_nb.remedies import unit_reset
from plasticity_nb.remedies.snr import SNR, SelfNormalizedResets, SNRHook
from plasticity_nb.run.remedy import ACTING_ORDER
from plasticity_nb.training.train import train_run
from tests.helpers import DETERMINISTIC, assert_resumes_bit_identically, history_frame, tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


# === SNR ==========================================================================================================
# --- the official code: ajozefiak/SelfNormalizedResets at 8b84f0c, src/algorithms/snr.py, in numpy -----------------
# jnp -> np, lax.cond -> if, the LearnerState a dict (threshold, threshold_percentile, threshold_expansion_factor,
# params, opt_state), params_rand given (theirs: model.init(key, x)["params"]); otherwise their lines as they are.

def initialize_neuron_ages_hist(neuron_ages, tau_max):  # lines 12-19
    neuron_ages_hist = {}
    for layer in neuron_ages:
        num_neurons = neuron_ages[layer].shape[-1]
        neuron_ages_hist[layer] = np.zeros((num_neurons, tau_max + 1), dtype=int)
    return neuron_ages_hist


def reinitialize_tau_indiv(state, neuron_ages):  # lines 25-30
    threshold = state["threshold"]
    new_threshold = {}
    for layer in neuron_ages:
        new_threshold[layer] = threshold * np.ones(neuron_ages[layer].shape[-1], dtype=int)
    return {**state, "threshold": new_threshold}


def update_tau_(state, neuron_ages_hist):  # lines 47-90
    all_thresholds = state["threshold"]
    threshold_percentile = state["threshold_percentile"]
    threshold_expansion_factor = state["threshold_expansion_factor"]
    batch_size = 100
    new_threshold = {}
    for layer in all_thresholds:
        hist = neuron_ages_hist[layer]
        threshold = all_thresholds[layer]
        tau_max = hist.shape[1] - 1
        cdf = np.cumsum(hist[:, 1:], axis=1)
        with np.errstate(invalid="ignore"):  # 0/0 for a neuron with no entry, as in JAX (nan)
            cdf_normalized = cdf / np.sum(hist[:, 1:], axis=1, keepdims=True)
        threshold_percentile_index = np.argmax(cdf_normalized >= threshold_percentile, axis=1) + 1
        new_threshold_layer = np.where(threshold_percentile_index < threshold, threshold_percentile_index,
                                       threshold_expansion_factor * threshold)
        new_threshold[layer] = np.maximum(batch_size, np.minimum(new_threshold_layer, tau_max))
        neuron_ages_hist[layer] = np.zeros(hist.shape, dtype=int)
    return {**state, "threshold": new_threshold}, neuron_ages_hist


def increment_neuron_ages_snr_new(neurons, neuron_ages, neuron_ages_hist):  # lines 156-183
    for layer in neuron_ages:
        neuron_values = neurons['intermediates'][layer]['__call__'][0]
        batch_size = neuron_values.shape[0]
        all_axes_but_last = tuple(range(neuron_values.ndim - 1))
        negative_neurons = np.all(neuron_values <= 0, axis=all_axes_but_last)
        negative_neurons_batch_size = batch_size * negative_neurons
        row_mask = np.logical_not(negative_neurons)
        col_mask = np.where(row_mask, neuron_ages[layer], 0)[:, None]
        row_mask = row_mask[:, None]
        hist_len = neuron_ages_hist[layer].shape[1]
        indices = np.arange(hist_len)[None, :]
        temp_neuron_ages_hist = np.where(indices == col_mask, row_mask, 0)
        neuron_ages_hist[layer] = neuron_ages_hist[layer] + temp_neuron_ages_hist
        neuron_ages[layer] = ((neuron_ages[layer] * negative_neurons.astype(np.int32))
                              + negative_neurons_batch_size.astype(np.int32))
    return neuron_ages, neuron_ages_hist


def reset_neurons_snr_adam_(state, neuron_ages, neuron_ages_hist, params_rand):  # lines 270-333 (the MLP's)
    params = state["params"]
    all_thresholds = state["threshold"]
    opt_state = state["opt_state"]
    layers = []
    for layer in neuron_ages:
        layers.append(layer)
    for i in range(len(layers) - 1):
        layer = layers[i]
        next_layer = layers[i + 1]
        threshold = all_thresholds[layer]
        reset_mask = (neuron_ages[layer] >= threshold)
        row_mask = reset_mask
        col_mask = np.where(row_mask, neuron_ages[layer], 0)[:, None]
        row_mask = row_mask[:, None]
        hist_len = neuron_ages_hist[layer].shape[1]
        indices = np.arange(hist_len)[None, :]
        temp_neuron_ages_hist = np.where(indices == col_mask, row_mask, 0)
        neuron_ages_hist[layer] = neuron_ages_hist[layer] + temp_neuron_ages_hist
        neuron_ages[layer] = neuron_ages[layer] * (1 - reset_mask.astype(np.int32))
        reset_mask = reset_mask.flatten()
        params[layer]['bias'] = params[layer]['bias'] * (1 - reset_mask.astype(np.int32))
        opt_state[0].mu[layer]['bias'] = opt_state[0].mu[layer]['bias'] * (1 - reset_mask.astype(np.int32))
        opt_state[0].nu[layer]['bias'] = opt_state[0].nu[layer]['bias'] * (1 - reset_mask.astype(np.int32))
        params[layer]['kernel'] = ((params[layer]['kernel'] * (1 - reset_mask.astype(np.int32)))
                                   + (params_rand[layer]['kernel'] * reset_mask.astype(np.int32)))
        opt_state[0].mu[layer]['kernel'] = (opt_state[0].mu[layer]['kernel'] * (1 - reset_mask.astype(np.int32)))
        opt_state[0].nu[layer]['kernel'] = (opt_state[0].nu[layer]['kernel'] * (1 - reset_mask.astype(np.int32)))
        params[next_layer]['kernel'] = (1 - reset_mask.astype(np.int32))[:, None] * params[next_layer]['kernel']
        opt_state[0].mu[next_layer]['kernel'] = ((1 - reset_mask.astype(np.int32))[:, None]
                                                 * opt_state[0].mu[next_layer]['kernel'])
        opt_state[0].nu[next_layer]['kernel'] = ((1 - reset_mask.astype(np.int32))[:, None]
                                                 * opt_state[0].nu[next_layer]['kernel'])
    return {**state, "params": params, "opt_state": opt_state}, neuron_ages, neuron_ages_hist


def reset_neurons_snr_adam(state, neuron_ages, neuron_ages_hist, params_rand):  # lines 336-346
    all_thresholds = state["threshold"]
    layers = []
    reset = 0
    for layer in neuron_ages:
        layers.append(layer)
    for layer in layers[0:-1]:
        threshold = all_thresholds[layer]
        cond = np.max(neuron_ages[layer] >= threshold)
        reset = 1 if cond else reset
    if reset > 0:
        return reset_neurons_snr_adam_(state, neuron_ages, neuron_ages_hist, params_rand)
    return state, neuron_ages, neuron_ages_hist


def reset_conv_to_conv_snr_adam_(state, neuron_ages, neuron_ages_hist, params_rand, layer, next_layer):
    """Lines 570-615, their "Conv_0 to Conv_1" block of reset_neurons_snr_CNN_Adam_, for one pair of layers (a block's
    conv1 and conv2 here). Our conv1 has no bias, so their four bias lines (601-604) have nothing to act on."""
    params, all_thresholds, opt_state = state["params"], state["threshold"], state["opt_state"]
    threshold = all_thresholds[layer]
    reset_mask = (neuron_ages[layer] >= threshold)
    reset_mask_extended = reset_mask.reshape((1,) * (neuron_ages[layer].ndim - reset_mask.ndim) + reset_mask.shape)
    row_mask = reset_mask
    col_mask = np.where(row_mask, neuron_ages[layer], 0)[:, None]
    row_mask = row_mask[:, None]
    hist_len = neuron_ages_hist[layer].shape[1]
    indices = np.arange(hist_len)[None, :]
    temp_neuron_ages_hist = np.where(indices == col_mask, row_mask, 0)
    neuron_ages_hist[layer] = neuron_ages_hist[layer] + temp_neuron_ages_hist
    neuron_ages[layer] = neuron_ages[layer] * (1 - reset_mask_extended.astype(np.int32))
    params[layer]['kernel'] = ((params[layer]['kernel'] * (1 - reset_mask[None, None, None, :].astype(np.int32)))
                               + (params_rand[layer]['kernel'] * reset_mask[None, None, None, :].astype(np.int32)))
    opt_state[0].mu[layer]['kernel'] = (opt_state[0].mu[layer]['kernel']
                                        * (1 - reset_mask[None, None, None, :].astype(np.int32)))
    opt_state[0].nu[layer]['kernel'] = (opt_state[0].nu[layer]['kernel']
                                        * (1 - reset_mask[None, None, None, :].astype(np.int32)))
    params[next_layer]['kernel'] = (1 - reset_mask[None, None, :, None].astype(np.int32)) * params[next_layer]['kernel']
    opt_state[0].mu[next_layer]['kernel'] = ((1 - reset_mask[None, None, :, None].astype(np.int32))
                                             * opt_state[0].mu[next_layer]['kernel'])
    opt_state[0].nu[next_layer]['kernel'] = ((1 - reset_mask[None, None, :, None].astype(np.int32))
                                             * opt_state[0].nu[next_layer]['kernel'])
    return {**state, "params": params, "opt_state": opt_state}, neuron_ages, neuron_ages_hist


# --- FIRE's port: isaac7778/FIRE at c37a0ac, vision/interventions/node_reset/{reset_base,redo,snr}.py, verbatim ----
# (their typing imports and the DataLoader argument's type dropped; ReDO's class left out)

class ResetBase:  # reset_base.py:7-27
    def __init__(self, model, period):
        self._step = 0
        self.model = model
        self.period = period


@torch.no_grad()
def reset_dormant_neurons(model: nn.Module, masks: dict):  # redo.py:43-107
    layers = {name: module for name, module in model.named_modules()}
    _layers = []
    _masks = []
    for name, mask in masks.items():
        if name in layers.keys():
            _layers.append(layers[name])
            _masks.append(mask)
    masks = _masks[:-1]
    ingoing_layers = _layers[:-1]
    outgoing_layers = _layers[1:]
    assert len(ingoing_layers) == len(outgoing_layers) == len(masks)
    reset_indices = {}
    for layer, mask in zip(ingoing_layers, masks):
        if torch.all(~mask):
            continue
        elif isinstance(layer, nn.Linear) or isinstance(layer, nn.Conv2d):
            new_layer = copy.deepcopy(layer)
            new_layer.reset_parameters()
            layer.weight.data[mask, ...] = new_layer.weight.data[mask, ...]
            reset_indices[layer.weight] = (mask, ...)
            if layer.bias is not None:
                layer.bias.data[mask, ...] = new_layer.bias.data[mask, ...]
                reset_indices[layer.bias] = (mask, ...)
    for layer, next_layer, mask in zip(ingoing_layers, outgoing_layers, masks):
        if torch.all(~mask):
            continue
        elif isinstance(layer, nn.Conv2d) and isinstance(next_layer, nn.Linear):
            num_repeatition = next_layer.weight.data.shape[1] // mask.shape[0]
            if num_repeatition >= 1:
                linear_mask = torch.repeat_interleave(mask, num_repeatition)
            else:
                linear_mask = mask.reshape(next_layer.weight.data.shape[1], -1).any(dim=1)
            next_layer.weight.data[:, linear_mask].data.fill_(0)
            reset_indices[next_layer.weight] = (slice(None), linear_mask)
        elif ((isinstance(layer, nn.Conv2d) and isinstance(next_layer, nn.Conv2d)) or
              (isinstance(layer, nn.Linear) and isinstance(next_layer, nn.Linear))):
            if next_layer.weight.data.shape[1] == mask.shape[0]:
                next_layer.weight.data[:, mask, ...].data.fill_(0)
                reset_indices[next_layer.weight] = (slice(None), mask, ...)
            elif mask.shape[0] % next_layer.weight.data.shape[1] == 0:
                contracted_mask = mask.reshape(next_layer.weight.data.shape[1], -1).any(dim=1)
                next_layer.weight.data[:, contracted_mask, ...].data.fill_(0)
                reset_indices[next_layer.weight] = (slice(None), contracted_mask, ...)
        else:
            continue
    return reset_indices


@torch.no_grad()
def reset_opt_state(optimizer: torch.optim.Optimizer, reset_indices: dict):  # redo.py:110-125
    for param, indices in reset_indices.items():
        state = optimizer.state.get(param, {})
        for key in state.keys():
            if key in ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'):
                buf = state.get(key, None)
                if buf is None:
                    continue
                buf[indices].zero_()
            elif key == 'step':
                state['step'].zero_()
    return optimizer


class FireSNR(ResetBase):  # snr.py:10-164 (their class SNR)
    def __init__(self, model, period, threshold_reset_freq, threshold_percentile=0.9, threshold_expansion_factor=2.0,
                 tau_max=20000, n_analysis_samples=512, device=torch.device("cpu")):
        super().__init__(model, period)
        self.threshold_reset_freq = threshold_reset_freq
        self.threshold_percentile = threshold_percentile
        self.threshold_expansion_factor = threshold_expansion_factor
        self.tau_max = tau_max
        self.n_analysis_samples = n_analysis_samples
        self.device = device
        self.ages = {}
        self.hist = {}
        self.tau = {}
        self._layers = {}
        self.get_weight_layers()
        self._acts = {}
        self._hooks = []
        for name, layer in self._layers.items():
            self._hooks.append(layer.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name):
        def hook_fn(_, __, out):
            previous = self._acts.get(name, torch.empty(0, device=out.device))
            current = nn.functional.relu(out).detach()
            act = torch.cat([previous, current], dim=0)
            self._acts[name] = act[-self.n_analysis_samples:].detach()
        return hook_fn

    def apply(self, dataloader, optimizer):
        if self._step % self.period == 0:
            self._apply_fn(dataloader, optimizer)
        self._step += 1
        info = {}
        if self._step % self.threshold_reset_freq == 0:
            for k, v in self.tau.items():
                info[f'SNR_thresholds/{k}'] = v
        return info

    @torch.no_grad()
    def _apply_fn(self, dataloader, optimizer):
        layer_names = list(self._layers.keys())
        for name in layer_names:
            activation = self._acts[name]
            batch_size = activation.shape[0]
            if activation.ndim == 4:
                act = activation.permute(0, 2, 3, 1).reshape(-1, activation.shape[1])
            elif activation.ndim == 3:
                act = activation.reshape(-1, activation.shape[-1])
            else:
                act = activation
            num_neurons = act.shape[1]
            if name not in self.ages:
                self.ages[name] = torch.zeros(num_neurons, dtype=torch.long, device=self.device)
            if name not in self.hist:
                self.hist[name] = torch.zeros((num_neurons, self.tau_max + 1), dtype=torch.long, device=self.device)
            if name not in self.tau:
                self.tau[name] = torch.full((num_neurons,), max(1, self.tau_max // 2), dtype=torch.long,
                                            device=self.device)
            fire = (act > 0).any(dim=0)
            ages = self.ages[name]
            col_mask = torch.where(fire, ages.clamp_max(self.tau_max), 0).unsqueeze(1)
            row_mask = fire.unsqueeze(1).long()
            indices = torch.arange(self.tau_max + 1, device=self.device).unsqueeze(0)
            self.hist[name] += torch.where(indices == col_mask, row_mask, 0)
            self.ages[name] = torch.where(fire, 0, ages + batch_size)
        if self._step % self.threshold_reset_freq == 0:
            for name in layer_names:
                activation = self._acts[name]
                batch_size = activation.shape[0]
                hist = self.hist[name]
                threshold = self.tau[name]
                cdf = torch.cumsum(hist[:, 1:], dim=1)
                cdf_normalized = cdf / (torch.sum(hist[:, 1:], dim=1, keepdim=True) + 1e-8)
                threshold_percentile_index = torch.argmax((cdf_normalized >= self.threshold_percentile).long(),
                                                          dim=1) + 1
                new_threshold_layer = torch.where(
                    threshold_percentile_index < threshold,
                    threshold_percentile_index,
                    self.threshold_expansion_factor * threshold,
                )
                new_threshold = torch.maximum(
                    torch.full_like(new_threshold_layer, batch_size),
                    torch.minimum(new_threshold_layer, torch.full_like(new_threshold_layer, self.tau_max)),
                )
                self.tau[name].data.copy_(new_threshold)
                self.hist[name].zero_()
        masks = {}
        for name in layer_names:
            masks[name] = (self.ages[name] >= self.tau[name])
        for name in layer_names:
            ages = self.ages[name]
            col_mask = torch.where(masks[name], ages.clamp_max(self.tau_max), 0).unsqueeze(1)
            row_mask = masks[name].unsqueeze(1).long()
            indices = torch.arange(self.tau_max + 1, device=self.device).unsqueeze(0)
            self.hist[name] += torch.where(indices == col_mask, row_mask, 0)
        for name in layer_names:
            self.ages[name] *= (1 - masks[name].long())
        reset_indices = reset_dormant_neurons(self.model, masks)
        reset_opt_state(optimizer, reset_indices)

    def get_weight_layers(self):
        for name, m in self.model.named_modules():
            if 'shortcut' in name:
                continue
            elif isinstance(m, (nn.Linear, nn.Conv2d)):
                self._layers[name] = m


# --- the official maths ---------------------------------------------------------------------------------------------

B = 100  # a batch: their update_tau_'s literal lower bound on tau (`batch_size = 100`) is then ours, B


def toy(name, seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", 2, 16) if name == "mlp" else build_model("resnet", 1, 4)


def images(name, generator, n=B):
    side = 32 if name == "mlp" else 8
    return torch.randn(n, 3, side, side, generator=generator), torch.randint(0, 10, (n,), generator=generator)


def flax_kernel(weight):
    """A torch weight in Flax's layout: Dense (in, out), Conv (kh, kw, in, out)."""
    w = weight.detach()
    return (w.permute(2, 3, 1, 0) if w.ndim == 4 else w.T).numpy().copy()


def torch_weight(kernel, like):
    k = torch.from_numpy(np.asarray(kernel, dtype=np.float64)).float()
    return k.permute(3, 2, 0, 1) if like.ndim == 4 else k.T


def expanded(hist, batch_size, tau_max):
    """Our histogram (bin k: age k B) at their resolution (one bin per age 0..tau_max)."""
    full = torch.zeros(hist.shape[0], tau_max + 1, dtype=torch.long)
    full[:, ::batch_size] = hist[:, :tau_max // batch_size + 1].long()
    return full


class Draws:
    """Records our fresh incoming weights, per layer, as `reinitialise_units_` draws them."""

    def __init__(self, monkeypatch):
        self.rows = {}
        original = unit_reset.fresh_incoming_weights

        def recorded(layer, count, generator, init="default"):
            rows = original(layer, count, generator, init)
            self.rows[id(layer)] = rows.clone()
            return rows

        monkeypatch.setattr(unit_reset, "fresh_incoming_weights", recorded)


def kill_units(model, name):
    """Units that never fire: very negative biases (MLP) or BatchNorm shifts (ResNet) on some units of each layer."""
    with torch.no_grad():
        for layer in unit_layers(model):
            shifted = layer.incoming.bias if name == "mlp" else layer.norm.bias
            shifted[: max(1, layer.size // 4)] = -100.0


@pytest.mark.parametrize("name", ["mlp", "resnet"])
def test_snr_trains_as_the_official_code_on_a_toy_net(name, monkeypatch):
    """Twins trained with Adam on the same batches: ours (the package's SNR) and theirs, whose ages, histograms,
    thresholds and resets are their functions on their layouts (each step: ages on the step's activations, the
    update, the resets; thresholds after steps 3 and 7, as after a task). Weights, Adam moments, ages, histograms and
    thresholds equal after every step. Their reset's fresh weights are given ours (their RNG is JAX's), and on the
    ResNet the reset unit's BatchNorm entries, which theirs lack, are reset by hand as ours does."""
    draws = Draws(monkeypatch)
    ours, theirs = toy(name), toy(name)
    for model in (ours, theirs):
        kill_units(model, name)
    tau_max, initial = 1000, 300
    snr = SelfNormalizedResets(ours, percentile=0.9, expansion=2, tau_max=tau_max, initial_tau=initial,
                               generator=torch.Generator().manual_seed(3))
    snr.bind(B)
    layers, their_layers = unit_layers(ours), unit_layers(theirs)
    opt, their_opt = torch.optim.Adam(ours.parameters(), lr=1e-2), torch.optim.Adam(theirs.parameters(), lr=1e-2)
    # their neurons: each unit layer's pre-activation (and, for the MLP, the output layer, which they also age)
    sites = [ActivationSite(layer.name, layer.pre_activation, OUTPUT) for layer in their_layers]
    if name == "mlp":
        sites.append(ActivationSite("head", theirs.head, OUTPUT))
    ages = {site.name: np.zeros(site.module.weight.shape[0], dtype=int) for site in sites}
    hist = initialize_neuron_ages_hist(ages, tau_max)
    state = reinitialize_tau_indiv(dict(threshold=initial, threshold_percentile=0.9, threshold_expansion_factor=2),
                                   ages)
    g = torch.Generator().manual_seed(1)
    resets, taus = 0, set()
    for step in range(10):
        x, y = images(name, g)
        with record_activations(ours) as acts:
            loss = F.cross_entropy(ours(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        snr.observe(acts)
        due = snr.reset(opt)
        resets += sum(len(i) for i in due.values())

        with record_activations(theirs, sites) as pre:
            loss = F.cross_entropy(theirs(x), y)
        neurons = {"intermediates": {k: {"__call__": ((v.permute(0, 2, 3, 1) if v.ndim == 4 else v).numpy(),)}
                                     for k, v in pre.items()}}
        ages, hist = increment_neuron_ages_snr_new(neurons, ages, hist)
        their_opt.zero_grad()
        loss.backward()
        their_opt.step()
        state = their_reset(state, ages, hist, their_layers, their_opt, draws, layers, name, due)
        if step in (3, 7):
            snr.update_thresholds()
            state, hist = update_tau_(state, hist)

        for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), (step, key)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            for k in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(opt.state[p][k], their_opt.state[q][k]), (step, k)
        for layer in layers:
            assert snr.ages[layer.name].tolist() == ages[layer.name].tolist(), step
            assert torch.equal(expanded(snr.hist[layer.name], B, tau_max), torch.from_numpy(hist[layer.name]))
            assert snr.tau[layer.name].tolist() == state["threshold"][layer.name].astype(float).tolist()
            taus.update(snr.tau[layer.name].tolist())
    assert resets >= 8  # every killed unit came back
    assert taus == {300.0, 100.0, 600.0}  # the first; contracted to the floor B; a reset at 300 expanded x2


def their_reset(state, ages, hist, layers, opt, draws, our_layers, name, due):
    """Their reset on their twin: its weights and Adam moments in Flax's layout through their function, back in."""
    params, mu, nu = {}, {}, {}

    def put(key, tensors):
        params[key] = {k: flax_kernel(t) if k == "kernel" else t.detach().numpy().copy() for k, t in tensors.items()}
        mu[key] = {k: flax_kernel(opt.state[t]["exp_avg"]) if k == "kernel" else opt.state[t]["exp_avg"].numpy().copy()
                   for k, t in tensors.items()}
        nu[key] = {k: flax_kernel(opt.state[t]["exp_avg_sq"]) if k == "kernel"
                   else opt.state[t]["exp_avg_sq"].numpy().copy() for k, t in tensors.items()}

    rand = {}
    for layer, ours in zip(layers, our_layers):  # our draws where we reset, zeros elsewhere (masked out by theirs)
        kernel = np.zeros_like(flax_kernel(layer.incoming.weight))
        index = due[layer.name]
        if len(index):
            rows = draws.rows[id(ours.incoming)]
            kernel[..., index.numpy()] = flax_kernel(rows)
        rand[layer.name] = {"kernel": kernel}
    state = {**state, "opt_state": [types.SimpleNamespace(mu=mu, nu=nu)], "params": params}
    if name == "mlp":
        model_layers = [*(layer.incoming for layer in layers), layers[-1].outgoing]  # hidden.0, hidden.1, head
        for key, module in zip([*(layer.name for layer in layers), "head"], model_layers):
            put(key, {"kernel": module.weight, "bias": module.bias})
        state, ages, hist = reset_neurons_snr_adam(state, ages, hist, rand)
        written = dict(zip([*(layer.name for layer in layers), "head"], model_layers))
    else:
        written = {}
        for layer in layers:
            put(layer.name, {"kernel": layer.incoming.weight})
            put(layer.name + ">", {"kernel": layer.outgoing.weight})
            written[layer.name], written[layer.name + ">"] = layer.incoming, layer.outgoing
        for layer in layers:
            state, ages, hist = reset_conv_to_conv_snr_adam_(state, ages, hist, rand, layer.name, layer.name + ">")
        with torch.no_grad():  # what ours adds for BatchNorm, which their networks lack
            for layer in layers:
                index = due[layer.name]
                layer.norm.weight[index], layer.norm.bias[index] = 1, 0
                layer.norm.running_mean[index], layer.norm.running_var[index] = 0, 1
                for p in (layer.norm.weight, layer.norm.bias):
                    for k in ("exp_avg", "exp_avg_sq"):
                        opt.state[p][k][index] = 0
    with torch.no_grad():
        for key, module in written.items():
            module.weight.copy_(torch_weight(state["params"][key]["kernel"], module.weight))
            opt.state[module.weight]["exp_avg"].copy_(torch_weight(mu[key]["kernel"], module.weight))
            opt.state[module.weight]["exp_avg_sq"].copy_(torch_weight(nu[key]["kernel"], module.weight))
            if "bias" in state["params"][key]:
                module.bias.copy_(torch.from_numpy(state["params"][key]["bias"]).float())
                opt.state[module.bias]["exp_avg"].copy_(torch.from_numpy(mu[key]["bias"]).float())
                opt.state[module.bias]["exp_avg_sq"].copy_(torch.from_numpy(nu[key]["bias"]).float())
    return state


def synthetic(layers, g, batch=B, spatial=2):
    """Post-ReLU activations with unit-dependent firing rates: some units always, some never, most now and then."""
    acts = {}
    for layer in layers:
        n = layer.size
        shift = torch.linspace(1.8, 3.6, n)
        shift[0], shift[-1] = -100.0, 100.0
        shape = (batch, n) if isinstance(layer.incoming, nn.Linear) else (batch, n, spatial, spatial)
        z = torch.randn(shape, generator=g) - shift.view(1, n, *[1] * (len(shape) - 2))
        acts[layer.name] = F.relu(z)
    return acts


@pytest.mark.parametrize("name", ["mlp", "resnet"])
def test_ages_histograms_and_thresholds_are_the_official_codes_over_a_long_stream(name):
    """200 batches of synthetic activations (units from always to never firing, most with silences of a few batches):
    ages, histograms and thresholds equal theirs after every batch, thresholds moved every 10 batches."""
    model, g = toy(name), torch.Generator().manual_seed(0)
    layers = unit_layers(model)
    tau_max = 1000
    snr = SelfNormalizedResets(model, percentile=0.93, expansion=2, tau_max=tau_max, initial_tau=400)
    snr.bind(B)
    ages = {layer.name: np.zeros(layer.size, dtype=int) for layer in layers}
    hist = initialize_neuron_ages_hist(ages, tau_max)
    state = reinitialize_tau_indiv(dict(threshold=400, threshold_percentile=0.93, threshold_expansion_factor=2), ages)
    dummy = {layer.name: {"kernel": np.zeros((1, 1, 1, layer.size))} for layer in layers}
    seen = set()
    for step in range(200):
        acts = synthetic(layers, g)
        snr.observe(acts)
        snr.reset()
        neurons = {"intermediates": {k: {"__call__": ((v.permute(0, 2, 3, 1) if v.ndim == 4 else v).numpy(),)}
                                     for k, v in acts.items()}}
        ages, hist = increment_neuron_ages_snr_new(neurons, ages, hist)
        for layer in layers:  # their reset's ages and histogram (the parameters' part is the test above's)
            params = {layer.name: {"kernel": np.zeros((1, 1, 1, layer.size))},
                      "next": {"kernel": np.zeros((1, 1, 1, 1))}}
            opt_state = [types.SimpleNamespace(mu=copy.deepcopy(params), nu=copy.deepcopy(params))]
            _, ages, hist = reset_conv_to_conv_snr_adam_({**state, "params": params, "opt_state": opt_state}, ages,
                                                         hist, dummy, layer.name, "next")
        if step % 10 == 9:
            snr.update_thresholds()
            state, hist = update_tau_(state, hist)
        for layer in layers:
            assert snr.ages[layer.name].tolist() == ages[layer.name].tolist(), step
            assert torch.equal(expanded(snr.hist[layer.name], B, tau_max), torch.from_numpy(hist[layer.name])), step
            assert snr.tau[layer.name].tolist() == state["threshold"][layer.name].astype(float).tolist(), step
            seen.update(snr.tau[layer.name].tolist())
    assert len(seen) >= 5  # thresholds contracted to percentiles, expanded and capped


def test_fires_port_moves_ages_and_thresholds_as_ours_where_the_two_agree():
    """FIRE's class, its window one batch (n_analysis_samples = B: theirs keeps 512 rows, two of its batches) and
    tau_max a multiple of B (its clamp then never acts), fed the same activations as our hook with FIRE's schedule
    (`tau_update_unit="steps"`: thresholds every 5 steps, the first at SNR's first step, before the resets): ages,
    histograms and thresholds equal after every step, on the MLP, where its units are ours."""
    model, g = toy("mlp"), torch.Generator().manual_seed(0)
    layers = unit_layers(model)
    settings = SNR(percentile=0.93, tau_update_every=5, tau_update_unit="steps", tau_max=1000, initial_tau=500)
    state = SNR.run_state([settings], model, lambda tag: 0)
    state.bind(B)
    hook = SNRHook(settings, state)
    theirs = toy("mlp")
    fire = FireSNR(theirs, period=1, threshold_reset_freq=5, threshold_percentile=0.93, tau_max=1000,
                   n_analysis_samples=B)
    their_opt = torch.optim.Adam(theirs.parameters())
    head = torch.nn.Linear(16, 10)
    for step in range(120):
        acts = synthetic(layers, g)
        hook.recorded = acts
        hook.on_step(model, None, step + 1)
        fire._acts = {**acts, "head": F.relu(head(torch.randn(B, 16, generator=g)))}
        fire.apply(None, their_opt)
        for layer in layers:
            assert state.ages[layer.name].tolist() == fire.ages[layer.name].tolist(), step
            assert torch.equal(expanded(state.hist[layer.name], B, 1000), fire.hist[layer.name]), step
            assert state.tau[layer.name].tolist() == fire.tau[layer.name].double().tolist(), step
    assert state.steps == 120 and {100.0, 200.0} <= set(state.tau["hidden.0"].tolist() + state.tau["hidden.1"].tolist())


def test_fires_port_resets_differently_outgoing_weights_and_moments_kept_biases_redrawn():
    """Where FIRE's port departs from the official reset (the module's docstring): its boolean-indexed `fill_(0)` and
    `zero_()` act on copies, so a reset unit's outgoing weights and Adam moments stay; its bias is redrawn, not
    zeroed; Adam's step count of every reset tensor goes to 0. Ours zeroes the outgoing weights, the bias and the
    moments, and keeps the step counts."""
    theirs, ours = toy("mlp"), toy("mlp")
    g = torch.Generator().manual_seed(0)
    opts = [torch.optim.Adam(m.parameters()) for m in (theirs, ours)]
    x, y = images("mlp", g)
    for model, opt in zip((theirs, ours), opts):
        F.cross_entropy(model(x), y).backward()
        opt.step()
    before = copy.deepcopy(theirs)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[[2, 5]] = True
    masks = {"hidden.0": mask, "hidden.1": torch.zeros(16, dtype=torch.bool), "head": torch.zeros(10, dtype=torch.bool)}
    moments = opts[0].state[theirs.hidden[1].weight]["exp_avg"].clone()
    reset_opt_state(opts[0], reset_dormant_neurons(theirs, masks))
    assert torch.equal(theirs.hidden[1].weight, before.hidden[1].weight)  # outgoing weights kept
    assert not torch.equal(theirs.hidden[0].bias[mask], before.hidden[0].bias[mask])
    assert (theirs.hidden[0].bias[mask] != 0).all()  # a redrawn bias
    assert torch.equal(opts[0].state[theirs.hidden[1].weight]["exp_avg"], moments)  # moments kept...
    assert opts[0].state[theirs.hidden[1].weight]["step"].item() == 0  # ...and the step count zeroed
    snr = SelfNormalizedResets(ours, 0.9, 2, 1000, 1)
    snr.bind(B)
    snr.ages["hidden.0"][mask] = 1
    snr.reset(opts[1])
    assert (ours.hidden[1].weight[:, mask] == 0).all() and (ours.hidden[0].bias[mask] == 0).all()
    assert (opts[1].state[ours.hidden[1].weight]["exp_avg"][:, mask] == 0).all()
    assert opts[1].state[ours.hidden[1].weight]["step"].item() == 1


# --- SNR in a run -------------------------------------------------------------------------------------------------

def test_snr_acts_after_the_shrink_and_reset_remedies_and_the_units_reset_are_counted(cifar):
    order = list(ACTING_ORDER)
    assert order.index("redo") < order.index("cbp") < order.index("snr") < order.index("soft_shrink_perturb")
    assert SNR() == SNR(percentile=0.99, tau_update_every=16, tau_update_unit="phases", expansion=2.0,
                        tau_max=20000, initial_tau=10000)
    s = SNR(tau_update_unit="steps", tau_update_every=3, tau_max=320)
    config = tiny_run(phases=(Phase(pool="half", epochs=1, lr=0.1),
                              Phase(pool="full", epochs=2, lr=0.1, remedies=(s,))))
    rows = pd.DataFrame(train_run(config, cifar).history)
    assert rows[rows.phase == 1].units_reset.isna().all() and rows[rows.phase == 2].units_reset.sum() > 0


def test_the_thresholds_move_on_their_schedule_tasks_or_steps(cifar, monkeypatch):
    """phases: at the start of each phase after SNR's first, every `tau_update_every` of them (the official
    update_tau after a task); steps: at SNR's steps 0, k, 2k, ... (FIRE's), counted over the run."""
    calls = []
    original = SelfNormalizedResets.update_thresholds

    def recorded(self):
        calls.append(self.steps)
        original(self)

    monkeypatch.setattr(SelfNormalizedResets, "update_thresholds", recorded)
    phases = lambda s: (Phase(pool="half", epochs=1, remedies=(s,)), Phase(pool="full", epochs=1, remedies=(s,)),
                        Phase(pool="full", epochs=1, remedies=(s,)))
    train_run(tiny_run(phases=phases(SNR(tau_update_every=1))), cifar)
    assert calls == [4, 12]  # after phase 1 (4 steps) and phase 2 (8 more)
    calls.clear()
    train_run(tiny_run(phases=phases(SNR(tau_update_every=2))), cifar)
    assert calls == [12]
    calls.clear()
    train_run(tiny_run(phases=phases(SNR(tau_update_every=5, tau_update_unit="steps"))), cifar)
    assert calls == [0, 5, 10, 15]


def test_snr_resumes_and_continues_its_prefix_bit_identically(cifar, tmp_path):
    s = SNR(tau_update_unit="steps", tau_update_every=3, tau_max=320)
    config = tiny_run(phases=(Phase(pool="half", epochs=2, lr=0.1, remedies=(s,)),
                              Phase(pool="full", epochs=2, lr=0.1, remedies=(s,))))
    whole, saved = assert_resumes_bit_identically(config, cifar, tmp_path)
    assert any("snr.stage1.0.conv1.hist" in state.remedies for state in saved)
    assert history_frame(whole).units_reset.sum() > 0


def test_snr_that_never_reaches_a_threshold_trains_exactly_as_the_plain_warm_start(cifar):
    """A first threshold no unit reaches and the official schedule (no update in two phases): no reset."""
    plain = train_run(tiny_run(), cifar)
    never = SNR(initial_tau=10**9)
    config = tiny_run(phases=tuple(p.replace(remedies=(never,)) for p in tiny_run().phases))
    got = train_run(config, cifar)
    pd.testing.assert_frame_equal(history_frame(got)[DETERMINISTIC], history_frame(plain)[DETERMINISTIC])
    assert all(torch.equal(got.state[k], plain.state[k]) for k in plain.state)
    assert history_frame(got).units_reset.sum() == 0


def test_snr_bad_settings_are_refused_by_name():
    for field, bad in (("percentile", 0), ("percentile", 1.5), ("tau_update_every", 0), ("tau_update_unit", "epochs"),
                       ("expansion", 0.5), ("tau_max", 0), ("initial_tau", 0)):
        with pytest.raises(ConfigError, match=field):
            SNR(**{field: bad})
    with pytest.raises(ConfigError, match="snr settings differ"):
        tiny_run(phases=(Phase(pool="half", remedies=(SNR(),)), Phase(pool="full", remedies=(SNR(percentile=0.9),))))
