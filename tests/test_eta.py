"""The time estimate before any run is stored: a few timed steps of each model size, counted per run."""
import pytest
import torch

from plasticity_nb.execution import eta
from plasticity_nb.run.run_config import Phase, RunConfig
from plasticity_nb.training.step_timing import shape


def config(**fields) -> RunConfig:
    base = dict(seed=0, model="resnet", depth=1, width=4, batch_size=32, train_subset=200, test_subset=100,
                phases=(Phase(pool="full", epochs=4, eval_every=2),))
    return RunConfig(**{**base, **fields})


def test_a_run_costs_its_training_examples_and_its_evaluations():
    timing = eta.StepTiming(train=0.01, evaluate=0.001)
    # 4 epochs of 200 examples; evaluated after epochs 2 and 4 (every 2nd, and the last), 100 images each
    assert timing.run_seconds(config()) == pytest.approx(800 * 0.01 + 2 * 100 * 0.001)


def test_timed_steps_measure_each_unmeasured_size_once_and_leave_the_threads_as_they_were():
    threads = torch.get_num_threads()
    todo = [config(seed=0), config(seed=1), config(width=8)]
    timings = eta.timings_for(todo, rates={}, device="cpu", threads=1)
    assert len(timings) == 2 and all(t.train > 0 and t.evaluate > 0 for t in timings.values())
    assert torch.get_num_threads() == threads
    assert eta.timings_for(todo, rates={shape(c): 1e-3 for c in todo}, device="cpu", threads=1) == {}
    seconds, unknown = eta.estimate(todo, {}, workers=2, timings=timings)
    assert unknown == 0 and seconds == pytest.approx(sum(timings[shape(c)].run_seconds(c) for c in todo) / 2)
