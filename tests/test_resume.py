"""Resumable runs: a run continued from any checkpoint ends exactly like an uninterrupted one."""
import pandas as pd
import pytest
import torch

from plasticity_nb import Phase, RunStore
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run

DETERMINISTIC = ["phase", "epoch", "phase_epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"]


def test_resuming_from_every_checkpoint_reproduces_the_uninterrupted_run(cifar, tmp_path):
    config = tiny_run(phases=(Phase(pool="half", epochs=2), Phase(pool="full", epochs=4)), augment=True)
    saved = []
    whole = train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1)
    assert [(s.phase_index, s.epoch) for s in saved] == [(0, 1), (1, 1), (1, 2), (1, 3)]
    store = RunStore(tmp_path)
    for state in saved:
        store.save_checkpoint(config, state)  # through the file format a killed process leaves behind
        resumed = train_run(config, cifar, resume=store.load_checkpoint(config))
        pd.testing.assert_frame_equal(pd.DataFrame(resumed.history)[DETERMINISTIC],
                                      pd.DataFrame(whole.history)[DETERMINISTIC])
        assert all(torch.equal(resumed.state[k], whole.state[k]) for k in whole.state)


def test_a_target_run_resumes_from_every_checkpoint_bit_identically(cifar, tmp_path):
    """Where a target phase ends is read from the history, so a resumed run stops where the whole one did."""
    phase = Phase(epochs=200, lr=3e-3, target_train_acc=0.9, window=2)
    config = tiny_run(model="mlp", depth=1, width=256, train_subset=100, batch_size=20,
                      phases=(Phase(pool="half", epochs=2), phase))
    saved = []
    whole = train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1)
    tuned = [r["train_acc"] for r in whole.history if r["phase"] == 2]
    assert len(tuned) == phase.reached_at(tuned) + 2
    assert len(saved) == len(whole.history) - 2  # none after a phase's last epoch
    store = RunStore(tmp_path)
    for state in saved:
        store.save_checkpoint(config, state)
        resumed = train_run(config, cifar, resume=store.load_checkpoint(config))
        pd.testing.assert_frame_equal(pd.DataFrame(resumed.history)[DETERMINISTIC],
                                      pd.DataFrame(whole.history)[DETERMINISTIC])
        assert all(torch.equal(resumed.state[k], whole.state[k]) for k in whole.state)


def test_a_resumed_run_keeps_the_compile_setting_it_started_with(cifar, tmp_path, monkeypatch):
    config = tiny_run(phases=(Phase(epochs=3),))
    saved = []
    whole = train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1, compile_setting="off")
    assert whole.compile == "off" and {s.compile for s in saved} == {"off"}
    store = RunStore(tmp_path)
    store.save_checkpoint(config, saved[0])
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("a run begun eager was resumed compiled"))
    # the batch that resumes it asks for compilation
    resumed = train_run(config, cifar, resume=store.load_checkpoint(config), compile_setting="default")
    assert resumed.compile == "off"
    pd.testing.assert_frame_equal(pd.DataFrame(resumed.history)[DETERMINISTIC],
                                  pd.DataFrame(whole.history)[DETERMINISTIC])


def test_a_checkpoint_is_replaced_atomically_and_discarded(tmp_path):
    store, config = RunStore(tmp_path), tiny_run()
    assert store.load_checkpoint(config) is None
    from plasticity_nb.run.run_state import RunState
    store.save_checkpoint(config, RunState([], [], 0, 1, 4))
    store.save_checkpoint(config, RunState([], [], 0, 2, 8))
    assert store.load_checkpoint(config).epoch == 2
    assert [p.name for p in store.checkpoint_path(config).parent.iterdir()] == ["checkpoint.pt"]
    store.discard_checkpoint(config)
    assert store.load_checkpoint(config) is None
