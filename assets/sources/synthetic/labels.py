"""The labels of one source: its label table (good names from the vocabulary, bad ones made up)
and the label of each box.

Bad labels are what the report's step I drops: gibberish or machine codes ("0", "class_3"),
private, non-generalisable names ("MyRoommate", "ID_Card_1") and vague or subjective ones
("OK", "NG"); none of them names a vocabulary row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vprim.assets.sources.synthetic.defects import GIB, PRIV, VAGUE
from vprim.assets.sources.synthetic.plan import LABELS, SourcePlan
from vprim.assets.sources.synthetic.vocabulary import (
    STYLE_P,
    STYLES,
    Vocabulary,
    cap,
    surface_form,
)

VAGUE_LABELS = (
    "OK", "NG", "good", "bad", "other", "object", "thing", "misc", "unknown", "item", "stuff",
    "others", "objects", "things", "pass", "fail", "positive", "negative", "normal", "abnormal",
    "none", "N/A",
)  # fmt: skip
_FIRST = (
    "john", "sarah", "kevin", "emily", "ahmed", "maria", "li", "tom", "anna", "david", "yuki",
    "carlos", "fatima", "olga", "raj", "sophie", "mike", "lucas", "chloe", "omar", "jenny",
)  # fmt: skip
_SURNAMES = (
    "smith", "chen", "garcia", "mueller", "kowalski", "nguyen", "patel", "okafor", "tanaka",
    "rossi", "johnson", "silva",
)  # fmt: skip
_RELATIONS = (
    "Roommate", "Boss", "Neighbor", "Grandma", "Wife", "Husband", "BestFriend", "Landlord",
    "Teacher", "Ex", "Sister", "Brother", "Son", "Daughter",
)  # fmt: skip
_KIN = ("mom", "dad", "grandpa", "grandma", "uncle", "auntie")
_ITEMS = (
    "mug", "bike", "car", "phone", "laptop", "keys", "wallet", "bag", "cat", "dog", "desk",
    "shoes", "watch", "guitar", "cup", "pillow", "toothbrush", "jacket",
)  # fmt: skip
_CONSONANTS = "bcdfghjklmnpqrstvwxz"
_HEX = "0123456789abcdef"
#: non-ASCII spellings of real names, written as latin-1 bytes for ``parse_bad_encoding``
NON_ASCII_LABELS = ("jalapeño", "piñata", "crème brûlée", "soufflé dish", "café table")


def gibberish_label(rng: np.random.Generator, style: int, n: int) -> str:
    """A machine code / meaningless name ("0", "class_3", "xkcd_q", hex codes)."""
    if style == 0:
        return str(n)
    if style == 1:
        return f"class_{n}"
    if style == 2:
        return f"cls{n}"
    if style == 3:
        return f"label_{n}"
    if style == 4:
        return "".join(rng.choice(list(_HEX), int(rng.integers(6, 9))))
    if style == 5:
        stem = "".join(rng.choice(list(_CONSONANTS), 4))
        return f"{stem}_{rng.choice(list(_CONSONANTS))}"
    if style == 6:
        return "".join(rng.choice(list(_CONSONANTS), int(rng.integers(3, 7))))
    if style == 7:
        return f"n{int(rng.integers(1_000_000, 15_000_000)):08d}"
    if style == 8:
        return f"obj_{n}"
    if style == 9:
        return f"c{n}"
    if style == 10:
        a = "".join(rng.choice(list(_HEX), 4))
        return f"{a}-{''.join(rng.choice(list(_HEX), 4))}"
    return f"L{n}"


N_GIBBERISH_STYLES = 12


def private_label(rng: np.random.Generator) -> str:
    """A private, non-generalisable name ("MyRoommate", "ID_Card_1", "johns_mug")."""
    name = str(rng.choice(_FIRST))
    item = str(rng.choice(_ITEMS))
    t = int(rng.integers(0, 12))
    if t == 0:
        return f"My{rng.choice(_RELATIONS)}"
    if t == 1:
        return f"{name}s_{item}"
    if t == 2:
        return f"{cap(name)}'s {item}"
    if t == 3:
        return f"ID_Card_{int(rng.integers(1, 10))}"
    if t == 4:
        return cap(name)
    if t == 5:
        return f"{cap(name)} {cap(str(rng.choice(_SURNAMES)))}"
    if t == 6:
        return f"{name}_face"
    if t == 7:
        return f"employee_badge_{int(rng.integers(1, 999)):03d}"
    if t == 8:
        letters = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTVWXYZ"), 2))
        return f"plate_{letters}{int(rng.integers(10, 99))}{''.join(rng.choice(list('ABCXYZ'), 3))}"
    if t == 9:
        return f"{rng.choice(_KIN)}_{item}"
    if t == 10:
        return f"passport_{name}"
    return f"{cap(name)}{cap(str(rng.choice(_SURNAMES)))}"


def vague_label(rng: np.random.Generator) -> str:
    """A vague or subjective name ("OK", "NG", "other"), in a random case."""
    word = str(rng.choice(VAGUE_LABELS))
    case = int(rng.integers(0, 6))
    if case == 4:
        return word.lower()
    if case == 5:
        return cap(word.lower()) if word != "N/A" else "n/a"
    return word


# --- the label table of one source -----------------------------------------------------------
@dataclass
class LabelTable:
    """The distinct raw labels of one source, entries in the order they were drawn."""

    names: list[str]
    code: np.ndarray  # int8 per entry: 0 good, else GIB/PRIV/VAGUE
    key: np.ndarray  # int64 per entry: canonical row for good labels, unique for bad ones
    good: np.ndarray  # primary good entries in rank order
    bad: np.ndarray  # bad entries in rank order
    alt: np.ndarray  # per entry: an alternative surface entry of the same label, or -1


def zipf(n: int, a: float) -> np.ndarray:
    """Zipf weights ``(n,)`` of exponent ``a``, summing to 1."""
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def label_table(plan: SourcePlan, rng: np.random.Generator, vocab: Vocabulary) -> LabelTable:
    """Draw the label table of a source: good names in one spelling style (a few in a second
    one), and bad names of the plan's kinds that the vocabulary does not know."""
    k_total = 1 + int(rng.poisson(1.5 + plan.n_images**0.75 / 3.0))
    k_total = min(k_total, 800)
    if plan.kind == LABELS:
        if plan.only_bad:
            n_bad, n_good = k_total, 0
        else:
            k_total = max(k_total, 2)
            n_bad = max(1, round(k_total * rng.uniform(0.6, 0.9)))
            n_good = max(1, k_total - n_bad)
    else:
        n_good = k_total
        n_bad = 3 if plan.forced_all else (int(rng.integers(1, 3)) if rng.random() < 0.7 else 0)
        if plan.near:  # two gibberish labels for the bad-label fraction cases, else none
            n_bad = 2 if plan.near.startswith("near_labels") else 0
    names: list[str] = []
    codes: list[int] = []
    keys: list[int] = []
    alts: list[int] = []
    seen: set[str] = set()
    good: list[int] = []
    if n_good:
        gumbel = -np.log(-np.log(rng.random(len(vocab))))
        rows = np.argsort(-(vocab.log_popularity + gumbel), kind="stable")[: n_good * 2]
        style = str(rng.choice(STYLES, p=STYLE_P))
        plural = rng.random() < 0.12
        mixed = rng.random() < 0.1
        for row in rows.tolist():
            if len(good) == n_good:
                break
            syns = vocab.synonyms[row]
            term = vocab.canonical[row]
            if syns and rng.random() < 0.25:
                term = syns[int(rng.integers(0, len(syns)))]
            name = surface_form(term, style, plural)
            if name in seen or not name.strip():
                continue
            seen.add(name)
            good.append(len(names))
            names.append(name)
            codes.append(0)
            keys.append(row)
            alts.append(-1)
            if mixed and rng.random() < 0.5:
                other = surface_form(term, str(rng.choice(STYLES)), plural and rng.random() < 0.5)
                if other not in seen and other.strip():
                    seen.add(other)
                    alts[-1] = len(names)
                    names.append(other)
                    codes.append(0)
                    keys.append(row)
                    alts.append(-1)
    bad: list[int] = []
    if n_bad:
        dominant = int(rng.choice(3, p=[0.5, 0.25, 0.25]))
        gib_style = int(rng.integers(0, N_GIBBERISH_STYLES))
        for j in range(n_bad):
            kind = j % 3 if plan.forced_all else dominant
            if not plan.forced_all and rng.random() < 0.25:
                kind = int(rng.integers(0, 3))
            if plan.near:
                kind = 0
            for attempt in range(12):
                if kind == 0:
                    name = gibberish_label(rng, gib_style, j + attempt * n_bad)
                elif kind == 1:
                    name = private_label(rng)
                else:
                    name = vague_label(rng)
                if name not in seen and not vocab.knows(name):
                    break
            else:
                name = f"class_{j}_{len(names)}"
                kind = 0
            seen.add(name)
            bad.append(len(names))
            names.append(name)
            codes.append((GIB, PRIV, VAGUE)[kind])
            keys.append(10_000_000 + len(names))
            alts.append(-1)
    return LabelTable(
        names=names,
        code=np.array(codes, dtype=np.int8),
        key=np.array(keys, dtype=np.int64),
        good=np.array(good, dtype=np.int64),
        bad=np.array(bad, dtype=np.int64),
        alt=np.array(alts, dtype=np.int64),
    )


