"""Study configs: sweep validation before any training, and the runs each plan asks for."""
import pytest

from plasticity_nb import ConfigError
from plasticity_nb.studies import (
    STUDIES,
    blending,
    capacity,
    multistage,
    optimisers,
    pretraining_duration,
    resets,
    tuning_lr,
)


@pytest.mark.parametrize("module,overrides,culprit", [
    (blending, dict(gammas=[0.0]),
     "gammas has 0.0 in \\[0.0\\]: each must be in \\(0, 1\\) \\(the range of Phase.gamma\\)"),
    (blending, dict(gammas=[1.2]), "gammas has 1.2 in \\[1.2\\]: each must be in \\(0, 1\\)"),
    (blending, dict(gammas=[]), "gammas is empty"),
    (multistage, dict(ratios=[-0.1]), "ratios has -0.1 in \\[-0.1\\]: each must be in \\[0, 1\\]"),
    (multistage, dict(ratios=[1.5]), "ratios has 1.5"),
    (multistage, dict(stages=[0]), "stages has 0 in \\[0\\]: each must be >= 1"),
    (multistage, dict(stages=[10]), "stages has 10 in \\[10\\]: each must be in \\[1, 9\\] \\(n\\+1 class groups of "
                                    "CIFAR-10's 10 classes\\)"),
    (capacity, dict(depths=[0]), "depths has 0 in \\[0\\]: each must be > 0"),
    (capacity, dict(widths=[0, 4]), "widths has 0 in \\[0, 4\\]: each must be > 0"),
    (resets, dict(reset_from_groups=[0]), "reset_from_groups has 0 in \\[0\\]: each must be in \\[1, 6\\]"),
    (resets, dict(reset_from_groups=[7]), "reset_from_groups has 7"),
    (tuning_lr, dict(lr_multipliers=[0]), "lr_multipliers has 0.0 in \\[0.0\\]: each must be > 0"),
    (tuning_lr, dict(lr_multipliers=[-3]), "lr_multipliers has -3.0"),
    (tuning_lr, dict(lr_multipliers=[1, 1]), "lr_multipliers has duplicates"),
    (optimisers, dict(optimizers=["adam", "lbfgs"], optimizer_lrs=[1e-3, 1.0]),
     "optimizers has 'lbfgs': choose each from"),
    (optimisers, dict(optimizer_lrs=[1e-3]), "optimizer_lrs has 1 values for 2 optimizers"),
    (pretraining_duration, dict(pretrain_epochs_sweep=[0, 1]),
     "pretrain_epochs_sweep has 0 in \\[0, 1\\]: each must be > 0"),
    (pretraining_duration, dict(few_epochs=7), "few_epochs 7 must be one of"),
])
def test_invalid_sweeps_are_rejected_before_training(module, overrides, culprit):
    with pytest.raises(ConfigError, match=culprit):
        module.Config.from_preset("smoke", **overrides)


@pytest.mark.parametrize("study_id", list(STUDIES))
@pytest.mark.parametrize("preset", ["smoke", "quick", "paper"])
def test_every_preset_builds_a_paired_plan(study_id, preset):
    config = STUDIES[study_id].config.from_preset(preset)
    plan = config.plan()
    conditions = config.CONDITIONS
    for arm in ("warm", "scratch"):
        cells = {tuple(labels[c] for c in (*conditions, "seed")) for labels, _ in plan if labels["arm"] == arm}
        assert len(cells) == len(plan) // 2  # every condition and seed has exactly one run of each arm
    if preset == "paper":  # the paper's settings (06 sweeps the architecture, 03 the optimiser; 13: FIRE's scale)
        expected = (256, 100, 10, False) if study_id == "13" else (128, 500, 100, False)
        assert (config.batch_size, config.tune_epochs, config.last_k, config.augment) == expected
        assert study_id == "06" or (config.model, config.depth, config.width) == ("resnet", 2, 64)
        assert study_id == "03" or (config.optimizer, config.lr) == ("adam", 1e-3)


def test_quick_presets_share_runs_with_notebook_01():
    shared = {c.key() for _, c in STUDIES["01"].config.from_preset("quick").plan()}
    scratch_01 = {c.key() for labels, c in STUDIES["01"].config.from_preset("quick").plan()
                  if labels["arm"] == "scratch"}
    for study_id in ("02", "03", "06", "07"):  # 08 tunes longer at quick (Adam at 10x needs 40 epochs to fit)
        keys = {c.key() for _, c in STUDIES[study_id].config.from_preset("quick").plan()}
        assert shared <= keys, study_id
    for study_id in ("04", "05"):  # their warm arms blend or stage the pretraining
        keys = {c.key() for _, c in STUDIES[study_id].config.from_preset("quick").plan()}
        assert scratch_01 <= keys, study_id


def test_resets_plan_resets_groups_k_to_6_and_keeps_a_plain_warm_start():
    plan = resets.Config.from_preset("smoke", reset_from_groups=[2, 5]).plan()
    warm = {labels["reset_from_group"]: c for labels, c in plan if labels["arm"] == "warm" and labels["seed"] == 0}
    assert warm[2].phases[1].reset_groups == (2, 3, 4, 5, 6)
    assert warm[5].phases[1].reset_groups == (5, 6)
    assert warm[resets.NO_RESET].phases[1].reset_groups == ()
    assert warm[2].phases[0] == warm[5].phases[0]  # one pretraining serves every k


def test_tuning_lr_multiplies_tuning_and_scratch_but_not_pretraining():
    config = tuning_lr.Config.from_preset("smoke", lr_multipliers=[1, 10])
    runs = {(labels["lr_multiplier"], labels["arm"]): c for labels, c in config.plan() if labels["seed"] == 0}
    assert runs[(10, "warm")].phases[0].lr == config.lr and runs[(10, "warm")].phases[1].lr == 10 * config.lr
    assert runs[(10, "scratch")].phases[0].lr == 10 * config.lr


def test_multistage_plan_trains_each_stage_then_the_full_subset():
    config = multistage.Config.from_preset("smoke", stages=[2], ratios=[0.5])
    warm = next(c for labels, c in config.plan() if labels["arm"] == "warm")
    assert [p.pool for p in warm.phases] == ["stage", "stage", "full"] and [p.stage for p in warm.phases[:2]] == [1, 2]
    assert (warm.stages, warm.uniform_ratio) == (2, 0.5)
    assert all(p.target_train_acc == config.stage_target_acc for p in warm.phases[:2])
