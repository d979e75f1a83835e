import json

import pytest

import plasticity_nb.execution.runner as runner
import plasticity_nb.execution.store as store_module
from plasticity_nb import RunStore, run, run_many
from plasticity_nb.execution.store import FILES, StoreError
from tests.helpers import tiny_run


def test_a_run_folder_holds_everything_that_describes_it(tmp_path, cifar):
    record = run(tiny_run(data_id=cifar.data_id), out_dir=tmp_path)
    assert record.path == tmp_path / "runs" / record.config.key()
    assert sorted(p.name for p in record.path.iterdir()) == sorted(FILES)
    assert json.loads((record.path / "config.json").read_text()) == record.config.to_dict()
    assert record.metrics["status"] == "finished" and record.metrics["epochs"] == 2
    for key in ("package_version", "torch_version", "device_name", "git_commit", "wall_seconds", "data_source"):
        assert record.provenance[key] not in (None, ""), key
    assert len(record.history) == 2 and set(record.state()) == set(record.outcome().state)


def test_an_identical_config_is_never_trained_twice(tmp_path, cifar, monkeypatch):
    first = run(tiny_run(), out_dir=tmp_path)
    monkeypatch.setattr(runner, "train_run", lambda *a, **k: pytest.fail("a cache hit must not train"))
    again = run(tiny_run(), out_dir=tmp_path)
    assert again.key == first.key and again.history.equals(first.history)
    assert run_many([tiny_run(), tiny_run()], out_dir=tmp_path)[1].key == first.key


def test_a_warm_start_reuses_its_stored_prefix(tmp_path, cifar, monkeypatch):
    warm = tiny_run()
    pretrain = run(warm.prefix(), out_dir=tmp_path)
    calls = []
    real = runner.train_run
    monkeypatch.setattr(runner, "train_run", lambda config, *a, **k: calls.append(config) or real(config, *a, **k))
    record = run(warm, out_dir=tmp_path)
    assert calls == [warm]  # only the tuning phase was trained
    assert record.history.iloc[:1].drop(columns="seconds").equals(pretrain.history.drop(columns="seconds"))


def test_an_interrupted_write_leaves_nothing_that_loads(tmp_path, cifar, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(store_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_run(), out_dir=tmp_path)
    store = RunStore(tmp_path)
    assert store.load(tiny_run()) is None
    leftovers = [p.name for p in store.root.iterdir() if p.name not in (".locks", ".partial", "events.log")]
    assert leftovers == []  # no half-written run folder, no temp folder
    monkeypatch.undo()
    assert run(tiny_run(), out_dir=tmp_path).status == "finished"


def test_a_stale_temp_folder_from_a_killed_process_is_ignored(tmp_path, cifar):
    store = RunStore(tmp_path)
    stale = store.root / f".tmp-{tiny_run().key()}-999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    assert store.load(tiny_run()) is None
    assert run(tiny_run(), out_dir=tmp_path).status == "finished"
    run_many([tiny_run()], out_dir=tmp_path)  # a batch removes what killed writers left
    assert not stale.exists()


def test_a_checkpoint_left_beside_a_stored_run_is_discarded_by_the_next_batch(tmp_path, cifar):
    # What a process killed between storing a run and discarding its checkpoint leaves behind.
    from plasticity_nb.run.run_state import RunState
    store, config = RunStore(tmp_path), tiny_run()
    run(config, out_dir=tmp_path)
    store.save_checkpoint(config, RunState([], [], 1, 0, 8))
    unfinished = tiny_run(seed=1)
    store.save_checkpoint(unfinished, RunState([], [], 0, 0, 0))
    run_many([config], out_dir=tmp_path)
    assert store.load_checkpoint(config) is None
    assert store.load_checkpoint(unfinished) is not None  # a run still to finish keeps its checkpoint


def test_an_unwritable_output_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the run store"):
        RunStore(blocker).ensure_writable()