def sample_labels(
    rng: np.random.Generator, plan: SourcePlan, lt: LabelTable, n: int
) -> tuple[np.ndarray, float]:
    """The label entry of each of ``n`` boxes and the share of bad labels drawn."""
    if plan.kind == LABELS:
        p_bad = 1.0 if plan.only_bad else rng.uniform(0.6, 0.95)
    elif len(lt.bad):
        p_bad = 0.08 if plan.forced_all else rng.uniform(0.003, 0.02)
    else:
        p_bad = 0.0
    lab = np.zeros(n, dtype=np.int64)
    if len(lt.good):
        lab = lt.good[rng.choice(len(lt.good), n, p=zipf(len(lt.good), rng.uniform(0.2, 0.9)))]
    if len(lt.bad) and p_bad > 0:
        is_bad = rng.random(n) < p_bad if len(lt.good) else np.ones(n, dtype=bool)
        pick = lt.bad[rng.choice(len(lt.bad), n, p=zipf(len(lt.bad), rng.uniform(0.0, 0.8)))]
        lab = np.where(is_bad, pick, lab)
        if plan.forced_all and n >= 2 * len(lt.bad):
            lab[rng.choice(n, len(lt.bad), replace=False)] = lt.bad
    if plan.kind == LABELS and len(lt.good) and len(lt.bad):
        # a source planted to fail on its labels fails clearly: >= 60% of its boxes are bad
        # (a small source's draw could otherwise leave it at or under the 50% threshold)
        good_boxes = np.flatnonzero(lt.code[lab] == 0)
        short = math.ceil(0.6 * n) - (n - len(good_boxes))
        if short > 0:
            flip = rng.choice(good_boxes, short, replace=False)
            lab[flip] = lt.bad[rng.integers(0, len(lt.bad), short)]
    has_alt = lt.alt[lab] >= 0
    if has_alt.any():
        swap = has_alt & (rng.random(n) < 0.2)
        lab = np.where(swap, lt.alt[lab], lab)
    return lab, p_bad
