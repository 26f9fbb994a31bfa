"""The spatial reasoning camp: CLEVR-style questions over 2D scenes, answered by a functional
program whose execution trace grounds every step to the boxes of its object set.

One seed gives one sample: a scene (:mod:`vprim.assets.camps.spatial_scene`), a question family
drawn by weight, a program (:mod:`vprim.assets.camps.spatial_program`) and its text, the trace as
``<|ref|>step<|/ref|><|box|>[[..]]<|/box|>`` primitives in program order, then the answer:
``yes``/``no`` (true/false questions), a number or an attribute word (open questions), or
``refuse`` when the question refers to an object that is not in the scene.

Before a sample is kept, its target is parsed back and checked against a fresh execution of
the program: every step's boxes are its set's boxes, counts equal the size of the set counted,
and the answer is the program's. A seed whose attempts all fail is skipped and counted by
reason; nothing is written unchecked.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vprim.assets.camps import primitives as prim
from vprim.assets.camps.schema import camp_row
from vprim.assets.camps.spatial_program import (
    MISSING,
    RELATIONS,
    AmbiguousReference,
    answer_of,
    execute,
    node,
    set_of,
)
from vprim.assets.camps.spatial_scene import (
    ATTRIBUTES,
    Scene,
    SceneConfig,
    SceneError,
    render_scene,
    sample_scene,
)
from vprim.assets.contracts.coords import boxes_to_999

ATTR_ORDER = ("size", "color", "material", "shape")  # CLEVR's word order: "large red metal cube"
REL_TEXT = {"left": "left of", "right": "right of", "above": "above", "below": "below"}

# family -> (difficulty, question kind, can refer to a missing object)
FAMILIES: dict[str, tuple[str, str, bool]] = {
    "count": ("easy", "open", False),
    "exist": ("easy", "tf", False),
    "query": ("easy", "open", True),
    "relate_count": ("medium", "open", True),
    "relate_exist": ("medium", "tf", True),
    "compare_count": ("medium", "tf", False),
    "same_count": ("medium", "open", True),
    "equal_attr": ("medium", "tf", True),
    "relate_query": ("hard", "open", True),
    "union_count": ("hard", "open", False),
    "intersect_exist": ("hard", "tf", True),
}


#: Question kinds: ``tf`` (true/false) and ``open`` (a number or a word).
KINDS = ("tf", "open")


@dataclass(frozen=True)
class SpatialConfig(SceneConfig):
    """How spatial samples are generated: the scene sampler's settings
    (:class:`~vprim.assets.camps.spatial_scene.SceneConfig`, inherited) and the questions'.

    Attributes:
        refuse_rate: share of questions (of families that refer to one object) whose object
            is absent, so the right answer is ``refuse``.
        attempts: questions tried per seed before the seed is skipped.
        family_weights: relative weight of each family (missing: 1).
    """

    refuse_rate: float = 0.12
    attempts: int = 12
    family_weights: dict[str, float] = field(default_factory=dict)

    def families(self, kinds: Sequence[str] = KINDS) -> tuple[list[str], np.ndarray]:
        """The families of the question ``kinds`` and their normalised weights."""
        names = [f for f, (_, kind, _) in FAMILIES.items() if kind in kinds]
        if not names:
            raise ValueError(f"kinds={tuple(kinds)!r}: expected some of {KINDS}")
        w = np.array([float(self.family_weights.get(f, 1.0)) for f in names])
        return names, w / w.sum()


class Reject(ValueError):
    """One attempt failed; ``reason`` is a stable snake_case code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# --- descriptions -------------------------------------------------------------------------


def matches(scene: Scene, desc: dict[str, str]) -> np.ndarray:
    """``(n,)`` mask of the objects with every attribute of ``desc``."""
    m = np.ones(scene.n, dtype=bool)
    for attr, value in desc.items():
        m &= scene.attr(attr) == ATTRIBUTES[attr].index(value)
    return m


def phrase(desc: dict[str, str], plural: bool = False) -> str:
    words = [desc[a] for a in ATTR_ORDER[:3] if a in desc]
    noun = desc.get("shape", "object")
    return " ".join([*words, noun + ("s" if plural else "")])


def _article(text: str) -> str:
    return ("an " if text[:1] in "aeiou" else "a ") + text


def _describe(scene: Scene, i: int, attrs: Iterable[str]) -> dict[str, str]:
    return {a: scene.value(a, i) for a in attrs}


