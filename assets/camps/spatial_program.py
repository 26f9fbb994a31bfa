"""CLEVR-style functional programs over a :class:`~vprim.assets.camps.spatial_scene.Scene`.

A program is a list of nodes ``{"fn": name, "inputs": [node indices], "arg": str | None}``;
the last node is the answer. Values are boolean masks ``(n,)`` for object sets, an object
index (``int``) for ``unique``, ``int`` counts, ``bool`` and attribute words. Functions:

- ``scene``; ``filter_<attr>[value]`` (set -> set); ``unique`` (set -> object);
  ``relate[left|right|above|below]`` (object -> the other objects on that side, by centre);
  ``same_<attr>`` (object -> the other objects sharing the attribute); ``union``,
  ``intersect`` (set, set -> set);
- ``count`` (set -> int), ``exist`` (set -> bool), ``query_<attr>`` (object -> word);
- ``equal_integer``, ``less_than``, ``greater_than`` (int, int -> bool);
  ``equal_<attr>`` (word, word -> bool).

``unique`` of an empty set is :data:`MISSING`: the question refers to an object that is not in
the scene, and every node fed by it is :data:`MISSING` too, so the right answer is to refuse.
``unique`` of a set of two or more raises :class:`AmbiguousReference` (the generator never
writes such a question).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vprim.assets.camps.spatial_scene import ATTRIBUTES, Scene


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
RELATIONS = ("left", "right", "above", "below")


class AmbiguousReference(ValueError):
    """``unique`` met more than one object."""


class ProgramError(ValueError):
    """A malformed program (unknown function, bad argument, wrong inputs)."""


def node(fn: str, inputs: list[int] | None = None, arg: str | None = None) -> dict:
    return {"fn": fn, "inputs": list(inputs or []), "arg": arg}


def _relate(scene: Scene, obj: int, rel: str) -> np.ndarray:
    c = scene.centres
    if rel == "left":
        m = c[:, 0] < c[obj, 0]
    elif rel == "right":
        m = c[:, 0] > c[obj, 0]
    elif rel == "above":
        m = c[:, 1] < c[obj, 1]
    elif rel == "below":
        m = c[:, 1] > c[obj, 1]
    else:
        raise ProgramError(f"relate[{rel}]: expected one of {RELATIONS}")
    m[obj] = False
    return m


def execute(program: list[dict], scene: Scene) -> list[Any]:
    """Every node's value, in order (the trace); the last is the answer.

    Raises:
        AmbiguousReference: ``unique`` of two or more objects.
        ProgramError: malformed program.
    """
    out: list[Any] = []
    for k, nd in enumerate(program):
        fn, arg = nd["fn"], nd.get("arg")
        try:
            args = [out[i] for i in nd.get("inputs", [])]
        except (IndexError, TypeError):
            raise ProgramError(f"node {k} ({fn}): bad inputs {nd.get('inputs')!r}") from None
        if any(a is MISSING for a in args):
            out.append(MISSING)
            continue
        out.append(_apply(fn, arg, args, scene, k))
    return out


def _apply(fn: str, arg: str | None, args: list, scene: Scene, k: int) -> Any:
    if fn == "scene":
        return np.ones(scene.n, dtype=bool)
    head, _, attr = fn.partition("_")
    if head == "filter" and attr in ATTRIBUTES:
        if arg not in ATTRIBUTES[attr]:
            raise ProgramError(f"node {k}: {fn}[{arg}] is not a known {attr}")
        return args[0] & (scene.attr(attr) == ATTRIBUTES[attr].index(arg))
    if fn == "unique":
        idx = np.flatnonzero(args[0])
        if len(idx) == 0:
            return MISSING
        if len(idx) > 1:
            raise AmbiguousReference(f"node {k}: unique of {len(idx)} objects")
        return int(idx[0])
    if fn == "relate":
        return _relate(scene, args[0], str(arg))
    if head == "same" and attr in ATTRIBUTES:
        col = scene.attr(attr)
        m = col == col[args[0]]
        m[args[0]] = False
        return m
    if fn == "union":
        return args[0] | args[1]
    if fn == "intersect":
        return args[0] & args[1]
    if fn == "count":
        return int(np.count_nonzero(args[0]))
    if fn == "exist":
        return bool(np.any(args[0]))
    if head == "query" and attr in ATTRIBUTES:
        return scene.value(attr, args[0])
    if fn == "equal_integer":
        return args[0] == args[1]
    if fn == "less_than":
        return args[0] < args[1]
    if fn == "greater_than":
        return args[0] > args[1]
    if head == "equal" and attr in ATTRIBUTES:
        return args[0] == args[1]
    raise ProgramError(f"node {k}: unknown function {fn!r}")


def set_of(value: Any, n: int) -> np.ndarray | None:
    """The object set a trace value grounds to: a mask as is, an object as a one-hot mask,
    MISSING as the empty set; None for counts, booleans and words."""
    if value is MISSING:
        return np.zeros(n, dtype=bool)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return None


def answer_of(value: Any) -> tuple[str, str]:
    """(answer text, answer type) of a program's last value."""
    if value is MISSING:
        return "refuse", "refuse"
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), "bool"
    if isinstance(value, (int, np.integer)):
        return str(int(value)), "number"
    return str(value), "word"


__all__ = [
    "MISSING",
    "RELATIONS",
    "AmbiguousReference",
    "ProgramError",
    "answer_of",
    "execute",
    "node",
    "set_of",
]
