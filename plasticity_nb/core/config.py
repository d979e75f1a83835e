"""Typed, validated configs: the base class every run and study config derives from.

Like nanoGPT's configurator, but on dataclasses: a field's type annotation is the contract. Building a
config checks every field's type (ints are accepted where floats are expected, lists where tuples are),
rejects unknown names with a suggestion, checks every field's declared `Range` (declared once, on the field of
the settings type it belongs to, `ranged`; a study parameter that sets such a field shares it, `range_of`), and
runs the class's own `check()` for what relates fields. Messages name the field, which for a study config is the
notebook parameter. A config converts to plain JSON and back, and its hash names its results in the run store.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import hashlib
import json
import types
import typing
from typing import Any, ClassVar, TypeVar

SCHEMA_VERSION = 1  # bump when the meaning of a stored config changes, so old results stop matching

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A parameter has the wrong name, type or value. The message names the culprit."""


@dataclasses.dataclass(frozen=True)
class Range:
    """A field's valid values: bounds, or a list of choices. A tuple field's range holds for each of its values;
    None (a field that is off) is always valid."""

    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    le: float | None = None  # value <= le
    lt: float | None = None  # value < lt
    choices: tuple | None = None  # value is one of these

    def admits(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return not ((self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
                    or (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt))

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        low = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else None
        high = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]

    def outside(self) -> list[Any]:
        """Values just outside the range (what a test tries)."""
        if self.choices is not None:
            return ["not-a-choice"]
        return [v for v in (_below(self.ge, 1), self.gt, _above(self.le, 1), self.lt) if v is not None]


def _below(bound: float | None, step: int) -> float | None:
    return None if bound is None else bound - step


def _above(bound: float | None, step: int) -> float | None:
    return None if bound is None else bound + step


RANGE, OWNER = "range", "range_owner"  # dataclass field metadata: its Range, and whose field declared it
VERSION = "version"  # dataclass field metadata: the field is a definition's version (`versioned`)


def ranged(default: Any = dataclasses.MISSING, **bounds: Any) -> Any:
    """A config field with a declared Range: `epochs: int = ranged(1, gt=0)`; `choices=` for a list."""
    if "choices" in bounds:
        bounds["choices"] = tuple(bounds["choices"])
    return dataclasses.field(default=default, metadata={RANGE: Range(**bounds)})


def versioned(current: int) -> Any:
    """A settings type's definition version, bumped when what it computes changes (e.g. to follow its authors'
    code): unlike other fields it is in the key even at its default, so runs of the new definition never reuse
    results stored under the old one. Only the current version can be built."""
    return dataclasses.field(default=current, metadata={RANGE: Range(choices=(current,)), VERSION: True})


def range_of(owner: type, name: str, default: Any = dataclasses.MISSING) -> Any:
    """A field that sets (or sweeps) `owner.name` shares its Range; messages name both."""
    declared = next(f for f in dataclasses.fields(owner) if f.name == name).metadata[RANGE]
    return dataclasses.field(default=default, metadata={RANGE: declared, OWNER: f"{owner.__name__}.{name}"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    # Presets of a study config: {"smoke": {...}, "quick": {...}, "paper": {...}}; empty for run configs.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    # Parameters it no longer has, each with its new spelling: a notebook's are read (`from_notebook`) for the
    # class's `from_preset` to translate, and anywhere else they are refused naming the new spelling.
    RETIRED: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _coerce(getattr(self, field.name), hints[field.name], f"{type(self).__name__}.{field.name}")
            object.__setattr__(self, field.name, value)
            check_range(field, value)
        self.check()

    def check(self) -> None:
        """Value checks beyond types; subclasses raise ConfigError naming the field."""

    # -- building ------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        reject_unknown(cls, values)
        return cls(**values)

    @classmethod
    def from_preset(cls: type[C], preset: str, **overrides: Any) -> C:
        """The preset's values, with every override that is not None taking precedence."""
        if preset not in cls.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(cls.PRESETS)}")
        reject_unknown(cls, overrides)
        values = {**cls.PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{cls.__name__}: preset {preset!r} leaves {', '.join(missing)} unset")
        return cls(**values)

    @classmethod
    def from_notebook(cls: type[C], preset: str, namespace: dict[str, Any]) -> C:
        """The preset, overridden by the notebook parameters named like this config's fields or its RETIRED ones
        (None = keep)."""
        names = [*(f.name for f in dataclasses.fields(cls)), *cls.RETIRED]
        # A module is never a parameter's value: a notebook's import may share a field's name.
        return cls.from_preset(preset, **{k: namespace[k] for k in names
                                          if k in namespace and not isinstance(namespace[k], types.ModuleType)})

    def replace(self: C, **changes: Any) -> C:
        reject_unknown(type(self), changes)
        return dataclasses.replace(self, **changes)

    # -- identity ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored form: plain JSON values (tuples as lists), nested configs in their own `to_dict` form."""
        return json.loads(json.dumps({f.name: _stored(getattr(self, f.name)) for f in dataclasses.fields(self)}))

    def key(self) -> str:
        """Hash of the full config (and schema version): the run store's folder name.

        Fields at their default value are left out, so that adding an option whose default keeps the old
        behaviour does not invalidate stored runs. Changing a default's meaning needs SCHEMA_VERSION bumped.
        """
        canonical = json.dumps({"schema": SCHEMA_VERSION, "type": type(self).__name__, **self.identity()},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        """`to_dict()` without the fields that hold their default value (recursively)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            at_default = field.default is not dataclasses.MISSING and value == field.default
            if at_default and not field.metadata.get(VERSION):
                continue
            out[field.name] = _identity(value)
        return json.loads(json.dumps(out))


def _identity(value: Any) -> Any:
    if isinstance(value, Config):
        return value.identity()
    if isinstance(value, tuple) and value and isinstance(value[0], Config):
        return [v.identity() for v in value]
    if isinstance(value, collections.abc.Mapping):
        return {k: _identity(v) for k, v in value.items()}
    return value


def _stored(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_stored(v) for v in value]
    if isinstance(value, collections.abc.Mapping):
        return {k: _stored(v) for k, v in value.items()}
    return value


def reject_unknown(cls: type, values: dict[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key in getattr(cls, "RETIRED", {}):
            raise ConfigError(f"{key} is now {cls.RETIRED[key]}")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown parameter {key!r} for {cls.__name__}{hint}; known: {', '.join(names)}")


def check_range(field: dataclasses.Field, value: Any) -> None:
    """The field's declared Range, if any, for its value (each value of a tuple)."""
    declared = field.metadata.get(RANGE)
    if declared is not None:
        owner = f" (the range of {field.metadata[OWNER]})" if OWNER in field.metadata else ""
        check_within(field.name, value, declared, owner)


def check_within(name: str, value: Any, declared: Range, why: str = "") -> None:
    """`value` (each value of a tuple) within `declared`, else a ConfigError naming `name`, ending with `why`. Also
    for a range that depends on other fields (a run's dataset sets how large its subsets may be)."""
    values = value if isinstance(value, tuple) else (value,)
    bad = [v for v in values if v is not None and not declared.admits(v)]
    if not bad:
        return
    if declared.choices is not None:
        choices = ", ".join(map(repr, declared.choices))
        culprit = f"has {bad[0]!r}" if isinstance(value, tuple) else f"is {value!r}"
        raise ConfigError(f"{name} {culprit}: choose {'each ' if isinstance(value, tuple) else ''}from {choices}{why}")
    if isinstance(value, tuple):
        raise ConfigError(f"{name} has {bad[0]!r} in {list(value)}: each must be {declared.describe()}{why}")
    raise ConfigError(f"{name} must be {declared.describe()}, got {value!r}{why}")


def check_choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} is {value!r}: choose one of {', '.join(map(repr, choices))}")


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        errors = []
        for arm in arms:
            try:
                return _coerce(value, arm, name)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{name} must be {_describe(hint)}, got {value!r}") from errors[0]
    if origin is collections.abc.Mapping:  # a config whose field maps names to values checks them itself
        if not isinstance(value, collections.abc.Mapping):
            raise ConfigError(f"{name} must be a mapping of {_describe(args[0])} to {_describe(args[1])}, "
                              f"got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list of {_describe(args[0])}, got {value!r}")
        return tuple(_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return hint.from_dict(value)
        raise ConfigError(f"{name} must be a {hint.__name__} or a dict of its fields, got {value!r}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (bool, str) and isinstance(value, hint):
        return value
    raise ConfigError(f"{name} must be {_describe(hint)}, got {type(value).__name__} {value!r}")
