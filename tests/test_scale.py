"""The scale study (notebook 12): its grid, the trend test its claims use, and the claims on constructed gaps."""
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from plasticity_nb.analysis.stats import ESTIMATE, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, slope_estimate, trend_test
from plasticity_nb.core.config import ConfigError
from plasticity_nb.studies import scale
from plasticity_nb.studies.study_result import StudyResult, paired_gaps

SIZES = [2500, 5000, 10000]


def gaps_along(slope: float, noise: float, seeds=(0, 1, 2, 3), levels=SIZES, rng_seed=0):
    """Gaps of seed s at level n: a seed effect + slope * log2(n) + noise."""
    rng = np.random.default_rng(rng_seed)
    rows = [(s, n, 3.0 + s + slope * math.log2(n) + noise * rng.standard_normal()) for s in seeds for n in levels]
    return pd.DataFrame(rows, columns=["seed", "level", "gap"])


def test_the_trend_is_the_within_seed_slope_with_its_t_interval():
    table = gaps_along(slope=-0.3, noise=0.4)
    test = trend_test(table.gap, table.level, table.seed, bound=0.5)
    x = np.log2(table.level.to_numpy())
    centred_x = x - table.groupby("seed")["level"].transform(lambda v: np.log2(v).mean()).to_numpy()
    centred_y = table.gap - table.groupby("seed").gap.transform("mean")
    slope = (centred_x * centred_y).sum() / (centred_x ** 2).sum()
    residual = centred_y - slope * centred_x
    df = len(table) - 4 - 1  # 4 seed intercepts and the slope
    se = math.sqrt((residual ** 2).sum() / df / (centred_x ** 2).sum())
    from scipy.stats import t

    assert test.estimate.mean == pytest.approx(-slope)
    assert test.estimate.ci_high == pytest.approx(-slope + t.ppf(0.95, df) * se)
    assert test.estimate.ci_low == pytest.approx(-slope - t.ppf(0.95, df) * se)
    assert test.estimate.n == 4 and test.estimate.seeds == (0, 1, 2, 3) and test.kind == "trend"


def test_the_slope_estimate_is_statsmodels_ols_with_seed_fixed_effects_and_no_verdict():
    table = gaps_along(slope=-0.3, noise=0.4, seeds=(0, 1, 2, 3, 4))
    estimate = slope_estimate(table.gap, table.level, table.seed, "gap change per doubling")
    reference = smf.ols("gap ~ np.log2(level) + C(seed)", table).fit()
    assert estimate.estimate.mean == pytest.approx(reference.params["np.log2(level)"])
    assert (estimate.estimate.ci_low, estimate.estimate.ci_high) == pytest.approx(
        tuple(reference.conf_int(0.05).loc["np.log2(level)"]))
    assert estimate.estimate.confidence == 0.95 and estimate.estimate.n == 5 and estimate.kind == "estimate"
    assert estimate.verdict == ESTIMATE and f"t on {int(reference.df_resid)} df" in estimate.estimate.method
    # the trend bound reads the same fit: its shrink is minus the slope
    assert trend_test(table.gap, table.level, table.seed, bound=0.5).estimate.mean == pytest.approx(
        -estimate.estimate.mean)


def test_a_slope_with_no_interval_says_why_and_stays_an_estimate():
    line = gaps_along(slope=-1.0, noise=0.0)
    exact = slope_estimate(line.gap, line.level, line.seed)
    assert exact.estimate.mean == pytest.approx(-1.0) and math.isnan(exact.estimate.ci_low)
    assert "no residual spread" in exact.estimate.method and exact.verdict == ESTIMATE
    one_seed = gaps_along(slope=0.0, noise=0.3, seeds=(0,))
    alone = slope_estimate(one_seed.gap, one_seed.level, one_seed.seed)
    assert math.isnan(alone.estimate.mean) and "not estimable" in alone.estimate.method


@pytest.mark.parametrize("slope,verdict", [(0.0, SUPPORTED), (-3.0, NOT_SUPPORTED), (-0.5, INCONCLUSIVE)])
def test_the_shrink_is_bounded_by_the_margin(slope, verdict):
    table = gaps_along(slope=slope, noise=0.2, seeds=range(6))
    assert trend_test(table.gap, table.level, table.seed, bound=0.5).verdict == verdict


def test_a_perfect_fit_or_too_few_values_gives_no_verdict():
    exact = gaps_along(slope=0.0, noise=0.0)
    assert trend_test(exact.gap, exact.level, exact.seed, bound=0.5).verdict == INCONCLUSIVE
    one_seed = gaps_along(slope=0.0, noise=0.3, seeds=(0,))
    assert trend_test(one_seed.gap, one_seed.level, one_seed.seed, bound=0.5).verdict == INCONCLUSIVE
    one_level = gaps_along(slope=0.0, noise=0.3, levels=[5000])
    assert trend_test(one_level.gap, one_level.level, one_level.seed, bound=0.5).verdict == INCONCLUSIVE


def test_a_missing_gap_is_counted_not_dropped_silently():
    table = gaps_along(slope=0.0, noise=0.3)
    table.loc[0, "gap"] = math.nan
    assert trend_test(table.gap, table.level, table.seed, bound=0.5).estimate.missing == 1


