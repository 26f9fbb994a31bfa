"""The generator's object vocabulary and how annotation tools spell its names.

``data/object_vocabulary.tsv`` lists real object categories (row order = popularity order) with
synonyms; about 10% of rows are held out of the quality stage's canonical vocabulary.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vprim.assets.terms import compact, read_tsv

VOCABULARY_PATH = Path(__file__).parent.with_name("data") / "object_vocabulary.tsv"


def cap(word: str) -> str:
    """The word with its first letter upper-cased, the rest as written."""
    return word[:1].upper() + word[1:]


@dataclass(frozen=True)
class Vocabulary:
    """The object vocabulary (``data/object_vocabulary.tsv``), row order = popularity order."""

    canonical: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]
    holdout: np.ndarray  # bool per row
    log_popularity: np.ndarray  # float per row, sampling weights (log)
    compact_terms: frozenset[str] = frozenset()  # every name, letters and digits only

    def knows(self, label: str) -> bool:
        """Whether ``label`` (any case, separators, simple plural) names a vocabulary row."""
        c = compact(label)
        candidates = [c]
        if c.endswith("s"):
            candidates.append(c[:-1])
        if c.endswith("es"):
            candidates.append(c[:-2])
        if c.endswith("ies"):
            candidates.append(c[:-3] + "y")
        return any(x in self.compact_terms for x in candidates)

    def __len__(self) -> int:
        return len(self.canonical)


@functools.lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    """Read the vocabulary TSV (``#`` lines are comments; columns canonical, synonyms, holdout)."""
    rows = read_tsv(Path(path or VOCABULARY_PATH), ["canonical", "synonyms", "holdout"])
    canonical = tuple(r[0] for r in rows)
    synonyms = tuple(tuple(s for s in r[1].split("|") if s) for r in rows)
    holdout = np.array([r[2].strip() == "1" for r in rows], dtype=bool)
    log_pop = -0.8 * np.log(np.arange(len(rows)) + 10.0)
    terms = frozenset(compact(t) for c, syn in zip(canonical, synonyms) for t in (c, *syn))
    return Vocabulary(canonical, synonyms, holdout, log_pop, terms)


STYLES = ("plain", "snake", "kebab", "title", "camel", "upper", "capital")
STYLE_P = (0.33, 0.16, 0.06, 0.14, 0.09, 0.05, 0.17)


def pluralise(word: str) -> str:
    """English plural of one word, the simple rules annotators' label files show."""
    low = word.lower()
    if not word or not word[-1:].isalpha() or low.endswith("s"):
        return word
    if low.endswith(("x", "z", "ch", "sh")):
        return word + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def surface_form(term: str, style: str, plural: bool = False) -> str:
    """How one annotation tool writes ``term``: "traffic_light", "TrafficLight", "Cars"."""
    words = term.split(" ")
    if plural and "(" not in term:
        words[-1] = pluralise(words[-1])
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "title":
        return " ".join(cap(w) for w in words)
    if style == "camel":
        return "".join(cap(w) for w in words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "capital":
        return cap(" ".join(words))
    return " ".join(words)
