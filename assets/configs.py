"""Dagster run config made from the stages' own settings dataclasses.

Each setting is defined once, in the plain dataclass its logic reads (``GeometryConfig``,
``LabelConfig``, ``BalanceConfig`` ...). :func:`dagster_config` turns such a dataclass into a
``dg.Config`` with the same fields, types and defaults, so the launchpad shows every one of
them and nothing is retyped by hand. ``settings()`` turns the run config back into the
dataclass, which validates it.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import dagster as dg
import pydantic


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"{field.name} has no default: a run config field needs one")


def dagster_config(spec: type, *, name: str | None = None, **defaults: Any) -> type[dg.Config]:
    """A ``dg.Config`` class with the init fields of the dataclass ``spec``.

    ``defaults`` replaces a field's default (a deployment setting such as ``workers``); the
    field itself still comes from ``spec``. The class's ``settings()`` returns ``spec(**fields)``.
    """
    hints = typing.get_type_hints(spec)
    fields = {}
    for f in dataclasses.fields(spec):
        if f.init:
            default = defaults.pop(f.name) if f.name in defaults else _default(f)
            fields[f.name] = (hints[f.name], pydantic.Field(default=default))
    if defaults:
        raise TypeError(f"{spec.__name__} has no field {sorted(defaults)}")

    def settings(self: dg.Config) -> Any:
        return spec(**{key: getattr(self, key) for key in fields})

    model = pydantic.create_model(
        name or spec.__name__,
        __base__=dg.Config,
        __doc__=spec.__doc__,
        __module__=spec.__module__,
        **fields,
    )
    model.settings = settings
    return model
