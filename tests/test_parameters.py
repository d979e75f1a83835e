"""Every notebook parameter is checked, and its error names it: for each notebook, each parameter with a declared
range is tried just outside it (in-process, as the batch CLI validates before anything runs), whether or not the
selected conditions use it; the parameters without a range are type-checked booleans, execution settings or
relations between parameters, each tried with a bad value too."""
import dataclasses
import typing

import pytest

from plasticity_nb.batch.cli import UsageError, validate_params
from plasticity_nb.batch.notebook_cache import parameter_names
from plasticity_nb.core.config import RANGE, ConfigError
from plasticity_nb.studies import EXECUTION_PARAMETERS, STUDIES

# Parameters whose rule relates them to others, with a value that breaks it at the smoke preset.
RELATIONS = {"few_epochs": 7, "shift_stages": 3, "last_k": 50, "remedies": ["no_such_remedy"], "cells": []}
EXECUTION = {"workers": 0, "device": "tpu", "progress": "yes"}  # checked by the CLI (cli.check_execution_param)
SET_BY_OPTIONS = {"preset", "data_dir", "out_dir", "executor", "ray_address", "ensemble", "compile"}  # own options


def fields(study):
    names = parameter_names(study.path)
    return [f for f in dataclasses.fields(study.config) if f.name in names]


def out_of_range(study):
    """(name, value) for every value just outside a declared range of one of the notebook's parameters."""
    hints = typing.get_type_hints(study.config)
    for field in fields(study):
        declared = field.metadata.get(RANGE)
        for value in declared.outside() if declared else ():
            yield field.name, [value] if typing.get_origin(hints[field.name]) is tuple else value


CASES = [(sid, name, value) for sid, study in STUDIES.items() for name, value in out_of_range(study)]


def validate(study, params):
    validate_params([study], "smoke", params, {study.id: parameter_names(study.path)})


@pytest.mark.parametrize("study_id,name,value", CASES, ids=[f"{s}-{n}={v!r}" for s, n, v in CASES])
def test_a_value_outside_a_declared_range_is_rejected_naming_its_parameter(study_id, name, value):
    with pytest.raises(ConfigError) as raised:
        validate(STUDIES[study_id], {name: value})
    assert str(raised.value).startswith(f"notebook {STUDIES[study_id].stem}: {name} "), raised.value


@pytest.mark.parametrize("study_id", list(STUDIES))
def test_every_parameter_has_a_check(study_id):
    study = STUDIES[study_id]
    hints = typing.get_type_hints(study.config)
    unchecked = [f.name for f in fields(study) if RANGE not in f.metadata and hints[f.name] is not bool
                 and f.name not in RELATIONS]
    assert unchecked == []
    rest = parameter_names(study.path) - {f.name for f in fields(study)}
    assert rest <= set(EXECUTION) | SET_BY_OPTIONS and set(EXECUTION) | SET_BY_OPTIONS <= set(EXECUTION_PARAMETERS)
    for name in {f.name for f in fields(study)} & set(RELATIONS):
        with pytest.raises(ConfigError, match=f"notebook {study.stem}: {name} "):
            validate(study, {name: RELATIONS[name]})
    for name, value in EXECUTION.items():
        with pytest.raises(UsageError, match=f"^{name} must be"):
            validate(study, {name: value})


def test_a_remedys_settings_are_checked_naming_the_remedy_and_its_field():
    study = STUDIES["10"]
    for remedies, culprit in [
            ({"redo": {"tau": -0.1}}, "remedies['redo']: tau must be >= 0"),
            ({"cbp": {"replacement_rate": 1.5}}, "remedies['cbp']: replacement_rate must be in [0, 1]"),
            ({"weight_decay": {"coefficient": 0}}, "remedies['weight_decay']: coefficient must be > 0"),
            ({"l2_init": {"coeficient": 1e-3}}, "remedies['l2_init']: unknown parameter 'coeficient' for L2Init (did "
                                                "you mean 'coefficient'?)")]:
        with pytest.raises(ConfigError) as raised:
            validate(study, {"remedies": remedies})
        assert str(raised.value).startswith(f"notebook 10_remedies: {culprit}"), raised.value


def test_an_old_notebooks_parameter_of_one_remedy_is_checked_naming_it_and_its_new_spelling():
    """The batch passes a parameter notebook 10 no longer has (an older copy's) to the config, which reads it as its
    remedy's field: a bad value, or a remedy the study does not run, is refused naming both spellings."""
    study = STUDIES["10"]
    assert "redo" not in study.config.from_preset("smoke").remedies
    for name, value, culprit in [("l2_init_coefficient", 0, "l2_init_coefficient (now remedies={'l2_init': "
                                                            "{'coefficient': 0}}): coefficient must be > 0, got 0.0"),
                                 ("redo_tau", 0.2, "redo_tau sets redo's tau, but remedies does not run redo: name it "
                                                   "there with its settings, remedies={'redo': {'tau': 0.2}}")]:
        with pytest.raises(ConfigError) as raised:
            validate(study, {name: value})
        assert str(raised.value).startswith(f"notebook 10_remedies: {culprit}"), raised.value
    assert validate_params([study], "smoke", {"sp_shrink": 0.5}, {study.id: parameter_names(study.path)}) == {
        "10": {"sp_shrink": 0.5}}
    with pytest.raises(UsageError, match="unknown parameter 'sp_shrink'"):  # a notebook that never had it
        validate(STUDIES["01"], {"sp_shrink": 0.5})
