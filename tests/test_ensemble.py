"""Seed ensembles (torch.func vmap) against training each seed alone, on the CPU."""
import pandas as pd
import pytest

from plasticity_nb import Phase
from plasticity_nb.training.ensemble import members_of, train_ensemble
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run

# Stated tolerance: batched convolutions reassociate sums (and solo evaluation folds BatchNorm into the
# convolutions), so members differ from solo runs by float rounding, which training amplifies: the
# first epoch's train loss agrees to ~1e-7, and after four epochs train and test losses agree within
# 0.5 % and 2 % (relative). This tiny net is still near chance, where a rounding-level change of the
# logits flips argmaxes, so accuracies are only held to within 5 points.
# (Test loss drifted 1.1 % under SGD+momentum on an AVX2 CPU.)
LOSS_RTOL, TEST_LOSS_RTOL, ACC_ATOL = 5e-3, 2e-2, 0.05


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_each_member_matches_its_seed_trained_alone(cifar, optimizer):
    phases = (Phase(pool="half", epochs=2, optimizer=optimizer, lr=0.01 if optimizer != "adam" else 1e-3),
              Phase(pool="full", epochs=2, optimizer=optimizer, lr=0.01 if optimizer != "adam" else 1e-3))
    configs = [tiny_run(seed=s, phases=phases, precision="fp32", augment=True, test_subset=1000) for s in (3, 4, 5)]
    together = train_ensemble(configs, cifar)
    for config, member in zip(configs, together):
        alone = pd.DataFrame(train_run(config, cifar).history)
        joint = pd.DataFrame(member.history)
        assert member.status == "finished"
        assert list(joint.epoch) == list(alone.epoch) and list(joint.step) == list(alone.step)
        assert joint.train_loss.values == pytest.approx(alone.train_loss.values, rel=LOSS_RTOL)
        assert joint.test_loss.values == pytest.approx(alone.test_loss.values, rel=TEST_LOSS_RTOL)
        assert joint.train_acc.values == pytest.approx(alone.train_acc.values, abs=ACC_ATOL)
        assert joint.test_acc.values == pytest.approx(alone.test_acc.values, abs=ACC_ATOL)


def test_continuing_stored_prefixes_as_an_ensemble(cifar):
    configs = [tiny_run(seed=s, precision="fp32") for s in (0, 1)]
    starts = [train_run(c.prefix(), cifar) for c in configs]
    for config, member, start in zip(configs, train_ensemble(configs, cifar, starts=starts), starts):
        alone = pd.DataFrame(train_run(config, cifar, start=start).history)
        assert pd.DataFrame(member.history).train_loss.values == pytest.approx(alone.train_loss.values, rel=LOSS_RTOL)


def test_only_configs_that_differ_by_seed_group_together():
    a, b, c = tiny_run(seed=0), tiny_run(seed=1), tiny_run(seed=0, width=5)
    assert sorted(map(len, members_of([a, b, c]).values())) == [1, 2]
    with pytest.raises(ValueError, match="differ only by seed"):
        train_ensemble([a, c], None)
