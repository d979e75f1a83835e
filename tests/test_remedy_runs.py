"""Remedies and plasticity metrics as options of a run: wired into the loop, stored, resumable, refused by
ensembles, identities where the maths says so. (The maths itself: test_remedies.py, test_plasticity_metrics.py.)"""
import math

import pandas as pd
import pytest
import torch

from plasticity_nb import Phase
from plasticity_nb.core.config import ConfigError
from plasticity_nb.measures.metric_settings import MetricSettings
from plasticity_nb.remedies.cbp import ContinualBackpropSettings
from plasticity_nb.remedies.dash import Dash
from plasticity_nb.remedies.l2_init import L2Init
from plasticity_nb.remedies.redo import ReDo
from plasticity_nb.remedies.shrink_perturb import ShrinkPerturb
from plasticity_nb.training.ensemble import members_of, train_ensemble
from plasticity_nb.training.train import train_run
from tests.helpers import assert_resumes_bit_identically, tiny_run

DETERMINISTIC = ["phase", "epoch", "phase_epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"]
CBP = ContinualBackpropSettings(replacement_rate=0.05, maturity_threshold=2)  # replaces units within a tiny run
REDO = ReDo(tau=0.5, every=3, examples=64)  # tau 0.5: some units of a tiny net are always below it


def remedied(*tune):
    """Warm start with continual backprop and ReDo throughout, and the remedies `tune` on the tuning phase."""
    return tiny_run(phases=(Phase(pool="half", epochs=2, remedies=(CBP, REDO)),
                            Phase(pool="full", epochs=3, remedies=(CBP, REDO, *tune))),
                    metrics=MetricSettings(examples=64))


def history(outcome):
    return pd.DataFrame(outcome.history).drop(columns="seconds")  # wall time: the one column that may differ


def test_remedies_off_keep_every_stored_key_and_stored_phases_load_by_remedy_name():
    plain = tiny_run()
    off = (Phase(pool="half", epochs=1, remedies=()), Phase(pool="full", epochs=1))
    assert plain.key() == tiny_run(phases=off).key()
    with_l2 = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=1, remedies=(L2Init(),))))
    assert plain.key() != with_l2.key()
    # a phase stored before the registry named every built-in remedy, None when off
    stored = {**plain.phases[0].to_dict(), "shrink_perturb": None, "dash": None, "l2_init": None, "redo": None,
              "cbp": None}
    assert Phase.from_dict(stored) == plain.phases[0]
    assert type(with_l2).from_dict(with_l2.to_dict()) == with_l2 and with_l2.to_dict()["phases"][1]["l2_init"]
    both = Phase(remedies=(CBP, Dash()))
    assert both.remedy_names == ("dash", "cbp") and both == Phase(remedies=(Dash(), CBP))  # the acting order


def test_identity_settings_train_exactly_like_the_plain_warm_start(cifar, one_thread):
    plain = history(train_run(tiny_run(), cifar))
    no_cbp = ContinualBackpropSettings(replacement_rate=0)
    identity = tiny_run(phases=(Phase(pool="half", epochs=1, remedies=(no_cbp,)),
                                Phase(pool="full", epochs=1, remedies=(
                                    Dash(shrink_floor=1.0), no_cbp,
                                    ShrinkPerturb(shrink=1.0, perturb=0.0, bn_statistics="keep")))))
    pd.testing.assert_frame_equal(history(train_run(identity, cifar))[DETERMINISTIC], plain[DETERMINISTIC])


def test_a_fresh_shrink_perturb_is_a_different_run_from_the_same_start(cifar, one_thread):
    plain = history(train_run(tiny_run(), cifar))
    fresh = tiny_run(phases=(Phase(pool="half", epochs=1),
                             Phase(pool="full", epochs=1, remedies=(ShrinkPerturb(shrink=0.0, perturb=1.0),))))
    assert not history(train_run(fresh, cifar)).train_loss.equals(plain.train_loss)


def test_metrics_fill_evaluated_rows_and_the_start_of_each_phase(cifar, one_thread):
    rows = history(train_run(remedied(L2Init(coefficient=1e-3)), cifar))
    metrics = ["dormant_redo", "dormant_dohare", "dormant_redo_units", "effective_rank", "srank", "weight_norm",
               "init_distance"]
    assert rows[metrics].notna().all().all()  # every epoch of a tiny run is evaluated
    first = rows.groupby("phase").head(1)
    assert first.grad_norm_half.gt(0).all() and first.grad_norm_new.gt(0).all()
    assert rows.groupby("phase").grad_ratio.count().eq(1).all()  # only in each phase's first row
    assert first.start_init_distance.iloc[0] == 0  # before the first step: at the initial weights
    assert rows.units_reset.sum() > 0  # continual backprop and ReDo replaced units
    assert rows.effective_rank.between(1, 64 * 4).all() and rows.dormant_redo.between(0, 1).all()
    assert math.isfinite(rows.train_loss.iloc[-1])


