import math
import os

import pandas as pd
import pytest
import torch

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.run.run_config import RunConfig
from plasticity_nb.training.build import make_optimizer
from plasticity_nb.training.runtime import Runtime, native_precision
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run

DETERMINISTIC = ["phase", "pool", "epoch", "phase_epoch", "step", "lr", "train_loss", "train_acc", "test_loss",
                 "test_acc"]


def _history(outcome):
    return pd.DataFrame(outcome.history)[DETERMINISTIC]


def test_same_config_and_seed_give_an_identical_history_and_weights(cifar):
    a, b = train_run(tiny_run(), cifar), train_run(tiny_run(), cifar)
    pd.testing.assert_frame_equal(_history(a), _history(b))
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_another_seed_gives_another_run(cifar):
    assert not _history(train_run(tiny_run(seed=0), cifar)).equals(_history(train_run(tiny_run(seed=1), cifar)))


def test_continuing_a_stored_prefix_equals_training_in_one_go(cifar):
    config = tiny_run()
    whole = train_run(config, cifar)
    resumed = train_run(config, cifar, start=train_run(config.prefix(), cifar))
    pd.testing.assert_frame_equal(_history(whole), _history(resumed))


def test_evaluating_less_often_trains_the_same_steps_and_tests_the_same_epochs_alike(cifar):
    """Why quick evaluates every 5 epochs and notebook 01 shares its runs with the sweeps: when the test set
    is evaluated changes neither training nor the evaluations that remain."""
    every = (Phase(pool="half", epochs=2), Phase(pool="full", epochs=4))
    sparse = (Phase(pool="half", epochs=2, eval_every=2), Phase(pool="full", epochs=4, eval_every=3, eval_tail=1))
    a, b = _history(train_run(tiny_run(phases=every), cifar)), _history(train_run(tiny_run(phases=sparse), cifar))
    tested = b.test_acc.notna()
    assert tested.tolist() == [False, True, False, False, True, True]
    pd.testing.assert_frame_equal(a.drop(columns=["test_loss", "test_acc"]), b.drop(columns=["test_loss", "test_acc"]))
    pd.testing.assert_frame_equal(a[tested], b[tested])


def test_history_has_one_row_per_epoch_and_the_full_test_set_by_default(cifar):
    config = tiny_run(phases=(Phase(pool="half", epochs=2), Phase(pool="full", epochs=3)), test_subset=None,
                      train_subset=128)
    history = pd.DataFrame(train_run(config, cifar).history)
    assert history.epoch.tolist() == [1, 2, 3, 4, 5] and history.phase.tolist() == [1, 1, 2, 2, 2]
    assert history.step.tolist() == [2, 4, 8, 12, 16]  # 64 then 128 examples, batch 32
    assert history.test_acc.notna().all()
    assert all(abs(acc * 10000 - round(acc * 10000)) < 1e-6 for acc in history.test_acc)  # out of 10,000


def test_stops_at_the_target_train_accuracy(cifar):
    config = tiny_run(model="mlp", depth=1, width=256, train_subset=100, batch_size=20,
                      phases=(Phase(epochs=200, lr=3e-3, target_train_acc=0.9),))
    history = pd.DataFrame(train_run(config, cifar).history)
    assert len(history) < 200 and history.train_acc.iloc[-1] >= 0.9 and (history.train_acc.iloc[:-1] < 0.9).all()


def test_a_target_phase_trains_its_window_after_the_epoch_that_reached_it(cifar):
    phase = Phase(epochs=200, lr=3e-3, target_train_acc=0.9, window=3)
    config = tiny_run(model="mlp", depth=1, width=256, train_subset=100, batch_size=20, phases=(phase,))
    history = pd.DataFrame(train_run(config, cifar).history)
    reached = phase.reached_at(history.train_acc.tolist())
    assert reached is not None and (history.train_acc.iloc[:reached - 1] < 0.9).all()
    assert len(history) == reached + 3  # exactly the window after it, whatever the window's own accuracies
    assert history.test_acc.iloc[reached:].notna().all()  # every window epoch evaluated: the metric reads them


