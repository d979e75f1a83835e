"""The shared training loop: its evaluation schedule and when hooks are called."""
import pytest

from plasticity_nb import Phase
from plasticity_nb.run.hooks import Hook
from plasticity_nb.run.run_state import RunState
from plasticity_nb.training.build import init_model
from plasticity_nb.training.ensemble import EnsembleLearner, Stack
from plasticity_nb.training.loop import scheduled, train_phase
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import SingleLearner
from tests.helpers import tiny_run


def test_the_schedule_evaluates_every_eval_every_epochs_the_tail_and_the_last():
    phase = Phase(epochs=7, eval_every=3, eval_tail=2)
    assert [e + 1 for e in range(7) if scheduled(phase, e)] == [3, 6, 7]
    assert [e + 1 for e in range(4) if scheduled(Phase(epochs=4, eval_every=3), e)] == [3, 4]


class Recorder(Hook):
    def __init__(self):
        self.calls = []

    def on_phase_start(self, model, optimizer, phase):
        self.calls.append(("start", phase.epochs))

    def on_step(self, model, optimizer, step):
        self.calls.append(("step", step))

    def on_epoch(self, model, optimizer, row):
        self.calls.append(("epoch", row["phase_epoch"], row["step"]))


def _learner(config, state, cifar):
    runtime = Runtime.for_config(config, "cpu")
    return SingleLearner(init_model(config, runtime), config, state, RunTensors(config, cifar, runtime), runtime)


def test_hooks_are_called_at_the_phase_start_after_each_step_and_after_each_epoch(cifar):
    config = tiny_run(phases=(Phase(pool="half", epochs=2),), batch_size=64)  # 128 examples: 2 steps an epoch
    state, recorder = RunState([], [], 0, 0, 0), Recorder()
    train_phase(_learner(config, state, cifar), config.phases[0], [state], [recorder])
    assert recorder.calls == [("start", 2), ("step", 1), ("step", 2), ("epoch", 1, 2), ("step", 3), ("step", 4),
                              ("epoch", 2, 4)]


def test_a_resumed_phase_does_not_start_again(cifar):
    config = tiny_run(phases=(Phase(pool="half", epochs=2),), batch_size=64)
    whole = RunState([], [], 0, 0, 0)
    train_phase(_learner(config, whole, cifar), config.phases[0], [whole], [Hook()])
    state, recorder = RunState(whole.history[:1], [], 0, 1, 2), Recorder()  # as if resumed after epoch 1
    train_phase(_learner(config, state, cifar), config.phases[0], [state], [recorder])
    assert recorder.calls[0] == ("step", 3) and ("start", 2) not in recorder.calls


def test_an_ensemble_takes_no_hooks(cifar):
    configs = [tiny_run(seed=s) for s in (0, 1)]
    runtime = Runtime.for_config(configs[0], "cpu")
    stack = Stack([init_model(c, runtime) for c in configs], runtime)
    learner = EnsembleLearner(configs, 0, stack, [RunTensors(c, cifar, runtime) for c in configs], runtime)
    with pytest.raises(ValueError, match="hooks act on one model"):
        train_phase(learner, configs[0].phases[0], [RunState([], [], 0, 0, 0) for _ in configs], [Hook()])