def unique_desc(
    rng: np.random.Generator, scene: Scene, i: int, among: np.ndarray | None = None,
    exclude: str | None = None,
) -> dict[str, str] | None:  # fmt: skip
    """The smallest random description of object ``i`` that only it matches among ``among``
    (default: all); ``exclude`` keeps one attribute out (the one a question asks for)."""
    among = np.ones(scene.n, dtype=bool) if among is None else among
    names = [a for a in ATTRIBUTES if a != exclude]
    for k in range(1, len(names) + 1):
        for _ in range(4):
            pick = list(rng.choice(names, k, replace=False))
            desc = _describe(scene, i, pick)
            if np.count_nonzero(matches(scene, desc) & among) == 1:
                return desc
    return None


def absent_desc(rng: np.random.Generator, scene: Scene, exclude: str | None = None) -> dict | None:
    """A description of an object that is not there: a real object's, one attribute changed
    (a hard negative), that no object matches."""
    names = [a for a in ATTRIBUTES if a != exclude]
    for _ in range(12):
        i = int(rng.integers(scene.n))
        pick = list(rng.choice(names, int(rng.integers(2, len(names) + 1)), replace=False))
        desc = _describe(scene, i, pick)
        attr = str(rng.choice(pick))
        others = [v for v in ATTRIBUTES[attr] if v != desc[attr]]
        desc[attr] = str(rng.choice(others))
        if not matches(scene, desc).any():
            return desc
    return None


def set_desc(rng: np.random.Generator, scene: Scene) -> dict[str, str]:
    """One or two attributes, of a real object (3 in 4) or drawn at random (may match none)."""
    k = int(rng.integers(1, 3))
    pick = list(rng.choice(list(ATTRIBUTES), k, replace=False))
    if rng.random() < 0.75:
        return _describe(scene, int(rng.integers(scene.n)), pick)
    return {a: str(rng.choice(ATTRIBUTES[a])) for a in pick}


# --- programs -----------------------------------------------------------------------------


class _Builder:
    """Appends nodes and remembers which steps the target grounds, with their phrases."""

    def __init__(self):
        self.program: list[dict] = [node("scene")]
        self.steps: list[tuple[int, str]] = []

    def add(self, fn: str, inputs: list[int], arg: str | None = None) -> int:
        self.program.append(node(fn, inputs, arg))
        return len(self.program) - 1

    def filters(self, desc: dict[str, str], start: int = 0) -> int:
        k = start
        for attr in ATTR_ORDER:
            if attr in desc:
                k = self.add(f"filter_{attr}", [k], desc[attr])
        return k

    def ground(self, k: int, text: str) -> int:
        self.steps.append((k, text))
        return k

    def ref(self, desc: dict[str, str]) -> int:
        """filter chain -> grounded -> unique; returns the unique node."""
        k = self.ground(self.filters(desc), phrase(desc))
        return self.add("unique", [k])


def _ref_desc(rng, scene, refuse: bool, exclude: str | None = None, among=None):
    if refuse:
        d = absent_desc(rng, scene, exclude)
        if d is None:
            raise Reject("no_absent_description")
        return d
    i = int(rng.choice(np.flatnonzero(among))) if among is not None else int(rng.integers(scene.n))
    d = unique_desc(rng, scene, i, exclude=exclude)
    if d is None:
        raise Reject("no_unique_description")
    return d


