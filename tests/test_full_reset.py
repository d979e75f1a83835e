"""The full reset at the tuning start (issue 41: FIRE's full-reset arm): the state after it is a freshly built
model's, the run's initial one by default, and nothing of the pretraining is left."""
import copy

import pytest
import torch

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.core.seeds import derived_seed
from plasticity_nb.remedies.dash import Dash
from plasticity_nb.remedies.fire import Fire
from plasticity_nb.remedies.full_reset import FRESH_SEED_TAG, FullReset, FullResetHook
from plasticity_nb.remedies.shrink_perturb import ShrinkPerturb
from plasticity_nb.run.remedy import ACTING_ORDER
from plasticity_nb.training.build import init_model
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import train_run
from tests.helpers import history_frame, tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


# === Full reset ===================================================================================================

def test_the_full_reset_is_the_runs_initial_model_parameters_and_batchnorm_buffers(cifar, monkeypatch):
    """At the tuning start (a new optimiser, no state yet), every parameter and buffer equals the run's freshly built
    model: theta_0 (FIRE's), or with weights="fresh" the model of the seed derived for the run and phase."""
    seen = []
    original = FullResetHook.on_phase_start

    def recorded(self, model, optimizer, phase):
        trained = copy.deepcopy(model.state_dict())
        original(self, model, optimizer, phase)
        seen.append((trained, copy.deepcopy(model.state_dict()), len(optimizer.state)))

    monkeypatch.setattr(FullResetHook, "on_phase_start", recorded)
    for weights in ("initial", "fresh"):
        config = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=1,
                                                                      remedies=(FullReset(weights=weights),))))
        train_run(config, cifar)
    runtime = Runtime.for_config(config, "cpu")
    theta0 = init_model(config, runtime).state_dict()
    fresh = init_model(config.replace(seed=derived_seed(config.seed, 1, FRESH_SEED_TAG) % 2**31), runtime).state_dict()
    for (trained, after, state), want in zip(seen, (theta0, fresh)):
        assert state == 0
        assert after.keys() == want.keys() and all(torch.equal(after[k], want[k]) for k in want)
        assert trained["stem.1.num_batches_tracked"] > 0 and after["stem.1.num_batches_tracked"] == 0
        assert not torch.equal(trained["stem.1.running_mean"], after["stem.1.running_mean"])
    assert not torch.equal(seen[0][1]["stem.0.weight"], seen[1][1]["stem.0.weight"])


def test_after_a_full_reset_the_tuning_phase_trains_the_same_whatever_the_pretraining(cifar):
    """theta_0, fresh buffers and a fresh optimiser: nothing of the pretraining is left, so the tuning phase's rows are
    equal bit for bit whether the pretraining ran 1 epoch at lr 1e-3 or 2 at 3e-3."""
    tune = Phase(pool="full", epochs=1, remedies=(FullReset(),))
    a = history_frame(train_run(tiny_run(phases=(Phase(pool="half", epochs=1), tune)), cifar))
    b = history_frame(train_run(tiny_run(phases=(Phase(pool="half", epochs=2, lr=3e-3), tune)), cifar))
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert a[a.phase == 2][column].tolist() == b[b.phase == 2][column].tolist()
    assert a[a.phase == 1].train_loss.iloc[0] != b[b.phase == 1].train_loss.iloc[0]


def test_the_full_reset_acts_after_shrink_perturb_before_dash_and_fire_and_refuses_the_first_phase():
    order = list(ACTING_ORDER)
    assert order.index("shrink_perturb") < order.index("full_reset") < order.index("dash") < order.index("fire")
    names = Phase(remedies=(Fire(), Dash(), FullReset(), ShrinkPerturb())).remedy_names
    assert names == ("shrink_perturb", "full_reset", "dash", "fire")
    with pytest.raises(ConfigError, match="from the second phase on"):
        tiny_run(phases=(Phase(pool="half", remedies=(FullReset(),)), Phase(pool="full")))
    with pytest.raises(ConfigError, match="weights"):
        FullReset(weights="zeros")
    assert FullReset() == FullReset(weights="initial") and FullReset.PLACEMENT == "tuning start"
