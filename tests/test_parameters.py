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
SET_BY_OPTIONS = {"preset", "data_dir", "out_dir", "executor", "ray_address", "ensemble"}  # the CLI's own options


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


def test_a_remedy_that_is_not_swept_still_has_its_hyperparameters_checked():
    study = STUDIES["10"]
    assert "redo" not in study.config.from_preset("smoke").remedies
    for name, value, culprit in [("redo_tau", -0.1, "redo_tau must be >= 0"),
                                 ("cbp_replacement_rate", 1.5, "cbp_replacement_rate must be in [0, 1]"),
                                 ("l2_init_coefficient", 0, "l2_init_coefficient must be > 0, got 0.0 (the range of "
                                                            "L2Init.coefficient)")]:
        with pytest.raises(ConfigError, match=r"^notebook 10_remedies: " + culprit.replace("[", r"\[")
                           .replace("(", r"\(").replace(")", r"\)")):
            validate(study, {name: value})
