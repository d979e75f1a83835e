import pytest

from plasticity_nb import ConfigError, Phase, RunConfig, WarmStartConfig
from tests.helpers import tiny_run


@pytest.mark.parametrize("overrides,culprit", [
    (dict(optimizer="adamw"), "optimizer is 'adamw'"),
    (dict(lr=0), "lr must be > 0"),
    (dict(lr=-1e-3), "lr must be > 0"),
    (dict(lr="fast"), "lr must be float"),
    (dict(batch_size=0), "batch_size must be > 0"),
    (dict(batch_size=2.5), "batch_size must be int"),
    (dict(seeds=[]), "seeds is empty"),
    (dict(seeds=[1, 1]), "seeds has duplicates"),
    (dict(seeds=3), "seeds must be a list"),
    (dict(model="vgg"), "model is 'vgg'"),
    (dict(depth=0), "depth must be > 0"),
    (dict(width=0), "width must be > 0"),
    (dict(train_subset=60000), "train_subset must be in (0, 50000], got 60000"),
    (dict(train_subset=100, batch_size=64), "batch_size 64 exceeds the 50 examples"),
    (dict(last_k=3, tune_epochs=2), "last_k 3 exceeds tune_epochs 2"),
    (dict(augment=1), "augment must be bool"),
])
def test_bad_values_get_one_clear_error(overrides, culprit):
    with pytest.raises(ConfigError, match=culprit.replace("(", r"\(")):
        WarmStartConfig.from_preset("smoke", **overrides)


def test_unknown_parameter_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown parameter 'optimiser'.*did you mean 'optimizer'"):
        WarmStartConfig.from_preset("smoke", optimiser="sgd")
    with pytest.raises(ConfigError, match="unknown parameter 'learning_rate'.*known: seeds"):
        WarmStartConfig.from_preset("smoke", learning_rate=0.1)


def test_bad_preset_is_named():
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*smoke, quick, paper"):
        WarmStartConfig.from_preset("fast")


def test_preset_fills_what_is_left_at_none():
    config = WarmStartConfig.from_preset("quick", lr=None, seeds=[7, 8, 9], width=None)
    assert config.seeds == (7, 8, 9) and config.lr == 1e-3 and config.width == WarmStartConfig.PRESETS["quick"]["width"]
    assert isinstance(config.lr, float) and WarmStartConfig.from_preset("quick", lr=1).lr == 1.0


def test_paper_preset_is_the_papers_setting():
    paper = WarmStartConfig.from_preset("paper")
    assert (paper.model, paper.depth, paper.width, paper.optimizer, paper.lr, paper.batch_size) == \
        ("resnet", 2, 64, "adam", 1e-3, 128)
    assert (paper.train_subset, paper.pretrain_epochs, paper.tune_epochs, paper.last_k, paper.augment) == \
        (50000, 350, 500, 100, False)


def test_key_is_stable_and_covers_every_field():
    base = tiny_run()
    assert base.key() == tiny_run().key()
    assert len({base.key(), tiny_run(seed=1).key(), tiny_run(width=5).key(), tiny_run(data_id="x").key(),
                tiny_run(phases=(Phase(epochs=2),)).key()}) == 5


# Keys computed on main at 2d9e3b0, before runs named their dataset: a CIFAR-10 run (the default dataset, left out
# of the key as every field at its default is) must keep the key its stored results live under.
KEYS_BEFORE_DATASETS = {
    "tiny": "fd118ffb3082fa88", "tiny, data_id": "7d43d5d780d6fcff", "default": "3728f6f021ccab0a",
    "01 smoke plan": ["a87cf26d1669d300", "8c83a5897e0f827d", "97d69e5593d65506", "0f115d34996ccdb7"],
}


def test_cifar10_runs_keep_the_keys_they_had_before_other_datasets():
    plan = WarmStartConfig.from_preset("smoke", precision="fp32").plan("npz-0123456789ab")
    now = {"tiny": tiny_run().key(), "tiny, data_id": tiny_run(data_id="npz-0123456789ab").key(),
           "default": RunConfig(phases=(Phase(),)).key(), "01 smoke plan": [c.key() for _, c in plan]}
    assert now == KEYS_BEFORE_DATASETS
    assert tiny_run(dataset="cifar10").key() == tiny_run().key()
    assert len({tiny_run(dataset=name).key() for name in ("cifar10", "cifar100", "svhn")}) == 3


def test_round_trip_through_json():
    config = tiny_run()
    assert type(config).from_dict(config.to_dict()) == config


def test_nested_phase_is_validated():
    with pytest.raises(ConfigError, match="pool is 'quarter'"):
        tiny_run(phases=[{"pool": "quarter"}])


def test_a_versioned_setting_is_in_the_key_even_at_its_default():
    """A definition change (e.g. to follow the authors' code) gives its runs new keys, defaults included."""
    from plasticity_nb.measures.metric_settings import MetricSettings
    from plasticity_nb.remedies.dash import Dash
    from plasticity_nb.remedies.l2_init import L2Init

    assert L2Init().identity() == {"version": 2} and Dash(alpha=0.5).identity() == {"alpha": 0.5, "version": 2}
    assert MetricSettings().identity() == {"version": 3}
    with_l2 = tiny_run(phases=(Phase(pool="half", epochs=1), Phase(pool="full", epochs=1, remedies=(L2Init(),))))
    assert with_l2.key() != tiny_run().key()
    with pytest.raises(ConfigError, match="version"):
        L2Init(version=1)  # the old definition is no longer trained
    assert L2Init.from_dict({"coefficient": 0.01}).version == 2  # a config stored before versions still loads
