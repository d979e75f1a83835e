"""The layout a run trains in (memory format, fused batch norm, narrow convolutions): chosen once per machine from
timed steps, kept by its checkpoints, recorded."""
import pytest
import torch

from plasticity_nb import Phase, RunStore
from plasticity_nb.training import layout, narrow_conv, narrow_norm
from plasticity_nb.training.layout import Layout, layout_here, layouts, tuned_runtime
from plasticity_nb.training.runtime import memory_formats
from plasticity_nb.training.train import train_run
from tests.helpers import assert_same_run, tiny_run

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_the_formats_a_run_may_train_in():
    assert memory_formats(tiny_run(model="mlp", width=64), CPU) == (False,)
    assert memory_formats(tiny_run(width=4), CPU) == (False,)  # NHWC falls to a reference path below 8 channels
    assert memory_formats(tiny_run(width=8), CPU) == (True, False)  # the default first
    assert memory_formats(tiny_run(width=4), CUDA) == (True,)


NHWC, NCHW, FUSED = Layout(True, False), Layout(False, False), Layout(True, True)
CONV = Layout(True, True, narrow_conv=True)


def channels_last_here(config, device):
    return layout_here(config, device).channels_last


def test_the_layouts_a_run_may_train_in():
    assert layouts(tiny_run(width=8), CPU) == (NHWC, NCHW)  # fp32: no fused batch norm
    assert layouts(tiny_run(width=4), CPU) == (NCHW,)
    bf16 = layouts(tiny_run(width=8, precision="bf16"), CPU)
    kernels = (FUSED,) * (narrow_norm.kernels() is not None) + (CONV,) * (narrow_conv.kernels() is not None)
    assert bf16 == (NHWC, NCHW, *kernels)
    assert layouts(tiny_run(width=8, precision="bf16"), CUDA) == (NHWC,)


@pytest.fixture
def timings(monkeypatch, tmp_path):
    """Timed steps replaced by given seconds per example (keyed by channels_last, or "fused" and "conv" for this
    package's kernels); counts the timings made."""
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path))
    made = []

    def fake(config, runtime, steps):
        made.append(runtime.channels_last)
        if runtime.narrow_conv:
            return timings.seconds["conv"], None
        if runtime.narrow_norm:
            return timings.seconds["fused"], None
        return timings.seconds[runtime.channels_last], None

    timings.seconds = {True: 1.0, False: 1.0, "fused": 1.0, "conv": 1.0}
    timings.made = made
    monkeypatch.setattr(layout, "train_step_seconds", fake)
    return timings


def test_the_faster_format_is_chosen_once_and_kept(timings, monkeypatch):
    config = tiny_run(width=8)
    timings.seconds = {True: 1.0, False: 0.6}  # NCHW clearly faster, as on the Intel Xeon with AMX
    assert channels_last_here(config, CPU) is False and timings.made == [True, False]
    timings.seconds = {True: 0.5, False: 1.0}  # timed again it would now choose NHWC: it is never timed again
    assert channels_last_here(config, CPU) is False and len(timings.made) == 2
    assert tuned_runtime(config, CPU).channels_last is False
    assert tuned_runtime(config, CPU, channels_last=True).channels_last is True  # an explicit choice wins
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)  # another thread count is another choice
    assert channels_last_here(config, CPU) is True and len(timings.made) == 4


def test_a_near_tie_keeps_the_default(timings):
    timings.seconds = {True: 1.0, False: 0.95}
    assert channels_last_here(tiny_run(width=8), CPU) is True


def test_a_model_with_one_possible_format_is_not_timed(timings):
    assert channels_last_here(tiny_run(width=4), CPU) is False and timings.made == []


def test_the_fused_batch_norm_is_chosen_where_it_is_clearly_faster_and_never_compiled(timings, monkeypatch):
    monkeypatch.setattr(layout.narrow_norm, "kernels", lambda: object())
    monkeypatch.setattr(layout.narrow_conv, "kernels", lambda: None)  # a CPU without AVX512-BF16
    config = tiny_run(width=8, precision="bf16")
    timings.seconds = {True: 1.0, False: 1.5, "fused": 0.8}
    assert layout_here(config, CPU) == FUSED and len(timings.made) == 3
    assert layout_here(config, CPU, fused=False) == NHWC and len(timings.made) == 3  # the same timings, read
    assert tuned_runtime(config, CPU).narrow_norm is True
    assert tuned_runtime(config, CPU, channels_last=True).narrow_norm is False  # a given layout: no fused default
    # torch.compile traces ATen's batch norm
    assert tuned_runtime(config, CPU, compile_setting="default").narrow_norm is False


