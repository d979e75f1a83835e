"""FIRE's protocols as studies (issue 41): its warm start, selectable in the remedies' comparison (notebooks 10 and 11,
`protocol="fire"`), and its continual benchmark (notebook 13, studies/continual.py), both on a pool of nested,
class-balanced parts of the subset. Protocol "ours" plans exactly the runs it planned (tests/test_plan_keys.py pins
every study's presets, notebook 13's among them)."""
import hashlib
import json
import math

import pandas as pd
import pytest
import torch

from plasticity_nb.analysis.premises import PremiseRule
from plasticity_nb.core.config import ConfigError
from plasticity_nb.run.run_config import Phase
from plasticity_nb.studies import continual, newer_remedies, remedies
from plasticity_nb.studies.study_config import FIRE_PHASE
from plasticity_nb.training.run_tensors import RunTensors
from plasticity_nb.training.runtime import Runtime
from plasticity_nb.training.train import train_run
from tests.helpers import tiny_run
from tests.smoke_store import copy_runs, plan_keys

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

# Each plan's labels and run keys under protocol "fire" (fp32), recorded when the protocol was added: a stored run of
# FIRE's warm start is found again by its key.
FIRE_PLANS = {("10", "smoke"): "29f28d97f1fdebff", ("10", "quick"): "93589037cdfbc460",
              ("11", "smoke"): "d803c6cd1f2fba97", ("11", "quick"): "af86356df3fb5e41"}
STUDY = {"10": remedies, "11": newer_remedies}


def digest(config) -> str:
    plan = [(labels, run.key()) for labels, run in config.plan()]
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def by_arm(config, seed=None) -> dict:
    """(remedy, arm) -> RunConfig for one seed of the plan (its first by default)."""
    seed = config.seeds[0] if seed is None else seed
    return {(labels["remedy"], labels["arm"]): run for labels, run in config.plan() if labels["seed"] == seed}


