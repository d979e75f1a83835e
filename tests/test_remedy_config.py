"""How a remedy study (notebooks 10 and 11) is told which remedies to run and with which settings, and that the
run keys its plans give stay those its stored runs live under."""
import dataclasses
import hashlib
import json

import pytest

from plasticity_nb.core.config import ConfigError
from plasticity_nb.remedies.cbp import ContinualBackpropSettings
from plasticity_nb.remedies.dash import Dash
from plasticity_nb.remedies.hare_tortoise import HareTortoise
from plasticity_nb.remedies.redo import ReDo
from plasticity_nb.remedies.shrink_perturb import ShrinkPerturb
from plasticity_nb.studies import STUDIES, newer_remedies, pretraining_duration, remedies
from plasticity_nb.studies.remedies import Augment, WeightDecay
from tests.own_remedy import ScaleHead  # noqa: F401 (registers scale_head: a user's remedy of no budget rule)

# Digests of the plans (each run's labels and RunConfig key, in plan order) computed on main at d5300d6, before the
# remedies parameter replaced notebook 10's flattened fields: every stored run of these configs keeps its key.
# quick's precision is "auto" (this machine's), so it is pinned at fp32. Every study's presets: test_plan_keys.py.
PLANS_BEFORE = {"smoke": "ca63c9a0a6d1a1fb", "quick": "174da301267b4776"}  # notebook 10's presets
# quick with every flattened field of notebook 10 away from its preset's value (old notebooks' parameters)
OLD_FIELDS = dict(sp_shrink=0.5, sp_perturb=0.02, dash_alpha=0.2, dash_shrink_floor=0.4, l2_init_coefficient=1e-3,
                  redo_tau=0.05, redo_every=100, cbp_replacement_rate=1e-3, cbp_maturity=50,
                  regulariser_weight_decay=1e-3)
OLD_FIELDS_BEFORE = "8760c50dec02d7af"
# A remedy named without settings of its own (the list form) took the preset's values of the flattened fields
# (ReDo's period, continual backprop's rate and maturity per preset), and a remedy of 2024 its `for_budget`.
NAMED_BEFORE = {"smoke": "7d456834c23ea5d3", "quick": "d38e2ae717b330b8"}  # remedies=["redo", "cbp", "weight_decay"]
NEWER_NAMED_BEFORE = "27a1d97b35d535c4"  # 11 at quick: hare_tortoise, soft_shrink_perturb, redo, with redo_tau=0.2
USER_REMEDY_BEFORE = {("scale_head",): "8c347fec2b3e68cd",
                      ("scale_head", "redo", "soft_shrink_perturb", "weight_decay"): "7b1bbca082e453f9"}


def settings(config) -> dict:
    """What each remedy of `config` runs with (a dict of fields and the settings it describes are two spellings)."""
    return {name: config.settings(name) for name in config.remedies}


def digest(config) -> str:
    plan = [(labels, run.key()) for labels, run in config.plan()]
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def test_notebook_10s_presets_plan_the_runs_they_planned_before():
    assert {p: digest(remedies.Config.from_preset(p, precision="fp32")) for p in PLANS_BEFORE} == PLANS_BEFORE


def test_old_notebooks_parameters_plan_the_runs_they_planned_before():
    assert digest(remedies.Config.from_preset("quick", precision="fp32", **OLD_FIELDS)) == OLD_FIELDS_BEFORE


def test_a_users_remedy_plans_the_runs_it_planned_before():
    for names, before in USER_REMEDY_BEFORE.items():
        assert digest(remedies.Config.from_preset("smoke", remedies=list(names))) == before


def test_the_acting_order_is_declared_not_taken_from_the_registrys_insertion_order():
    from plasticity_nb.remedies.builtin import BUILTIN
    from plasticity_nb.run.remedy import ACTING_ORDER, REGISTRY
    from plasticity_nb.run.run_config import Phase

    assert sorted(ACTING_ORDER) == sorted(kind.NAME for kind in BUILTIN)  # every built-in has its declared place
    every = tuple(REGISTRY[name]() for name in ("scale_head", *reversed(ACTING_ORDER)))
    before = dict(REGISTRY)
    try:  # the registry in the reverse of the acting order, as registration in another import order leaves it
        REGISTRY.clear()
        REGISTRY.update(reversed(before.items()))
        assert Phase(remedies=every).remedy_names == (*ACTING_ORDER, "scale_head")  # a user's remedy acts last
    finally:
        REGISTRY.clear()
        REGISTRY.update(before)
    assert Phase(remedies=every).remedy_names == (*ACTING_ORDER, "scale_head")


