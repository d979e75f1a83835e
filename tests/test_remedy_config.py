"""How a remedy study (notebooks 10 and 11) is told which remedies to run and with which settings, and that the
run keys its plans give stay those its stored runs live under."""
import hashlib
import json

from plasticity_nb.studies import newer_remedies, remedies
from tests.own_remedy import ScaleHead  # noqa: F401 (registers scale_head: a user's remedy of no budget rule)

# Digests of the plans (each run's labels and RunConfig key, in plan order) computed on main at d5300d6, before the
# remedies parameter replaced notebook 10's flattened fields: every stored run of these configs keeps its key.
# quick's precision is "auto" (this machine's), so it is pinned at fp32; smoke and paper name theirs.
PLANS_BEFORE = {
    ("10", "smoke"): "ca63c9a0a6d1a1fb", ("10", "quick"): "174da301267b4776", ("10", "paper"): "b761413e8f2025a9",
    ("11", "smoke"): "44ad6ae7427eff38", ("11", "quick"): "fc39b0512c7cdfb1", ("11", "paper"): "5855c2928485ef0e",
}
# quick with every flattened field of notebook 10 away from its preset's value (old notebooks' parameters)
OLD_FIELDS = dict(sp_shrink=0.5, sp_perturb=0.02, dash_alpha=0.2, dash_shrink_floor=0.4, l2_init_coefficient=1e-3,
                  redo_tau=0.05, redo_every=100, cbp_replacement_rate=1e-3, cbp_maturity=50,
                  regulariser_weight_decay=1e-3)
OLD_FIELDS_BEFORE = "8760c50dec02d7af"
USER_REMEDY_BEFORE = {("scale_head",): "8c347fec2b3e68cd",
                      ("scale_head", "redo", "soft_shrink_perturb", "weight_decay"): "7b1bbca082e453f9"}
STUDY = {"10": remedies, "11": newer_remedies}
PRECISION = {"quick": "fp32"}


def digest(config) -> str:
    plan = [(labels, run.key()) for labels, run in config.plan()]
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def test_every_preset_plans_the_runs_it_planned_before():
    now = {(sid, preset): digest(STUDY[sid].Config.from_preset(preset, precision=PRECISION.get(preset)))
           for sid, preset in PLANS_BEFORE}
    assert now == PLANS_BEFORE


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