def test_a_remedy_run_resumes_and_continues_its_prefix_bit_identically(cifar, one_thread, tmp_path):
    _, saved = assert_resumes_bit_identically(remedied(Dash(), ShrinkPerturb()), cifar, tmp_path)
    assert any(s.remedies for s in saved)


def test_ensembles_refuse_remedies_by_name(cifar):
    configs = [remedied().replace(seed=s) for s in (0, 1)]
    with pytest.raises(ValueError, match="phase 1: redo, cbp.*plasticity metrics|plasticity metrics.*phase 1: redo"):
        train_ensemble(configs, cifar)
    assert sorted(map(len, members_of(configs).values())) == [1, 1]  # the runner trains them one by one


def test_bad_remedy_settings_are_named():
    with pytest.raises(ConfigError, match="from the second phase on"):
        tiny_run(phases=(Phase(pool="full", remedies=(Dash(),)),))
    with pytest.raises(ConfigError, match="cbp settings differ"):
        tiny_run(phases=(Phase(pool="half", remedies=(CBP,)), Phase(remedies=(ContinualBackpropSettings(),))))
    with pytest.raises(ConfigError, match="shrink_floor"):
        Dash(shrink_floor=0.0)
    with pytest.raises(ConfigError, match="bn_statistics"):
        ShrinkPerturb(bn_statistics="re-estimate")


def test_dash_gets_each_phases_new_data_the_new_last_in_eval_mode(cifar, one_thread, monkeypatch):
    """As its authors call it (DASH main.py:54, 68-69; metric_utils.py:161): the half, then the rest of the
    subset, one chunk each, BatchNorm in eval mode; the model trains on in train mode afterwards."""
    from plasticity_nb.remedies import dash
    from plasticity_nb.training.run_tensors import RunTensors
    from plasticity_nb.training.runtime import Runtime

    config = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=1, remedies=(Dash(),))))
    tensors = RunTensors(config, cifar, Runtime.for_config(config, "cpu"))
    chunks = tensors.dash_chunks(config, 1)
    joined = [torch.cat([x for x, _ in chunk]) for chunk in chunks]
    rest = torch.ones(len(tensors.full), dtype=torch.bool)
    rest[tensors.half] = False
    assert torch.equal(joined[0], tensors.train_x[tensors.half.sort().values])
    assert torch.equal(joined[1], tensors.train_x[tensors.full[rest]])
    modes = []
    real = dash.dash_
    monkeypatch.setattr(dash, "dash_", lambda model, *a: modes.append(model.training) or real(model, *a))
    train_run(config, cifar)
    assert modes == [False]


@pytest.mark.slow(seconds=35)
def test_the_docs_own_remedy_runs_as_written_in_notebook_10s_comparison(tmp_path):
    """docs/write-your-own-remedy.md: the code block, run as a script (its class lives in __main__, as in a
    notebook), registers the remedy and compares it with the plain warm start at smoke."""
    import os
    import re
    import subprocess
    import sys

    from plasticity_nb.core.paths import project_root

    section = (project_root() / "docs" / "write-your-own-remedy.md").read_text()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "PLASTICITY_OUT": str(tmp_path / "out"), "PYTHONPATH": str(project_root())}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line.split() for line in done.stdout.splitlines() if line.split()[1:2] in (["none"], ["head_reset"])]
    assert [row[1] for row in table] == ["none", "head_reset"]


@pytest.mark.slow
def test_worker_processes_import_the_module_that_registers_a_remedy(tmp_path):
    """A remedy from a user's module trains in worker processes (they import it first) and acts there."""
    import os
    import subprocess
    import sys

    from plasticity_nb.core.paths import project_root

    code = (
        "from plasticity_nb import Phase, run_many\n"
        "from tests.helpers import assert_resumes_bit_identically, tiny_run\n"
        "from tests.own_remedy import ScaleHead\n"
        "configs = [tiny_run(seed=s, phases=(Phase(pool='half', epochs=1), Phase(epochs=1, remedies=(ScaleHead(),))))"
        " for s in (0, 1)]\n"
        f"records = run_many(configs, out_dir={str(tmp_path)!r}, workers=2)\n"
        "plain = run_many([c.replace(phases=(c.phases[0], Phase(epochs=1))) for c in configs], "
        f"out_dir={str(tmp_path)!r}, workers=1)\n"
        "print('statuses', [r.status for r in records])\n"
        "print('differs', [not r.history.train_loss.equals(p.history.train_loss) for r, p in zip(records, plain)])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    done = subprocess.run([sys.executable, "-c", code], cwd=project_root(), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "statuses ['finished', 'finished']" in done.stdout and "differs [True, True]" in done.stdout