# OLD_FIELDS in the new spelling: each remedy's own settings (its type's, or a dict of its fields)
MAPPED = {"shrink_perturb": {"shrink": 0.5, "perturb": 0.02}, "dash": Dash(alpha=0.2, shrink_floor=0.4),
          "l2_init": {"coefficient": 1e-3}, "redo": {"tau": 0.05, "every": 100},
          "cbp": ContinualBackpropSettings(replacement_rate=1e-3, maturity_threshold=50), "augment": None,
          "weight_decay": WeightDecay(coefficient=1e-3)}


def test_one_mapping_gives_each_remedy_its_own_settings():
    config = remedies.Config.from_preset("quick", precision="fp32", remedies=MAPPED)
    assert digest(config) == OLD_FIELDS_BEFORE  # the runs the flattened fields planned
    assert tuple(config.remedies) == tuple(MAPPED) and "dash" in config.remedies  # read as a list of names
    assert config.settings("shrink_perturb") == ShrinkPerturb(shrink=0.5, perturb=0.02)
    assert config.settings("redo") == ReDo(tau=0.05, every=100)
    assert config.settings("weight_decay") == WeightDecay(coefficient=1e-3)
    warm, scratch = config.arms("weight_decay")  # a regulariser: both arms, through its own settings type
    assert warm["weight_decay"] == scratch["weight_decay"] == 1e-3
    assert digest(remedies.Config.from_preset("paper", remedies=MAPPED)) != digest(remedies.Config.from_preset("paper"))


def test_a_list_of_names_or_of_settings_stays_accepted():
    names = remedies.Config.from_preset("smoke", remedies=["shrink_perturb", "l2_init", "augment"])
    assert digest(names.replace(precision="fp32")) == PLANS_BEFORE["smoke"]
    given = remedies.Config.from_preset("smoke", remedies=[ShrinkPerturb(shrink=0.5), "augment"])
    mapped = remedies.Config.from_preset("smoke", remedies={"shrink_perturb": {"shrink": 0.5}, "augment": None})
    assert settings(given) == settings(mapped) == {"shrink_perturb": ShrinkPerturb(shrink=0.5), "augment": Augment()}
    assert digest(given) == digest(mapped)


def test_a_remedy_named_without_settings_takes_the_presets_or_its_own_budget_rule():
    for preset, before in NAMED_BEFORE.items():
        named = remedies.Config.from_preset(preset, precision="fp32", remedies=["redo", "cbp", "weight_decay"])
        assert digest(named) == before
    quick = remedies.Config.from_preset("quick", remedies=["redo", "cbp"])
    assert quick.settings("redo") == ReDo(every=200)  # AT_PRESET: scaled to quick's budget
    assert quick.settings("cbp") == ContinualBackpropSettings(replacement_rate=1e-4, maturity_threshold=100)
    assert remedies.Config.from_preset("quick", remedies={"redo": {"tau": 0.2}}).settings("redo") == ReDo(
        tau=0.2, every=200)  # a dict changes the preset's settings, field by field
    newer = newer_remedies.Config.from_preset("quick", precision="fp32", redo_tau=0.2,
                                              remedies=["hare_tortoise", "soft_shrink_perturb", "redo"])
    assert digest(newer) == NEWER_NAMED_BEFORE
    scaled = HareTortoise.for_budget(newer.tuning_budget())
    assert newer.settings("hare_tortoise") == scaled and scaled != HareTortoise()
    changed = newer.replace(remedies={"hare_tortoise": {"reset_every": 5}})
    assert changed.settings("hare_tortoise") == dataclasses.replace(scaled, reset_every=5)  # still its budget's beta
    assert changed.replace(tune_epochs=10).settings("hare_tortoise") == dataclasses.replace(
        HareTortoise.for_budget(changed.replace(tune_epochs=10).tuning_budget()), reset_every=5)


@pytest.mark.parametrize("given,culprit", [
    ({"redo": {"evry": 5}}, "remedies['redo']: unknown parameter 'evry' for ReDo (did you mean 'every'?)"),
    ({"redo": {"every": 0}}, "remedies['redo']: every must be > 0, got 0"),
    ({"hare_tortoise": {"beta": 1.0}}, "remedies['hare_tortoise']: beta must be in [0, 1), got 1.0"),
    ({"weight_decay": {"coefficient": "high"}}, "remedies['weight_decay']: WeightDecay.coefficient must be float"),
    ({"redo": Dash()}, "remedies['redo'] must be ReDo settings, a dict of their fields or None"),
    (["redo", "no_such"], "remedies has 'no_such', which is neither a registered remedy"),
    (["redo", "redo"], "remedies has duplicates: ['redo', 'redo']"),
    ([], "remedies is empty"),
    ("redo", "remedies must be a list of remedy names or a mapping"),
])
def test_each_remedys_settings_are_validated_by_its_own_type_naming_it_and_the_field(given, culprit):
    for build in (lambda: newer_remedies.Config.from_preset("smoke", remedies=given),
                  lambda: newer_remedies.Config.from_preset("smoke").replace(remedies=given)):
        with pytest.raises(ConfigError) as raised:
            build()
        assert str(raised.value).startswith(culprit), raised.value