def steps(run, phase) -> int:
    """Optimiser steps of one phase of a run (an epoch's last partial batch dropped)."""
    return phase.epochs * (run.pool_size_bound(phase) // run.batch_size)


# --- the part pool ------------------------------------------------------------------------------------------------

def test_parts_are_class_balanced_nested_seeded_and_as_large_as_the_config_says(cifar):
    phases = (*(Phase(pool="part", fraction=k / 10) for k in range(1, 10)), Phase())
    for subset in (1000, 512):  # 512: classes of 51 and 52 examples
        config = tiny_run(phases=phases, train_subset=subset)
        tensors = RunTensors(config, cifar, Runtime.for_config(config))
        before: set[int] = set()
        for phase in phases:
            pool = tensors.pool(phase)
            assert len(set(pool.tolist())) == len(pool) and before <= set(pool.tolist())  # nested, no repeats
            counts = torch.bincount(tensors.train_y.cpu()[pool], minlength=10)
            assert counts.max() - counts.min() <= 1  # class-balanced
            assert len(pool) >= config.pool_size_bound(phase)
            assert subset % 10 or len(pool) == config.pool_size_bound(phase)  # exact where the classes are even
            before = set(pool.tolist())
        assert len(before) == subset  # the last chunk is the whole subset
        assert torch.equal(tensors.first, tensors.pool(phases[0]))  # the metrics' "half": what the run learnt first
    other = RunTensors(config.replace(seed=1), cifar, Runtime.for_config(config))
    assert not torch.equal(other.pool(phases[0]), tensors.pool(phases[0]))  # each seed draws its own
    plain = tiny_run()
    assert torch.equal(RunTensors(plain, cifar, Runtime.for_config(plain)).first,
                       RunTensors(plain, cifar, Runtime.for_config(plain)).half)  # runs without a part: the half


@pytest.mark.parametrize("fields,culprit", [
    (dict(pool="part"), "fraction is set for (and only for) pool 'part'"),
    (dict(fraction=0.1), "fraction is set for (and only for) pool 'part'"),
    (dict(pool="part", fraction=1.0), "fraction must be in (0, 1), got 1.0"),
    (dict(pool="part", fraction=0.0), "fraction must be in (0, 1), got 0.0"),
])
def test_a_part_needs_its_fraction_and_only_a_part_has_one(fields, culprit):
    with pytest.raises(ConfigError) as raised:
        Phase(**fields)
    assert str(raised.value).startswith(culprit), raised.value


# --- FIRE's warm start in the remedies' comparison ----------------------------------------------------------------

@pytest.mark.parametrize("study_id,preset", list(FIRE_PLANS))
def test_fires_warm_start_plans_the_runs_it_planned_and_ours_is_the_default(study_id, preset):
    config = STUDY[study_id].Config
    assert digest(config.from_preset(preset, protocol="fire", precision="fp32")) == FIRE_PLANS[(study_id, preset)]
    assert digest(config.from_preset(preset, protocol="ours")) == digest(config.from_preset(preset))


def test_fires_warm_start_pretrains_on_its_fraction_for_the_tuning_phases_steps_then_acts_in_tuning_only():
    config = remedies.Config.from_preset("quick", protocol="fire", precision="fp32")
    assert (config.batch_size, config.tune_epochs, config.pretrain_epochs, config.fraction) == (256, 50, 950, 0.1)
    assert config.budget == "fixed" and isinstance(config.premise_rule(), PremiseRule)  # not fit by construction
    runs = by_arm(config)
    plain, scratch = runs[("none", "warm")], runs[("none", "scratch")]
    first, tune = plain.phases
    assert (first.pool, first.fraction, first.epochs, first.eval_every, first.target_train_acc) == (
        "part", 0.1, 950, 95, None)  # evaluated every 95 epochs of 1 step: tuning's 5 epochs of 19
    assert (tune.pool, tune.epochs, tune.target_train_acc, tune.eval_tail) == ("full", 50, None, 5)
    for phase in (first, tune):
        assert (phase.lr_warmup, phase.clip_grad_norm, phase.optimizer, phase.lr) == (0.1, 0.5, "adam", 1e-3)
    assert steps(plain, first) == steps(plain, tune) == 950
    assert scratch.phases == (tune,)  # FIRE's full reset: fresh weights, the tuning phase's steps, warm-up, clipping
    for remedy in config.remedies:
        warm = runs[(remedy, "warm")]
        if remedy in remedies.REGULARISERS:  # both arms, every phase, as under "ours"
            assert warm.replace(augment=False, weight_decay=0.0) == plain
            assert runs[(remedy, "scratch")].replace(augment=False, weight_decay=0.0) == scratch
        else:  # in the second phase only, as FIRE's loop applies every remedy: the pretraining is the plain one
            assert warm.phases[0] == first and warm.phases[1].remedy_names == (remedy,)
            assert runs[(remedy, "scratch")] == scratch
    paper = remedies.Config.from_preset("paper", protocol="fire")
    assert (paper.train_subset, paper.batch_size, paper.tune_epochs, paper.pretrain_epochs, paper.seeds) == (
        50000, 256, 100, 1026, (1, 2, 3))  # FIRE: 1,000 epochs of 20 steps (its last batch kept), 100 of 196
    warm = by_arm(paper)[("none", "warm")]
    assert abs(steps(warm, warm.phases[0]) - steps(warm, warm.phases[1])) < warm.phases[0].epochs  # 19,494 vs 19,500
    assert remedies.Config.from_preset("quick", protocol="fire", fraction=0.2).pretrain_epochs == 317  # 950 / 3 steps


@pytest.mark.parametrize("overrides,culprit", [
    (dict(protocol="fire", budget="target"), "budget 'target' does not fit protocol 'fire'"),
    (dict(fraction=0.2), "fraction 0.2 is the share of the subset FIRE's warm start pretrains on: set protocol='fire'"),
    (dict(protocol="fire", pretrain_epochs=10), "pretrain_epochs 10 under protocol 'fire': its first phase takes as "
                                                "many steps as the tuning phase, 950 epochs on the fraction here"),
    (dict(protocol="fire", fraction=1.0), "fraction must be in (0, 1), got 1.0"),
    (dict(protocol="wrm"), "protocol is 'wrm': choose from 'ours', 'fire'"),
    (dict(protocol="fire", batch_size=600), "fraction 0.1 of train_subset 5000 is 500 examples, fewer than batch_size "
                                            "600"),
])
def test_what_breaks_fires_warm_start_is_refused_by_name(overrides, culprit):
    with pytest.raises(ConfigError) as raised:
        remedies.Config.from_preset("quick", **overrides)
    assert str(raised.value).startswith(culprit), raised.value


def test_a_fire_warm_run_takes_as_many_steps_on_its_part_as_in_tuning_warming_up_each_phase(cifar):
    config = remedies.Config.from_preset("smoke", protocol="fire", remedies=["fire"])
    run = by_arm(config)[("fire", "warm")]
    history = pd.DataFrame(train_run(run, cifar).history)
    first, tune = history[history.phase == 1], history[history.phase == 2]
    assert set(first.pool) == {"part"} and set(tune.pool) == {"full"}
    assert first.step.max() == tune.step.max() - first.step.max() == 32  # 32 epochs of 1 step, then 2 of 16
    warm_up = run.phases[0].lr_warmup * run.phases[0].epochs  # 3.2 epochs
    assert first.lr.tolist()[:4] == pytest.approx([1e-3 * min(1, e / warm_up) for e in (1, 2, 3, 4)])
    assert math.isfinite(history.loc[history.phase == 2, "grad_ratio"].iloc[0])  # the part against the rest


@pytest.mark.parametrize("overrides,claim", [
    (dict(), "C18a"), (dict(augment=True), "C18a"),  # our protocol: C18a, whatever its setting
    (dict(protocol="fire"), "C18b"), (dict(protocol="fire", augment=True), "C18c"),
    (dict(protocol="fire", optimizer="sgd", lr=0.1), "C18d"),
    (dict(protocol="fire", optimizer="sgd_momentum"), None),
    (dict(protocol="fire", augment=True, optimizer="sgd"), None),
])
def test_notebook_11_computes_the_one_of_fires_claims_its_protocol_and_setting_were_registered_for(overrides, claim):
    config = newer_remedies.Config.from_preset("smoke", remedies=["fire"], **overrides)
    found = newer_remedies.fire_claim_of(config)
    assert (found.id if found else None) == claim


# --- the continual benchmark --------------------------------------------------------------------------------------

def test_the_continual_plan_trains_cumulative_chunks_then_scratch_on_all_of_them():
    config = continual.Config.from_preset("quick", precision="fp32")
    runs = by_arm(config)
    chain, scratch = runs[("none", "warm")], runs[("none", "scratch")]
    assert [p.pool for p in chain.phases] == ["part"] * 9 + ["full"]
    assert [p.fraction for p in chain.phases[:-1]] == [k / 10 for k in range(1, 10)]
    assert [chain.pool_size_bound(p) for p in chain.phases] == [500 * k for k in range(1, 11)]  # chunk k: 1..k
    assert [steps(chain, p) for p in chain.phases] == [40 * 5 * k for k in range(1, 11)]  # steps grow with the chunk
    for phase in chain.phases:
        assert (phase.epochs, phase.target_train_acc, phase.lr_warmup, phase.clip_grad_norm) == (
            40, None, FIRE_PHASE["lr_warmup"], FIRE_PHASE["clip_grad_norm"])
    assert [p.eval_tail for p in chain.phases] == [0] * 9 + [5]  # each chunk's end, and the metric window
    assert scratch.phases == (chain.phases[-1],)  # FIRE's full reset at the last chunk: its steps on all chunks
    fire, l2_init = runs[("fire", "warm")], runs[("l2_init", "warm")]
    assert [p.remedy_names for p in fire.phases] == [()] + [("fire",)] * 9  # at each new chunk, from the second
    assert [p.remedy_names for p in l2_init.phases] == [("l2_init",)] * 10  # in every chunk
    assert fire.truncated(1).key() == chain.truncated(1).key() == runs[("shrink_perturb", "warm")].truncated(1).key()
    assert {runs[(r, "scratch")].key() for r in ("none", *config.remedies)} == {scratch.key()}
    augmented = by_arm(continual.Config.from_preset("smoke", remedies=["augment"]))
    assert augmented[("augment", "warm")].augment and augmented[("augment", "scratch")].augment  # both arms
    assert config.budget == "fixed" and isinstance(config.premise_rule(), PremiseRule)
    assert continual.CLAIMS == () and config.offers() == tuple(config.remedies)


@pytest.mark.parametrize("overrides,culprit", [
    (dict(chunks=1), "chunks must be >= 2, got 1"),
    (dict(chunks=2.5), "Config.chunks must be int, got float 2.5"),
    (dict(chunks=20), "chunks 20: the first chunk holds 30 of train_subset 512's examples, fewer than batch_size 64"),
    (dict(budget="target"), "budget 'target' does not fit the continual protocol"),
    (dict(remedies=["no_such"]), "remedies has 'no_such', which is neither a registered remedy"),
    (dict(remedies={"fire": {"iterations": -1}}), "remedies['fire']: iterations must be >= 0, got -1"),
    (dict(chunk=3), "unknown parameter 'chunk' for Config (did you mean 'chunks'?)"),
])
def test_bad_input_to_the_continual_study_is_refused_by_name(overrides, culprit):
    with pytest.raises(ConfigError) as raised:
        continual.Config.from_preset("smoke", **overrides)
    assert str(raised.value).startswith(culprit), raised.value


@pytest.mark.smoke_store
def test_the_continual_study_reports_each_chunks_accuracy_and_the_final_gap(tmp_path, cifar):
    from plasticity_nb.studies.study_runs import load_study

    config = continual.Config.from_preset("smoke")
    copy_runs(tmp_path, keys=plan_keys(config, cifar.data_id))
    result = load_study(config, tmp_path, cifar.data_id)
    chunks = continual.chunk_accuracies(result)
    assert list(dict.fromkeys(chunks.remedy)) == ["none", "fire", "l2_init"]
    assert len(chunks) == 3 * len(config.seeds) * config.chunks and chunks.test_acc.notna().all()
    run = by_arm(config)[("none", "warm")]
    cumulative = pd.Series([steps(run, p) for p in run.phases]).cumsum().tolist()
    for _, rows in chunks.groupby(["remedy", "seed"]):
        assert rows.chunk.tolist() == [1, 2, 3] and rows.step.tolist() == cumulative
    table = continual.chunk_table(result)
    assert len(table) == 3 * config.chunks and table.scratch_test_acc.notna().tolist() == [False, False, True] * 3
    gaps = continual.gap_table(result, config)
    assert gaps.remedy.tolist() == ["none", "fire", "l2_init"] and gaps.reduction_pp.isna().tolist() == [True, False,
                                                                                                          False]
    assert gaps.gap_pp.tolist() == pytest.approx([result.gap_series(remedy=r).mean() for r in gaps.remedy])
    assert len(continual.estimates(result, config)) == 1 + 2 * len(config.remedies)
    assert continual.claims(result, config) == []


def test_no_notebook_binds_a_name_its_config_reads_from_the_notebooks_globals():
    """`Config.from_notebook` reads every field's name from the kernel's globals: a module alias or a table named like
    a parameter (notebook 11 imported notebook 10's study `as protocol`) would be read as its value, at once or when
    the config cell runs again."""
    import ast
    import dataclasses

    import nbformat

    from plasticity_nb.studies import STUDIES

    for study in STUDIES.values():
        fields = {f.name for f in dataclasses.fields(study.config)} | set(study.config.RETIRED)
        bound = set()
        for cell in nbformat.read(study.path, as_version=4).cells:
            if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
                for node in ast.walk(ast.parse(cell.source)):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        bound.add(node.id)
                    elif isinstance(node, ast.alias):
                        bound.add(node.asname or node.name.split(".")[0])
        assert bound & fields == set(), study.notebook