def test_a_run_that_hits_the_cap_below_its_target_still_trains_its_window_and_is_told_apart(cifar):
    phase = Phase(epochs=2, lr=1e-4, target_train_acc=1.0, window=2)
    config = tiny_run(model="mlp", depth=1, width=16, phases=(phase,))
    history = pd.DataFrame(train_run(config, cifar).history)
    assert len(history) == 4 and phase.reached_at(history.train_acc.tolist()) is None
    assert history.test_acc.iloc[-2:].notna().all()


def test_the_window_needs_a_target():
    with pytest.raises(ConfigError, match="window 3 is set without target_train_acc"):
        Phase(epochs=5, window=3)


def test_a_diverging_run_is_recorded_as_diverged(cifar):
    config = tiny_run(model="mlp", depth=2, width=32, phases=(Phase(epochs=3, optimizer="sgd", lr=1e12),
                                                               Phase(epochs=2, lr=1e-3)))
    outcome = train_run(config, cifar)
    assert outcome.status == "diverged" and outcome.phases_done == 1
    assert not math.isfinite(outcome.history[-1]["train_loss"])


@pytest.mark.parametrize("name,cls,momentum", [("adam", torch.optim.Adam, None), ("sgd", torch.optim.SGD, 0.0),
                                                ("sgd_momentum", torch.optim.SGD, 0.9),
                                                ("rmsprop", torch.optim.RMSprop, None)])
def test_optimisers(name, cls, momentum):
    config = tiny_run(phases=(Phase(optimizer=name, lr=0.05),))
    optimizer = make_optimizer(config.phases[0], config, [torch.nn.Parameter(torch.zeros(1))],
                               Runtime.for_config(config, "cpu"))
    assert type(optimizer) is cls and optimizer.defaults["lr"] == 0.05
    if momentum is not None:
        assert optimizer.defaults["momentum"] == momentum


def test_the_compile_setting_is_given_and_checked(monkeypatch):
    config = tiny_run()
    monkeypatch.setenv("PLASTICITY_COMPILE", "reduce-overhead")  # read no more: what the runtime is given decides
    assert not Runtime.for_config(config, "cpu").compile
    runtime = Runtime.for_config(config, "cpu", compile_setting="reduce-overhead")
    assert runtime.compile and runtime.compile_mode == "reduce-overhead"
    assert not Runtime.for_config(config, "cpu", compile_setting="reduce-overhead", compile=False).compile  # wins
    assert Runtime.for_config(config, "cpu", compile_setting="off").compile_setting == "off"
    with pytest.raises(ConfigError, match="compile is 'fastest'"):
        Runtime.for_config(config, "cpu", compile_setting="fastest")


def test_compilation_is_an_execution_setting_outside_the_run_key(monkeypatch, tmp_path):
    from plasticity_nb.studies.study_config import WarmStartConfig
    from plasticity_nb.training.runtime import share_compile_cache
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("PLASTICITY_COMPILE_CACHE", raising=False)
    keys = []
    for setting in ("off", "default", None):
        share_compile_cache(tmp_path / setting if setting else tmp_path)
        keys.append([c.key() for _, c in WarmStartConfig.from_preset("quick").plan()])
    assert keys[0] == keys[1] == keys[2]
    assert "compile" not in RunConfig.__dataclass_fields__  # it travels in ExecutionSettings, never in a run's key
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path.resolve() / "compile-cache")  # ours: follows --out
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    share_compile_cache(tmp_path / "other")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")  # the user's own choice wins


def test_studies_resolve_auto_precision_to_what_this_machine_runs_natively():
    from plasticity_nb.studies.study_config import WarmStartConfig
    runs = [c for _, c in WarmStartConfig.from_preset("quick").plan()]
    assert {c.precision for c in runs} == {native_precision()}
    assert {c.precision for _, c in WarmStartConfig.from_preset("smoke").plan()} == {"fp32"}  # same on every machine
    with pytest.raises(ConfigError, match="precision"):
        WarmStartConfig.from_preset("quick", precision="fp16")


def test_fp32_and_augmentation_paths_run(cifar):
    outcome = train_run(tiny_run(precision="fp32", augment=True), cifar)
    assert outcome.status == "finished" and len(outcome.history) == 2


def test_prefix_drops_the_last_phase():
    config = tiny_run()
    assert config.prefix().phases == config.phases[:1] and isinstance(config.prefix(), RunConfig)
