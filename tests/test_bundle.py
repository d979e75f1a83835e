"""The committed bundle (results/quick): whole and weightless, checked by the store's manifests, read-only (whatever
would train, write or read weights fails with one BundleError), and a notebook executes against it training nothing.
None needs the CIFAR-10 data: a bundle is read without it."""
import json
import re
import shutil
import warnings

import nbformat
import pytest

import plasticity_nb as pnb
from plasticity_nb.core.paths import BUNDLE, project_root
from plasticity_nb.execution import bundle
from plasticity_nb.execution.store import BundleError, RunStore, StoreError, StoreWarning
from plasticity_nb.studies import STUDIES, warm_start_gap
from plasticity_nb.views import explorer as explorer_view
from plasticity_nb.views import plots
from tests.helpers import COMMITTED, files_of, tiny_run
from tools import make_bundle

pytestmark = pytest.mark.slow(seconds=40)  # a notebook's kernel, the explorer's figures

@pytest.fixture
def copy(tmp_path):
    """A copy of the committed bundle, to damage or to open."""
    shutil.copytree(COMMITTED, tmp_path / "bundle")
    return tmp_path / "bundle"


def a_run(folder):
    """(config, folder) of one of the bundle's runs."""
    run = sorted((folder / "runs").glob("[!.]*/"))[0]
    return pnb.RunConfig.from_dict(json.loads((run / "config.json").read_text())), run


def store_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]


def test_the_committed_bundle_is_whole_weightless_and_small():
    marker = bundle.read_marker(COMMITTED)
    assert bundle.problems(COMMITTED) == []
    assert not list(COMMITTED.rglob("model.pt")) and not list(COMMITTED.rglob("remedies.pt"))
    assert len(marker["runs"]) == 90 and bundle.seed_ranges(marker["seeds"]) == "600-614"
    assert set(marker["notebooks"]) == {"01_warm_start_gap", "02_pretraining_duration", "04_blending"}
    assert bundle.size_of(COMMITTED) < 20e6


def test_every_committed_bundle_is_whole_and_weightless_and_all_together_small():
    bundles = [marker.parent for marker in (project_root() / "results").glob(f"*/{BUNDLE}")]
    assert COMMITTED in bundles and len(bundles) >= 2  # the settle stage's and the explore stage's so far
    for folder in bundles:
        assert bundle.problems(folder) == [], folder.name
        assert not list(folder.rglob("model.pt")) and not list(folder.rglob("remedies.pt")), folder.name
    assert sum(bundle.size_of(folder) for folder in bundles) < 20e6


def test_the_explore_bundle_holds_a_quick_run_of_every_study_notebook():
    marker = bundle.read_marker(project_root() / "results" / "explore")
    assert set(marker["notebooks"]) == {study.path.stem for study in STUDIES.values()}
    assert {entry["preset"] for entry in marker["notebooks"].values()} == {"quick"}


@pytest.mark.parametrize("damage, why", [
    (lambda b: a_run(b)[1].joinpath("history.parquet").write_bytes(b"edited"), "history.parquet has"),
    (lambda b: a_run(b)[1].joinpath("metrics.json").unlink(), "metrics.json is missing"),
    (lambda b: (b / "claims.csv").write_text((b / "claims.csv").read_text().replace("3.61", "9.61")),
     "claims.csv differs"),
    (lambda b: shutil.rmtree(a_run(b)[1]), "is missing"),
    (lambda b: a_run(b)[1].joinpath("model.pt").write_bytes(b"weights"), "a bundle has no weights"),
])
def test_a_damaged_bundle_is_caught(copy, damage, why):
    damage(copy)
    found = bundle.problems(copy)
    assert len(found) == 1 and why in found[0], found


def test_a_damaged_run_is_skipped_by_the_store_and_left_in_place(copy):
    config, run = a_run(copy)
    (run / "probes.parquet").write_bytes(b"x" * (run / "probes.parquet").stat().st_size)  # same size, other bytes
    found, said = store_warnings(lambda: RunStore(copy).has(config))
    assert not found and len(said) == 1 and "skipped" in said[0] and "probes.parquet's checksum" in said[0]
    assert run.exists() and not (copy / "runs" / ".corrupt").exists()


def test_missing_weights_are_expected_in_a_bundle_and_named_as_its_own(copy):
    config, _ = a_run(copy)
    record, said = store_warnings(lambda: RunStore(copy).load(config))
    assert said == [] and record.status == "finished"  # a bundle's run reads without its weights, said nothing
    with pytest.raises(BundleError, match=f"{re.escape(str(copy))} is a bundle .* cannot give run {config.key()}'s"):
        record.state()
    (copy / BUNDLE).unlink()  # outside a bundle, missing weights are a store copied without them
    with pytest.raises(StoreError, match="was stored without model.pt") as plain:
        RunStore(copy).load(config).state()
    assert not isinstance(plain.value, BundleError)