def test_every_preset_puts_the_base_cell_on_both_axes():
    for preset in ("smoke", "quick", "gpu", "paper"):
        config = scale.Config.from_preset(preset)
        base = (config.train_subset, config.width)
        assert base in [(c.train_subset, c.width) for c in config.size_axis()]
        assert base in [(c.train_subset, c.width) for c in config.width_axis()]
    gpu = scale.Config.from_preset("gpu")
    assert len(gpu.cells) == 20 and len(gpu.seeds) == 8 and (gpu.train_subset, gpu.width) == (50000, 64)


def test_each_cell_runs_with_its_own_size_width_and_budget():
    grid = [dict(train_subset=512, width=4, pretrain_epochs=3, tune_epochs=2),
            dict(train_subset=256, width=4, pretrain_epochs=1, tune_epochs=4)]
    config = scale.Config.from_preset("smoke", cells=grid)
    for labels, run in config.plan():
        assert (run.train_subset, run.width) == (labels["train_subset"], labels["width"])
        cell = next(c for c in config.cells if c.train_subset == run.train_subset)
        assert run.phases[-1].epochs == cell.tune_epochs
        if labels["arm"] == "warm":
            assert run.phases[0].pool == "half" and run.phases[0].epochs == cell.pretrain_epochs
        else:
            assert len(run.phases) == 1


@pytest.mark.parametrize("cells,culprit", [
    ([], "cells is empty"),
    ([dict(train_subset=256, width=4, pretrain_epochs=2, tune_epochs=2)], "no cell at the base train_subset 512"),
    ([dict(train_subset=512, width=4, pretrain_epochs=2, tune_epochs=2)] * 2, "two cells at the same"),
    ([dict(train_subset=512, width=4, pretrain_epochs=2, tune_epochs=0)], "tune_epochs"),
])
def test_a_bad_grid_is_refused_naming_it(cells, culprit):
    with pytest.raises(ConfigError, match=culprit):
        scale.Config.from_preset("smoke", cells=cells)


def constructed_result(config, gap_of) -> StudyResult:
    """A study result whose arms both fit, with the gap of each (cell, seed) from `gap_of`."""
    rows = []
    for cell in config.cells:
        for seed in config.seeds:
            gap = gap_of(cell, seed)
            for arm, acc in (("scratch", 50.0 + gap), ("warm", 50.0)):
                rows.append(dict(train_subset=cell.train_subset, width=cell.width, seed=seed, arm=arm,
                                 final_test_acc=acc, window_train_acc=99.0 + 0.1 * seed, status="finished",
                                 capped=False))
    summary = pd.DataFrame(rows)
    conditions = scale.Config.CONDITIONS
    return StudyResult(pd.DataFrame(), pd.DataFrame(), summary, paired_gaps(summary, conditions), pd.DataFrame(),
                       conditions, config.last_k)


def test_the_claims_read_each_axis_through_the_base_cell():
    config = scale.Config.from_preset("quick", seeds=[400, 401, 402, 403])
    rng = np.random.default_rng(1)
    noise = {(c.train_subset, c.width, s): rng.normal(0, 0.3) for c in config.cells for s in config.seeds}
    # the gap falls by 3 pp per doubling of data and does not change with width
    result = constructed_result(config, lambda c, s: 10 - 3 * math.log2(c.train_subset / 2500) + s % 2
                                + noise[(c.train_subset, c.width, s)])
    found = {r.claim: r for r in scale.claims(result, config)}
    assert found["C17a"].verdict == ESTIMATE and found["C17a"].primary.kind == "estimate"
    assert found["C17a"].primary.estimate.mean == pytest.approx(-3, abs=0.5)  # the slope, per doubling
    bound = found["C17a"].others[0]  # the trend bound the claim was registered with, beside it and as `earlier`
    assert bound.kind == "trend" and bound.verdict == NOT_SUPPORTED and found["C17a"].earlier.primary == bound
    assert [t.label for t in found["C17a"].others[1:]] == [f"train_subset={n}, width=8" for n in SIZES]
    assert found["C17b"].primary.estimate.mean == pytest.approx(0, abs=1)
    assert found["C17a"].premise.met and found["C17b"].premise.met


def test_an_axis_with_one_cell_has_no_claim():
    grid = [dict(train_subset=512, width=4, pretrain_epochs=2, tune_epochs=2),
            dict(train_subset=256, width=4, pretrain_epochs=2, tune_epochs=2)]
    config = scale.Config.from_preset("smoke", cells=grid)
    result = constructed_result(config, lambda c, s: 1.0 + s)
    assert [r.claim for r in scale.claims(result, config)] == ["C17a"]


def test_the_gpu_preset_is_the_scale_studys_alone_and_another_notebook_refuses_it_by_name():
    from plasticity_nb.batch.cli import validate_params
    from plasticity_nb.batch.notebook_cache import parameter_names
    from plasticity_nb.studies import STUDIES

    study = STUDIES["01"]
    with pytest.raises(ConfigError, match="notebook 01_warm_start_gap: unknown preset 'gpu'"):
        validate_params([study], "gpu", {}, {study.id: parameter_names(study.path)})
    validate_params([STUDIES["12"]], "gpu", {}, {"12": parameter_names(STUDIES["12"].path)})