def build_question(rng: np.random.Generator, scene: Scene, family: str, refuse: bool):
    """(builder, question text) for one family; raises :class:`Reject` when the scene does not
    allow it."""
    b = _Builder()
    attr = str(rng.choice(list(ATTRIBUTES)))
    rel = str(rng.choice(RELATIONS))
    if family == "count":
        d = set_desc(rng, scene)
        b.add("count", [b.ground(b.filters(d), phrase(d))])
        return b, f"How many {phrase(d, True)} are there?"
    if family == "exist":
        d = set_desc(rng, scene)
        b.add("exist", [b.ground(b.filters(d), phrase(d))])
        return b, f"Are there any {phrase(d, True)}?"
    if family == "compare_count":
        da, db = set_desc(rng, scene), set_desc(rng, scene)
        if da == db:
            raise Reject("same_description")
        a = b.add("count", [b.ground(b.filters(da), phrase(da))])
        c = b.add("count", [b.ground(b.filters(db), phrase(db))])
        op = str(rng.choice(["greater_than", "less_than", "equal_integer"]))
        b.add(op, [a, c])
        word = {"greater_than": "more", "less_than": "fewer"}.get(op)
        pa, pb = phrase(da, True), phrase(db, True)
        if word:
            return b, f"Are there {word} {pa} than {pb}?"
        return b, f"Are there as many {pa} as {pb}?"
    if family == "union_count":
        da, db = set_desc(rng, scene), set_desc(rng, scene)
        if da == db:
            raise Reject("same_description")
        a, c = b.filters(da), b.filters(db)
        u = b.ground(b.add("union", [a, c]), f"{phrase(da)} or {phrase(db)}")
        b.add("count", [u])
        return b, f"How many objects are {phrase(da, True)} or {phrase(db, True)}?"
    # the families below refer to one object (or two) by a unique description
    if family == "query":
        d = _ref_desc(rng, scene, refuse, exclude=attr)
        b.add(f"query_{attr}", [b.ref(d)])
        return b, f"What {attr} is the {phrase(d)}?"
    if family == "same_count":
        d = _ref_desc(rng, scene, refuse, exclude=attr)
        s = b.add(f"same_{attr}", [b.ref(d)])
        b.ground(s, f"object with the same {attr} as the {phrase(d)}")
        b.add("count", [s])
        return b, f"How many other objects have the same {attr} as the {phrase(d)}?"
    if family == "equal_attr":
        da = _ref_desc(rng, scene, refuse, exclude=attr)
        db = _ref_desc(rng, scene, False, exclude=attr)
        if da == db:
            raise Reject("same_description")
        qa = b.add(f"query_{attr}", [b.ref(da)])
        qb = b.add(f"query_{attr}", [b.ref(db)])
        b.add(f"equal_{attr}", [qa, qb])
        return b, f"Does the {phrase(da)} have the same {attr} as the {phrase(db)}?"
    if family in ("relate_count", "relate_exist", "relate_query"):
        d1 = _ref_desc(rng, scene, refuse and family != "relate_query")
        r = b.add("relate", [b.ref(d1)], rel)
        where = f"{REL_TEXT[rel]} the {phrase(d1)}"
        if family == "relate_query":
            # the second object: unique among those on that side (absent when refusing)
            trace = execute(b.program, scene)
            side = trace[r]
            if side is MISSING or not side.any():
                raise Reject("empty_relation")
            if refuse:
                d2 = absent_desc(rng, scene, exclude=attr)
                if d2 is None or (matches(scene, d2) & side).any():
                    raise Reject("no_absent_description")
            else:
                i = int(rng.choice(np.flatnonzero(side)))
                d2 = unique_desc(rng, scene, i, among=side, exclude=attr)
                if d2 is None:
                    raise Reject("no_unique_description")
            f = b.ground(b.filters(d2, r), f"{phrase(d2)} {where}")
            b.add(f"query_{attr}", [b.add("unique", [f])])
            return b, f"What {attr} is the {phrase(d2)} {where}?"
        d2 = set_desc(rng, scene) if rng.random() < 0.7 else {}
        f = b.ground(b.filters(d2, r), f"{phrase(d2)} {where}")
        if family == "relate_count":
            b.add("count", [f])
            return b, f"How many {phrase(d2, True)} are {where}?"
        b.add("exist", [f])
        return b, f"Is there {_article(phrase(d2))} {where}?"
    if family == "intersect_exist":
        rel2 = str(rng.choice([x for x in RELATIONS if x != rel]))
        da = _ref_desc(rng, scene, refuse)
        db = _ref_desc(rng, scene, False)
        if da == db:
            raise Reject("same_description")
        ra = b.add("relate", [b.ref(da)], rel)
        rb = b.add("relate", [b.ref(db)], rel2)
        both = f"{REL_TEXT[rel]} the {phrase(da)} and {REL_TEXT[rel2]} the {phrase(db)}"
        b.ground(b.add("intersect", [ra, rb]), f"object {both}")
        b.add("exist", [len(b.program) - 1])
        return b, f"Is there an object {both}?"
    raise ValueError(f"unknown family {family!r}")


# --- samples ------------------------------------------------------------------------------


def _boxes_999(scene: Scene, mask: np.ndarray) -> list[list[int]]:
    return sorted(boxes_to_999(scene.boxes[mask], scene.width, scene.height))


def target_of(scene: Scene, program: list[dict], steps: list[tuple[int, str]]):
    """(target text, grounded steps, answer, answer type) from a fresh execution."""
    trace = execute(program, scene)
    grounded = []
    for k, text in steps:
        mask = set_of(trace[k], scene.n)
        grounded.append({"ref": text, "node": k, "boxes_999": _boxes_999(scene, mask)})
    answer, answer_type = answer_of(trace[-1])
    body = "".join(prim.format_boxes(g["ref"], g["boxes_999"]) for g in grounded)
    return body + prim.format_answer(answer), grounded, answer, answer_type, trace


