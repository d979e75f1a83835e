"""Executors write the same results: local worker processes, a local Ray cluster, seed ensembles."""
import pandas as pd
import pytest
import torch

from plasticity_nb import WarmStartConfig, run_many
from plasticity_nb.execution import runner

pytestmark = pytest.mark.slow(seconds=35)
DETERMINISTIC = ["phase", "epoch", "phase_epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"]


@pytest.fixture(scope="module")
def plan(cifar):
    return [c for _, c in WarmStartConfig.from_preset("smoke").plan(cifar.data_id)]


@pytest.fixture(scope="module")
def local(plan, tmp_path_factory):
    return run_many(plan, out_dir=tmp_path_factory.mktemp("local"), workers=2)  # two single-threaded processes


def test_a_local_ray_cluster_with_two_workers_gives_the_local_executors_results(plan, local, tmp_path):
    pytest.importorskip("ray", reason="the Ray executor is an optional extra: pip install '.[ray]'")
    remote = run_many(plan, out_dir=tmp_path, workers=2, executor="ray")
    assert [r.key for r in remote] == [r.key for r in local]
    for a, b in zip(local, remote):
        pd.testing.assert_frame_equal(a.history[DETERMINISTIC], b.history[DETERMINISTIC])


def test_seed_ensembles_store_every_member_as_its_own_run(cifar, tmp_path):
    fp32 = [c for _, c in WarmStartConfig.from_preset("smoke", precision="fp32").plan(cifar.data_id)]
    alone = run_many(fp32, out_dir=tmp_path / "alone", workers=1)
    together = run_many(fp32, out_dir=tmp_path / "together", ensemble=True)
    assert [r.key for r in together] == [r.key for r in alone]
    assert {r.provenance.get("ensemble_members") for r in together} == {2}  # the 2 smoke seeds, at every level
    for a, b in zip(alone, together):  # tolerance as in test_ensemble.py
        assert b.history.train_loss.values == pytest.approx(a.history.train_loss.values, rel=5e-3)


def test_automatic_workers_share_a_gpu_among_narrow_nets_only(monkeypatch):
    """Decided without a GPU: the rule reads the device type, the widths and the cores."""
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 16)
    quick = [c for _, c in WarmStartConfig.from_preset("quick").plan("data")]  # width 8, 9 runs
    wide = [c for _, c in WarmStartConfig.from_preset("quick", width=64).plan("data")]
    cuda = torch.device("cuda")
    assert runner.auto_workers(cuda, quick * 2) == 12  # 3/4 of 16 cores, fewer than the 18 runs
    assert runner.auto_workers(cuda, quick) == len(quick)
    assert runner.auto_workers(cuda, wide) == 1
    assert runner.auto_workers(cuda, quick[:1]) == 1  # too little work to start processes for
