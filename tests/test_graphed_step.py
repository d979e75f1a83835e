"""The whole step as one CUDA graph (`--compile graphed-step`): on a CPU, the step function a graph captures, run
eagerly, against the loop's own step (bitwise), and the state put back after the capture's warm-up steps; on a
GPU (marked `cuda`, skipped without one), graphed training against eager training within a stated tolerance."""
import copy

import pandas as pd
import pytest
import torch

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.run.run_state import RunState
from plasticity_nb.training.build import init_model
from plasticity_nb.training.ensemble import train_ensemble
from plasticity_nb.training.graphed_step import Snapshot
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.runtime import GRAPHED_STEP, Runtime
from plasticity_nb.training.train import SingleLearner, train_run
from tests.helpers import DETERMINISTIC, tiny_run


def cuda(test):
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def learner(config, data):
    runtime = Runtime.for_config(config, "cpu")
    model = init_model(config, runtime)
    return SingleLearner(model, config, RunState([], [], 0, 0, 0), RunTensors(config, data, runtime), runtime)


def tensors_of(learner_):
    model = {k: v.clone() for k, v in learner_.model.state_dict().items()}
    moments = [v.clone() for s in learner_.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return model, moments


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop"])
def test_the_step_a_graph_captures_is_the_loops_step_bit_for_bit(cifar, optimizer):
    config = tiny_run(phases=(Phase(pool="full", epochs=1, optimizer=optimizer, lr=1e-3),), width=8)
    loop, captured = learner(config, cifar), learner(config, cifar)
    batches, _ = loop.epoch_batches(0)
    for batch in batches:
        expected = loop.step(batch)
        got = captured.train_step(captured.tensors.train_x[batch], captured.tensors.train_y[batch])
        assert all(torch.equal(a, b) for a, b in zip(expected, got))
    (model_a, state_a), (model_b, state_b) = tensors_of(loop), tensors_of(captured)
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    assert len(state_a) == len(state_b) and all(torch.equal(a, b) for a, b in zip(state_a, state_b))


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "rmsprop"])
def test_warm_up_steps_are_undone_so_the_first_replay_is_the_first_step(cifar, optimizer):
    """What GraphedStep does around its capture, on a CPU: snapshot, a few real steps, restore; the step after it
    equals a fresh learner's first step (optimiser state not yet created is reset to a first step's zeros)."""
    config = tiny_run(phases=(Phase(pool="full", epochs=1, optimizer=optimizer, lr=1e-3),), width=8)
    fresh, warmed = learner(config, cifar), learner(config, cifar)
    batches, _ = fresh.epoch_batches(0)
    x, y = fresh.tensors.train_x[batches[0]], fresh.tensors.train_y[batches[0]]
    saved = Snapshot([*warmed.model.parameters(), *warmed.model.buffers()], warmed.optimizer)
    for batch in batches[1:4]:
        warmed.train_step(warmed.tensors.train_x[batch], warmed.tensors.train_y[batch])
    saved.restore()
    fresh.train_step(x, y)
    warmed.train_step(x, y)
    (model_a, state_a), (model_b, state_b) = tensors_of(fresh), tensors_of(warmed)
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)
    assert all(torch.equal(a, b) for a, b in zip(state_a, state_b))


def test_a_graphed_step_on_a_cpu_is_refused_naming_the_setting(cifar):
    with pytest.raises(ConfigError, match="'graphed-step' replays CUDA graphs: it needs a CUDA GPU"):
        Runtime.for_config(tiny_run(), "cpu", **Runtime.compile_options(GRAPHED_STEP))
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        train_run(tiny_run(), cifar, "cpu", compile_setting=GRAPHED_STEP)


def test_the_setting_is_recorded_so_a_resumed_run_continues_as_it_began():
    options = Runtime.compile_options(GRAPHED_STEP)
    assert options == {"compile": True, "compile_mode": "default", "graph_step": True}
    runtime = Runtime(torch.device("cpu"), "fp32", False)
    assert runtime.compile_setting == "off"
    graphed = copy.copy(runtime)
    graphed.graph_step, graphed.compile = True, True  # the CPU refuses to build one; the name alone is tested here
    assert graphed.compile_setting == GRAPHED_STEP


# On a GPU: a few epochs graphed against eager. Inductor's kernels reassociate sums, so the runs agree to a tolerance
# (bf16 autocast: train accuracy within 2 points, losses within 5 %), not bit for bit.
TOLERANCE = dict(acc=0.02, loss=0.05)


def close(graphed: pd.DataFrame, eager: pd.DataFrame) -> None:
    assert (graphed.train_acc - eager.train_acc).abs().max() <= TOLERANCE["acc"]
    assert ((graphed.train_loss - eager.train_loss).abs() / eager.train_loss).max() <= TOLERANCE["loss"]


@cuda
def test_graphed_training_follows_eager_training_on_a_gpu(cifar):
    config = tiny_run(phases=(Phase(pool="half", epochs=2), Phase(pool="full", epochs=3)), width=16,
                      precision="bf16", train_subset=2048, batch_size=128)
    eager = train_run(config, cifar, "cuda")
    graphed = train_run(config, cifar, "cuda", runtime=Runtime.for_config(config, "cuda",
                                                                            **Runtime.compile_options(GRAPHED_STEP)))
    assert graphed.compile == GRAPHED_STEP
    close(pd.DataFrame(graphed.history)[DETERMINISTIC], pd.DataFrame(eager.history)[DETERMINISTIC])


@cuda
def test_a_graphed_seed_ensemble_follows_the_eager_ensemble_on_a_gpu(cifar):
    configs = [tiny_run(seed=s, phases=(Phase(pool="full", epochs=3),), width=16, precision="bf16",
                        train_subset=2048, batch_size=128) for s in range(4)]
    eager = train_ensemble(configs, cifar, "cuda")
    graphed = train_ensemble(configs, cifar, "cuda", **Runtime.compile_options(GRAPHED_STEP))
    for a, b in zip(graphed, eager):
        close(pd.DataFrame(a.history), pd.DataFrame(b.history))