def verify(scene: Scene, meta: dict, target: str) -> None:
    """Re-execute the program and parse the target back: raises :class:`Reject` on any
    difference (a step's boxes, a count against the set it counts, the answer)."""
    program = meta["program"]
    trace = execute(program, scene)
    parsed = prim.parse_primitives(target)
    if parsed.errors:
        raise Reject("target_unparsable", "; ".join(map(str, parsed.errors)))
    refs = [(r.label, [list(b) for b in r.boxes]) for r in parsed.refs]
    want = []
    for step in meta["steps"]:
        mask = set_of(trace[step["node"]], scene.n)
        want.append((step["ref"], _boxes_999(scene, mask)))
    if refs != want:
        raise Reject("trace_mismatch", f"{refs} != {want}")
    answer, answer_type = answer_of(trace[-1])
    if parsed.answer != answer or meta["answer"] != answer or meta["answer_type"] != answer_type:
        raise Reject("answer_mismatch", f"{parsed.answer!r} / {meta['answer']!r} != {answer!r}")
    for k, nd in enumerate(program):
        if nd["fn"] in ("count", "exist") and trace[k] is not MISSING:
            size = int(np.count_nonzero(trace[nd["inputs"][0]]))
            if (nd["fn"] == "count" and trace[k] != size) or (
                nd["fn"] == "exist" and trace[k] != (size > 0)
            ):
                raise Reject("count_mismatch", f"node {k}")


def make_sample(
    seed: int, config: SpatialConfig = SpatialConfig(), kinds: Sequence[str] = KINDS
) -> tuple[Scene, dict, Counter]:
    """The question for ``seed`` (before rendering), of one of the question ``kinds``:
    (scene, fields, rejected attempts).

    Raises:
        Reject: every attempt failed (reason ``attempts_exhausted``) or the scene sampler did.
    """
    try:
        scene = sample_scene(seed, config)
    except SceneError as e:
        raise Reject("scene_unplaceable", str(e)) from None
    names, weights = config.families(kinds)
    rejected: Counter = Counter()
    for attempt in range(config.attempts):
        rng = np.random.default_rng([seed, 1, attempt])
        family = str(rng.choice(names, p=weights))
        difficulty, kind, refusable = FAMILIES[family]
        refuse = refusable and rng.random() < config.refuse_rate
        try:
            b, question = build_question(rng, scene, family, refuse)
            target, grounded, answer, answer_type, _ = target_of(scene, b.program, b.steps)
            if refuse != (answer_type == "refuse"):
                raise Reject("refusal_mismatch")
            meta = {
                "answer": answer,
                "answer_type": answer_type,
                "question_kind": kind,
                "family": family,
                "program": b.program,
                "steps": grounded,
                "objects": scene.objects(),
            }
            verify(scene, meta, target)
        except AmbiguousReference:
            rejected["ambiguous_reference"] += 1
            continue
        except Reject as r:
            rejected[r.reason] += 1
            continue
        return (
            scene,
            {
                "difficulty": difficulty,
                "prompt": question,
                "target": target,
                "answer": answer,
                "meta": meta,
            },
            rejected,
        )
    raise Reject("attempts_exhausted", f"seed {seed}: {dict(rejected)}")


def encode_png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def generate_spatial(
    seeds: Iterable[int], config: SpatialConfig = SpatialConfig(), *, split: str = "train",
    eval_set: str | None = None, kinds: Sequence[str] = KINDS,
) -> tuple[list[dict], Counter]:  # fmt: skip
    """One row per seed that yields a checked sample of the question ``kinds`` (the camp row
    schema), and the rejected attempts and skipped seeds by reason."""
    rows, rejects = [], Counter()
    for seed in seeds:
        seed = int(seed)
        try:
            scene, fields, rejected = make_sample(seed, config, kinds)
        except Reject as r:
            rejects[r.reason] += 1
            continue
        rejects.update(rejected)
        rows.append(
            camp_row(
                "spatial", f"spatial-{seed:012d}", seed, split=split, eval_set=eval_set,
                image_png=encode_png(render_scene(scene, seed)), image_width=scene.width,
                image_height=scene.height, **fields,
            )
        )  # fmt: skip
    return rows, rejects


__all__ = [
    "FAMILIES",
    "KINDS",
    "Reject",
    "SpatialConfig",
    "absent_desc",
    "build_question",
    "generate_spatial",
    "make_sample",
    "matches",
    "phrase",
    "target_of",
    "unique_desc",
    "verify",
]