def test_old_notebooks_flattened_parameters_are_read_as_their_remedys_fields_or_refused_by_name():
    namespace = {"preset": "quick", "precision": "fp32", "remedies": None, **OLD_FIELDS}  # papermill's injection
    read = remedies.Config.from_notebook("quick", namespace)
    assert settings(read) == settings(remedies.Config.from_preset("quick", remedies=MAPPED))
    assert digest(read) == OLD_FIELDS_BEFORE
    left_at_none = {**namespace, **dict.fromkeys(OLD_FIELDS)}  # an old notebook's own parameters cell
    assert digest(remedies.Config.from_notebook("quick", left_at_none)) == PLANS_BEFORE["quick"]
    refused = [
        (lambda: remedies.Config.from_preset("smoke", cbp_maturity=5),
         "cbp_maturity sets cbp's maturity_threshold, but remedies does not run cbp: name it there with its "
         "settings, remedies={'cbp': {'maturity_threshold': 5}} (cbp_maturity's new spelling)"),
        (lambda: remedies.Config.from_preset("quick", redo_every=5, remedies={"redo": {"every": 7}}),
         "redo_every and remedies['redo'] both set redo's every: give it once"),
        (lambda: remedies.Config.from_preset("quick", sp_shrink=-1),
         "sp_shrink (now remedies={'shrink_perturb': {'shrink': -1}}): shrink must be >= 0, got -1"),
        (lambda: remedies.Config.from_preset("quick").replace(dash_alpha=0.5),
         "dash_alpha is now remedies={'dash': {'alpha': ...}}"),
    ]
    for build, culprit in refused:
        with pytest.raises(ConfigError) as raised:
            build()
        assert str(raised.value).startswith(culprit), raised.value


@dataclasses.dataclass(frozen=True, kw_only=True)
class PickedDurations(pretraining_duration.Config):
    """Notebook 02's sweep as options to pick: a study the explorer has never heard of."""

    def offers(self) -> tuple[int, ...]:
        return self.pretrain_epochs_sweep

    def offering(self, picked):
        picked = list(picked)
        return self.replace(pretrain_epochs_sweep=picked, few_epochs=picked[0])


def test_the_explorer_lists_what_each_study_offers_from_its_own_config():
    from plasticity_nb.views.explorer import stored_offers

    offering = {sid for sid, study in STUDIES.items() if study.config.from_preset("smoke").offers()}
    assert offering == {"10", "11", "13"}
    assert STUDIES["10"].config.from_preset("quick").offers() == remedies.BUILTIN_CONDITIONS
    quick = remedies.Config.from_preset("quick", remedies={"redo": {"tau": 0.2}, "dash": None, "augment": None})
    stored = {run.key() for _, run in quick.offering(["redo", "augment"]).plan()}
    narrowed = stored_offers(quick, "", stored)  # the store holds two of its three remedies, and the plain pair
    assert narrowed.offers() == ("redo", "augment") and narrowed.settings("redo") == ReDo(tau=0.2, every=200)
    assert stored_offers(quick, "", set()) == quick  # none stored: the whole study counts as missing
    durations = PickedDurations.from_preset("smoke")
    assert stored_offers(durations, "", {run.key() for _, run in durations.offering([2]).plan()}).offers() == (2,)


def test_a_bundle_of_an_old_notebook_opens_at_the_parameters_it_ran_with(tmp_path):
    """A bundle records the parameters its notebooks ran with: an older notebook 10's flattened ones still give the
    config, and so the run keys, it trained."""
    from plasticity_nb.core.paths import BUNDLE
    from plasticity_nb.execution import bundle

    ran = {"preset": "quick", **OLD_FIELDS}
    (tmp_path / BUNDLE).write_text(json.dumps({"bundle": bundle.FORMAT, "precision": "fp32",
                                                      "notebooks": {"10_remedies": ran}}))
    assert digest(bundle.study_config(remedies.Config, "10_remedies", "quick", tmp_path)) == OLD_FIELDS_BEFORE


def test_an_older_notebooks_module_named_like_a_parameter_is_not_read_as_its_value():
    """Notebook 11 imported notebook 10's study `as protocol` before `protocol` was a parameter: an old copy still
    builds its config."""
    import types

    from plasticity_nb.studies import newer_remedies

    namespace = {"protocol": types.ModuleType("plasticity_nb.studies.remedies"), "remedies": ["fire"]}
    config = newer_remedies.Config.from_notebook("quick", namespace)
    assert config.protocol == "ours" and "fire" in config.remedies