def test_the_narrow_convolutions_are_timed_anew_where_older_timings_lack_them(timings, monkeypatch):
    monkeypatch.setattr(layout.narrow_norm, "kernels", lambda: object())
    monkeypatch.setattr(layout.narrow_conv, "kernels", lambda: None)
    config = tiny_run(width=8, precision="bf16")
    timings.seconds = {True: 1.0, False: 1.5, "fused": 0.8, "conv": 0.5}
    assert layout_here(config, CPU) == FUSED and len(timings.made) == 3  # timings made before they existed
    monkeypatch.setattr(layout.narrow_conv, "kernels", lambda: object())
    assert layout_here(config, CPU) == CONV and len(timings.made) == 7  # all four timed again, not the old three
    assert tuned_runtime(config, CPU).narrow_conv is True
    assert layout_here(config, CPU, fused=False) == NHWC and len(timings.made) == 7
    assert tuned_runtime(config, CPU, compile_setting="default").narrow_conv is False


def test_the_fused_batch_norm_is_refused_where_it_cannot_run():
    from plasticity_nb.core.config import ConfigError
    from plasticity_nb.training.runtime import Runtime

    with pytest.raises(ConfigError, match="narrow_norm .* runs eager bf16 NHWC on a CPU; this run is fp32"):
        Runtime(CPU, "fp32", channels_last=True, narrow_norm=True)
    with pytest.raises(ConfigError, match="channels_last=False"):
        Runtime(CPU, "bf16", channels_last=False, narrow_norm=True)
    with pytest.raises(ConfigError, match="narrow_conv .* runs eager bf16 NHWC on a CPU; this run is fp32"):
        Runtime(CPU, "fp32", channels_last=True, narrow_conv=True)
    with pytest.raises(ConfigError, match="narrow_conv .* compile=default"):
        Runtime(CPU, "bf16", channels_last=True, narrow_conv=True, compile=True)


def test_a_resumed_run_keeps_the_memory_format_it_began_in(cifar, tmp_path, timings):
    config = tiny_run(width=8, phases=(Phase(epochs=3),))
    timings.seconds = {True: 1.0, False: 0.5}  # this machine trains it in NCHW
    saved = []
    whole = train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1)
    assert whole.channels_last is False and {s.channels_last for s in saved} == {False}
    store = RunStore(tmp_path / "out")
    store.save_checkpoint(config, saved[0])
    timings.seconds = {True: 0.5, False: 1.0}  # a machine whose cache says NHWC resumes it
    monkeypatch_cache = tmp_path / "other-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLASTICITY_CACHE", str(monkeypatch_cache))
        assert channels_last_here(config, CPU) is True
        resumed = train_run(config, cifar, resume=store.load_checkpoint(config))
    assert resumed.channels_last is False
    assert_same_run(resumed, whole)


def test_a_stored_run_records_its_layout(cifar, tmp_path, timings):
    from plasticity_nb.execution.runner import run

    timings.seconds = {True: 0.5, False: 1.0}
    config = tiny_run(width=8, phases=(Phase(epochs=1),))
    record = run(config, data=cifar, out_dir=tmp_path)
    provenance = RunStore(tmp_path).provenance(config)
    assert provenance["channels_last"] is True and provenance["narrow_norm"] is False and record is not None
    assert provenance["narrow_conv"] is False


KERNELS = {"narrow_norm": narrow_norm.kernels, "narrow_conv": narrow_conv.kernels}


@pytest.mark.parametrize("setting", list(KERNELS))
def test_a_run_on_the_kernels_is_deterministic_and_resumes_as_it_began(setting, cifar, tmp_path, monkeypatch,
                                                                        one_thread):
    if KERNELS[setting]() is None:
        pytest.skip(f"{setting}'s kernels do not build or run here")
    monkeypatch.setenv("PLASTICITY_CACHE", str(tmp_path / "cache"))  # this machine's timings say: the setting
    monkeypatch.setattr(layout, "time_layouts", lambda config, device, candidates: {
        c.name: (0.5 if getattr(c, setting) and not (setting == "narrow_norm" and c.narrow_conv) else 1.0)
        for c in candidates})
    config = tiny_run(width=8, precision="bf16", phases=(Phase(pool="half", epochs=1), Phase(epochs=2)))
    saved = []
    whole = train_run(config, cifar, checkpoint=saved.append, checkpoint_every=1)
    assert getattr(whole, setting) is True and {getattr(s, setting) for s in saved} == {True}
    again = train_run(config, cifar)
    assert all(torch.equal(again.state[k], whole.state[k]) for k in whole.state)
    store = RunStore(tmp_path / "out")
    store.save_checkpoint(config, saved[0])
    with pytest.MonkeyPatch.context() as patch:  # a machine whose timings say NHWC alone resumes it
        patch.setattr(layout, "time_layouts", lambda config, device, candidates: {
            c.name: (2.0 if c.on_kernels else 1.0) for c in candidates})
        patch.setenv("PLASTICITY_CACHE", str(tmp_path / "other-cache"))
        resumed = train_run(config, cifar, resume=store.load_checkpoint(config))
    assert getattr(resumed, setting) is True
    assert_same_run(resumed, whole)