def test_training_or_writing_into_a_bundle_fails_with_one_clear_error(copy):
    before = files_of(copy)
    config, _ = a_run(copy)
    refusals = [
        (lambda: pnb.run(tiny_run(), out_dir=copy), "cannot train run"),
        (lambda: pnb.run_many([tiny_run()], out_dir=copy), "cannot train the 2 run"),
        (lambda: pnb.run_study(warm_start_gap.Config.from_preset("quick"), out_dir=copy), "seeds=600-614"),
        (lambda: RunStore(copy).ensure_writable(), "cannot store runs or results"),
    ]
    for call, why in refusals:
        with pytest.raises(BundleError, match=why) as refused:
            call()
        assert str(copy) in str(refused.value) and "copy its runs to an output folder" in str(refused.value)
    assert files_of(copy) == before


def test_a_study_reads_from_the_bundle_as_its_notebook_ran_and_writes_nothing(copy, capsys):
    before = files_of(copy)
    parameters = bundle.notebook_parameters(copy, "01")
    config = warm_start_gap.Config.from_preset(parameters.pop("preset"), seeds=parameters["seeds"])
    result = pnb.run_study(config, out_dir=copy, data_dir=copy / "no-data-here")  # no data is loaded
    rows = pnb.record_claims(copy, "quick", warm_start_gap.claims(result, config), config)
    assert "Committed runs, read-only" in capsys.readouterr().out
    assert rows.stage.tolist() == ["settled"] and rows.effect.tolist() == [3.61]  # the committed verdict
    assert plots.save_figure(None, copy, "anything") == []
    assert files_of(copy) == before


def an_output_folder(folder):
    """An output folder of two of the committed runs, with weights (zeros of the manifest's size: the store checks
    weights by size as it reads a run, by checksum only as it loads them, which an export never does)."""
    for run in sorted((COMMITTED / "runs").glob("[!.]*/"))[:2]:
        shutil.copytree(run, folder / "runs" / run.name)
        size = json.loads((run / "manifest.json").read_text())["files"]["model.pt"]["size"]
        (folder / "runs" / run.name / "model.pt").write_bytes(bytes(size))
    shutil.copy2(COMMITTED / "claims.csv", folder / "claims.csv")
    (folder / "figures").mkdir()
    (folder / "figures" / "a.png").write_bytes(b"png")
    return folder


def test_make_bundle_exports_the_runs_without_weights(tmp_path, capsys):
    source, made = an_output_folder(tmp_path / "out"), tmp_path / "bundle"
    assert make_bundle.main([str(source), str(made), "--command", "a test"]) == 0
    assert "2 runs (seeds 607, 611), 2 results files" in capsys.readouterr().out
    assert bundle.problems(made) == [] and not list(made.rglob("model.pt"))
    assert sorted(bundle.read_marker(made)["files"]) == ["claims.csv", "figures/a.png"]
    config, run = a_run(source)
    assert RunStore(made).load(config).history.equals(RunStore(source).load(config).history)
    with pytest.raises(FileExistsError):
        bundle.export(source, made)


def test_notebook_01_executes_against_the_bundle_training_nothing(copy, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("PYTHONPATH", str(project_root()))  # the kernel imports this checkout's package
    monkeypatch.setenv("PLASTICITY_DATA", str(tmp_path / "no-data-here"))  # nor needs the data
    before = files_of(copy)
    path = STUDIES["01"].path
    papermill.execute_notebook(str(path), str(tmp_path / "01.ipynb"), kernel_name="plasticity-nb",
                               parameters=bundle.notebook_parameters(copy, "01"), cwd=str(path.parent),
                               progress_bar=False)
    text = json.dumps(nbformat.read(tmp_path / "01.ipynb", as_version=4).cells)
    assert "Committed runs, read-only" in text and "C1: warm-started training" in text
    assert files_of(copy) == before  # no run trained (the event log is unchanged too), nothing written


def test_the_explorer_offers_the_bundles_studies_under_its_banner(copy, monkeypatch):
    shown = []
    monkeypatch.setattr(explorer_view, "display", lambda *objects: shown.extend(objects))
    index = explorer_view.StoreIndex(copy)
    assert index.available() == [("01", "quick"), ("02", "quick"), ("04", "quick")]  # at the bundle's seeds
    explorer_view.explorer(copy, interactive=False)
    assert "Committed runs, read-only" in shown[0].data
    figure, table = explorer_view.render(index, "02", "quick", "gap", "test_acc")
    assert figure is not None and table.claim.str.startswith("C2").any()
