"""The shipped vocabulary and bad-label prototypes; the normalisation of a raw label.

Plain Python, no dagster. :func:`normalise` gives the form of a raw label that step I embeds,
compares with the vocabulary and names a new category by; ``label_vocabulary`` stores it.
The data files (``data/canonical_vocabulary.tsv``, ``data/bad_label_prototypes.tsv``) are read
once per process.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from vprim.assets.contracts.reasons import Reason
from vprim.assets.terms import read_tsv

DATA_DIR = Path(__file__).with_name("data")
VOCABULARY_PATH = DATA_DIR / "canonical_vocabulary.tsv"
PROTOTYPES_PATH = DATA_DIR / "bad_label_prototypes.tsv"

#: the kinds of bad label the prototypes are written for, in the order that breaks a tie
BAD_KINDS = (Reason.LABEL_GIBBERISH, Reason.LABEL_PRIVATE, Reason.LABEL_VAGUE)


# --- shipped data ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """The shipped canonical vocabulary: per category its canonical name and synonyms."""

    canonical: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...]  # per category: the canonical name, then its synonyms

    def __len__(self) -> int:
        return len(self.canonical)


@functools.lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    """Read ``canonical_vocabulary.tsv`` (``#`` comments; columns canonical, synonyms)."""
    rows = read_tsv(Path(path or VOCABULARY_PATH), ["canonical", "synonyms"])
    canonical, terms = [], []
    for r in rows:
        name = r[0].strip()
        synonyms = [s.strip() for s in (r[1] if len(r) > 1 else "").split("|") if s.strip()]
        canonical.append(name)
        terms.append((name, *synonyms))
    return Vocabulary(tuple(canonical), tuple(terms))


@functools.lru_cache(maxsize=4)
def load_prototypes(path: str | None = None) -> tuple[tuple[str, str], ...]:
    """Read ``bad_label_prototypes.tsv``: ``(kind, example)`` rows, kinds in BAD_KINDS."""
    p = Path(path or PROTOTYPES_PATH)
    rows = tuple((r[0].strip(), r[1].strip()) for r in read_tsv(p, ["kind", "example"]))
    unknown = {k for k, _ in rows} - set(BAD_KINDS)
    if unknown:
        raise ValueError(
            f"{p}: unknown kinds {sorted(unknown)}; expected {list(map(str, BAD_KINDS))}"
        )
    return rows


# --- normalisation ---------------------------------------------------------------------------
# camelCase: a lower-case letter then an upper-case one ("trafficLight"), except a single
# leading lower-case letter ("iPhone", "eBay"); an acronym run before a capitalised word
# ("IDCard" -> "ID Card"); a digit before a capitalised word ("Route66Sign").
_CAMEL = re.compile(
    r"(?<=[a-z])(?<!\b[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=\d)(?=[A-Z][a-z])"
)
_SEPARATORS = re.compile(r"[_\-\s]+")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", '"': None})

#: words named in the plural (never singularised; also as suffixes: "sunglasses")
PLURALIA_TANTUM = (
    "pants", "trousers", "jeans", "shorts", "tights", "leggings", "pyjamas", "pajamas",
    "overalls", "scissors", "shears", "pliers", "tongs", "tweezers", "glasses", "goggles",
    "binoculars", "headphones", "earphones", "earbuds", "clothes", "cosmetics", "lens",
    "series", "species", "news", "chassis", "means", "physics", "mathematics", "gymnastics",
    "athletics", "billiards", "darts", "dominoes", "stairs", "bellows", "remains",
)  # fmt: skip

#: singular words that end in "s" like a plural
SINGULAR_IN_S = ("canvas", "gas", "atlas", "christmas", "bias", "alias", "lens", "cosmos", "chaos")


def surface(raw: str) -> str:
    """Case, separators and spacing; no plural handling."""
    s = unicodedata.normalize("NFKC", raw).translate(_QUOTES).strip()
    s = _CAMEL.sub(" ", s).lower()
    s = _SEPARATORS.sub(" ", s)
    s = re.sub(r"\s*\(\s*", " (", s)
    s = re.sub(r"\s*\)\s*", ") ", s)
    return re.sub(r"\s+", " ", s).strip()


def _singular_rule(word: str) -> str:
    """English singular of an unknown word by the usual rules (conservative)."""
    if len(word) <= 3 or not word.isalpha() or word.endswith(PLURALIA_TANTUM):
        return word
    if word.endswith(("ss", "us", "is")) or word in SINGULAR_IN_S:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=4)
def known_surfaces(path: str | None = None) -> frozenset[str]:
    """The surface form (:func:`surface`) of every term of the vocabulary at ``path``."""
    vocab = load_vocabulary(path)
    return frozenset(surface(t) for terms in vocab.terms for t in terms)


def normalise(raw: str, known: frozenset[str] | None = None) -> str:
    """The normalised form of a raw label: what is embedded and what a new category is named.

    Splits camelCase, lower-cases, turns runs of ``_``, ``-`` and whitespace into one space,
    and singularises the last word: to a vocabulary term when one matches ("boxes" -> "box",
    "cookies" -> "cookie"), else by the usual English rules, never for a term of the
    vocabulary written in the plural ("skis"), a plurale tantum ("scissors"), a parenthesised
    name or a coordination ("power plugs and sockets").

    Args:
        raw: the label as read.
        known: normalised vocabulary terms (default: the shipped vocabulary).
    """
    s = surface(raw)
    if not s:
        return s
    known = known_surfaces() if known is None else known
    if s in known:
        return s
    head, _, last = s.rpartition(" ")
    prefix = f"{head} " if head else ""
    if len(last) >= 3 and last.endswith("s"):
        candidates = [last[:-1]]
        if last.endswith("es") and last[:-2].endswith(("s", "x", "z", "ch", "sh", "o")):
            candidates.append(last[:-2])  # "boxes", "dishes", "tomatoes"; not "james" -> "jam"
        if last.endswith("ies"):
            candidates.append(last[:-3] + "y")
        for cand in candidates:  # the whole phrase is a term: "boxes" -> "box"
            if prefix + cand in known:
                return prefix + cand
        if last not in (words := words_of(known)):
            for cand in candidates:  # the last word is a vocabulary word: "li's shoes"
                if cand in words:
                    return prefix + cand
    if "(" in s or " and " in s or " or " in s or " & " in s:
        return s
    return prefix + _singular_rule(last)


@functools.lru_cache(maxsize=8)
def words_of(known: frozenset[str]) -> frozenset[str]:
    """Every word of the terms ``known``."""
    return frozenset(w for term in known for w in term.split(" "))
