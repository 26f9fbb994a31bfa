"""Step I of the quality stage: what a raw label means (keep it under a canonical name, or not).

Plain Python, no dagster. :func:`decide_labels` turns the distinct raw labels of the corpus into
the ``label_map`` contract (docs/CONTRACTS.md): one row per distinct raw label with its
``normalised`` form, ``canonical_label`` (null when rejected), ``decision`` (keep | reject),
``reason``, ``score`` and ``embedding_model``, plus ``evidence`` (what fired, for people) and
the nearest vocabulary term.

How a label is decided (all similarities are cosines of all-MiniLM-L6-v2 embeddings of
normalised texts; every comparison is one matrix product per chunk of labels against the
stacked vocabulary + prototype matrix):

1. :func:`normalise` (case, ``_``/``-``/camelCase separators, plurals). A label whose
   normalised form (or its letters-and-digits form) is a term of the shipped vocabulary
   (``data/canonical_vocabulary.tsv``) is kept under that term's canonical name:
   ``canonical_match`` / ``synonym_match``, score 1.
2. Word shape, for what a sentence embedding cannot see: a label without letters, a token that
   is a machine code (a number, a hex string, letters mixed with several digits, a run of
   consonants with no vowel) or a possessive (``my``/``our`` first, ``Anna's``) is an instance
   or a personal thing, not a category. The *kind* of such a label still comes from the
   embeddings: its nearest bad-label prototypes (``data/bad_label_prototypes.tsv``).
3. Per word: a word closer to the personal-name and kinship prototypes than to the object
   vocabulary (``kevin``, ``grandma``) makes the label ``label_private`` ("kevins_mug",
   "mom_bike") even when the rest of the label is an object.
4. Whole label: rejected as the nearest bad kind when its similarity to that kind's prototypes
   comes within ``reject_margin`` of its similarity to the object vocabulary (for
   ``label_private``: exceeds it by ``-private_reject_margin``).
5. Otherwise it is an object: merged into the nearest vocabulary term's canonical label when
   that cosine is at least ``merge_threshold`` (``embedding_match``); kept under its own
   normalised name when it lies on the object manifold (``novel_object``: top-k similarity to
   the vocabulary at least ``novel_min_similarity``, far from every bad kind); else rejected as
   ``label_unmapped``.

Scores: keep = cosine to the nearest vocabulary term (1 for an exact term); reject by
embeddings = top-k similarity to the chosen kind's prototypes; reject by word shape = the same
similarity, floored at 0.5 (a rule fired); ``label_unmapped`` = the (low) vocabulary
similarity.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

DATA_DIR = Path(__file__).with_name("data")
VOCABULARY_PATH = DATA_DIR / "canonical_vocabulary.tsv"
PROTOTYPES_PATH = DATA_DIR / "bad_label_prototypes.tsv"

#: The model name written into ``embedding_model`` when ``embed_fn`` does not say otherwise.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

GIBBERISH, PRIVATE, VAGUE, UNMAPPED = (
    "label_gibberish",
    "label_private",
    "label_vague",
    "label_unmapped",
)
BAD_KINDS = (GIBBERISH, PRIVATE, VAGUE)
REJECT_REASONS = (*BAD_KINDS, UNMAPPED)
KEEP_REASONS = ("canonical_match", "synonym_match", "embedding_match", "novel_object")
SOURCE_LABEL_QUALITY = "source_label_quality"

EmbedFn = Callable[[Sequence[str]], np.ndarray]

LABEL_MAP_SCHEMA = pa.schema(
    [
        pa.field("raw_label", pa.string(), nullable=False),
        pa.field("normalised", pa.string(), nullable=False),
        pa.field("canonical_label", pa.string()),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("embedding_model", pa.string(), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
        pa.field("nearest_term", pa.string()),
    ],
    metadata={"vprim.schema": "label_map", "vprim.schema_version": "1.0"},
)


@dataclass(frozen=True)
class LabelConfig:
    """Thresholds of the label-meaning filter.

    Defaults were chosen on the ``small`` synthetic corpus (seed 0, 11,057 distinct labels):
    bad-label recall 0.996, 0.24% of real labels rejected; the figures move little within
    +-0.03 of each margin.
    """

    #: neighbours averaged into a similarity score (to the vocabulary, to each bad kind)
    top_k: int = 3
    #: cosine to a vocabulary term from which an unknown surface form is merged into that
    #: term's canonical label ("kitty cat" -> cat); high, so that a new category is not
    #: swallowed by its nearest neighbour ("alligator" is not "american alligator")
    merge_threshold: float = 0.93
    #: reject as bad kind K when sim(K prototypes) > sim(vocabulary) - reject_margin
    reject_margin: float = 0.03
    #: least top-k similarity to the vocabulary for an unseen name to count as an object
    novel_min_similarity: float = 0.35
    #: like reject_margin, for label_private (names sit close to rare object words)
    private_reject_margin: float = -0.03
    #: a word (not a vocabulary word) is a personal or kinship name when its similarity to the
    #: one-word private prototypes exceeds its similarity to the object vocabulary by this
    person_margin: float = 0.0
    #: a source whose fraction of boxes with rejected labels is above this is dropped
    #: (``source_label_quality``); the report's "meaningless labels" sources
    source_bad_label_fraction: float = 0.5
    #: labels embedded per matrix product (bounds memory: chunk x reference terms floats)
    chunk_size: int = 8192


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


def compact(text: str) -> str:
    """Letters and digits only, lower case: "Traffic_Light" -> "trafficlight"."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _surface(raw: str) -> str:
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
def _known_surfaces(path: str | None = None) -> frozenset[str]:
    vocab = load_vocabulary(path)
    return frozenset(_surface(t) for terms in vocab.terms for t in terms)


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
    s = _surface(raw)
    if not s:
        return s
    known = _known_surfaces() if known is None else known
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
        if last not in (words := _words_of(known)):
            for cand in candidates:  # the last word is a vocabulary word: "li's shoes"
                if cand in words:
                    return prefix + cand
    if "(" in s or " and " in s or " or " in s or " & " in s:
        return s
    return prefix + _singular_rule(last)


@functools.lru_cache(maxsize=8)
def _words_of(known: frozenset[str]) -> frozenset[str]:
    return frozenset(w for term in known for w in term.split(" "))


# --- shipped data ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """The shipped canonical vocabulary: per category its canonical name and synonyms."""

    canonical: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...]  # per category: the canonical name, then its synonyms

    def __len__(self) -> int:
        return len(self.canonical)


def _tsv_rows(path: Path, header: list[str]) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not rows or [c.strip() for c in rows[0]] != header:
        raise ValueError(f"{path}: expected the header {header}, found {rows[:1]}")
    return rows[1:]


@functools.lru_cache(maxsize=4)
def load_vocabulary(path: str | None = None) -> Vocabulary:
    """Read ``canonical_vocabulary.tsv`` (``#`` comments; columns canonical, synonyms)."""
    rows = _tsv_rows(Path(path or VOCABULARY_PATH), ["canonical", "synonyms"])
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
    rows = tuple((r[0].strip(), r[1].strip()) for r in _tsv_rows(p, ["kind", "example"]))
    unknown = {k for k, _ in rows} - set(BAD_KINDS)
    if unknown:
        raise ValueError(f"{p}: unknown kinds {sorted(unknown)}; expected {BAD_KINDS}")
    return rows


@dataclass(frozen=True)
class _Reference:
    """Everything labels are compared with, as one stacked list of normalised texts."""

    texts: list[str]  # vocabulary terms, then prototypes
    n_terms: int
    term_row: np.ndarray  # per vocabulary term: its category row
    is_canonical: np.ndarray  # per vocabulary term: the canonical name itself
    kind_cols: dict[str, np.ndarray]  # per bad kind: its columns in ``texts``
    person_cols: np.ndarray  # private prototypes that are one word (names, kinship)
    exact: dict[str, int]  # compact(normalised term) -> term index
    known_words: frozenset[str]  # every word of every vocabulary term


@functools.lru_cache(maxsize=4)
def _reference(vocab_path: str | None = None, proto_path: str | None = None) -> _Reference:
    vocab = load_vocabulary(vocab_path)
    protos = load_prototypes(proto_path)
    known = _known_surfaces(vocab_path)
    texts: list[str] = []
    term_row, is_canonical = [], []
    exact: dict[str, int] = {}
    for row, terms in enumerate(vocab.terms):
        for j, term in enumerate(terms):
            text = normalise(term, known)
            exact.setdefault(compact(text), len(texts))
            exact.setdefault(compact(_surface(term)), len(texts))
            texts.append(text)
            term_row.append(row)
            is_canonical.append(j == 0)
    n_terms = len(texts)
    kinds = np.array([k for k, _ in protos])
    proto_texts = [normalise(x, known) for _, x in protos]
    texts.extend(proto_texts)
    kind_cols = {k: n_terms + np.flatnonzero(kinds == k) for k in BAD_KINDS}
    person = [
        n_terms + i
        for i, (k, t) in enumerate(zip(kinds, proto_texts))
        if k == PRIVATE and " " not in t and t.isalpha()
    ]
    words = frozenset(w for t in texts[:n_terms] for w in re.findall(r"[a-z0-9]+", t))
    return _Reference(
        texts=texts,
        n_terms=n_terms,
        term_row=np.array(term_row, dtype=np.int64),
        is_canonical=np.array(is_canonical, dtype=bool),
        kind_cols=kind_cols,
        person_cols=np.array(person, dtype=np.int64),
        exact=exact,
        known_words=words,
    )


# --- word shape ------------------------------------------------------------------------------
_HEX = re.compile(r"^(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{4,}$")
_HEX_LABEL = re.compile(r"^(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}$")
_VOWELS = set("aeiouy")
_POSSESSIVE_DETERMINERS = {"my", "our", "mine", "your", "his", "her", "their"}


def _token_shape(tok: str, known_words: frozenset[str]) -> str | None:
    """``code`` (strong), ``weak_code``, ``no_vowel`` or None for one normalised token."""
    if tok.isalpha() and tok in known_words:
        return None
    digits = sum(ch.isdigit() for ch in tok)
    letters = sum(ch.isalpha() for ch in tok)
    if digits:
        if letters == 0 or digits >= 2 or _HEX.match(tok) or len(tok) >= 5:
            return "code"
        return "weak_code"  # "3d", "mp3", "c5": a code only when nothing else names an object
    if letters >= 3 and tok.isalpha() and not (set(tok) & _VOWELS):
        return "no_vowel"
    return None


def _words(normalised: str) -> list[str]:
    return re.findall(r"[^\s()/.,&+]+", normalised)


#: function words never tested as names
_STOPWORDS = frozenset(
    ("a", "an", "the", "of", "and", "or", "with", "w", "for", "in", "on", "at", "to", "from",
     "by", "de", "la", "le")
)  # fmt: skip


@dataclass(frozen=True)
class _Shape:
    """Word-shape evidence of one normalised label."""

    codes: tuple[str, ...]  # words that are machine codes
    possessive: bool  # "my ...", "anna's ..."
    rest: str  # the label without its code words ("" when nothing is left)
    name_words: tuple[tuple[str, tuple[str, ...]], ...]  # (word, texts to test as a name)

    @property
    def name_candidates(self) -> list[str]:
        return [c for _, cands in self.name_words for c in cands]


def _shape(normalised: str, ref: _Reference) -> _Shape:
    words = _words(normalised)
    shapes = [_token_shape(w, ref.known_words) for w in words]
    if _HEX_LABEL.match(compact(normalised)):  # "8c64-faaa": a hash split by a separator
        shapes = ["code"] * len(words)
    has_object_word = any(sh is None and w.isalpha() and len(w) > 2 for w, sh in zip(words, shapes))
    codes = [w for w, sh in zip(words, shapes) if sh in ("code", "no_vowel")]
    if not has_object_word:  # "c5", "l7": short codes count when nothing names an object
        codes += [w for w, sh in zip(words, shapes) if sh == "weak_code"]
    possessive = len(words) > 1 and words[0] in _POSSESSIVE_DETERMINERS
    name_words = []
    for w, sh in zip(words, shapes):
        stem = w[:-2] if w.endswith("'s") else w
        if w.endswith("'s") and stem not in ref.known_words:
            possessive = True
        if sh is not None or not stem.isalpha() or len(stem) < 3:  # "ok", "ng": too short
            continue
        if stem in ref.known_words or stem in _STOPWORDS:
            continue  # a vocabulary word names an object, not a person
        cands = (stem, stem[:-1]) if stem.endswith("s") and len(stem) > 3 else (stem,)
        name_words.append((stem, cands))
    rest = " ".join(w for w in words if w not in codes and len(w) > 1)
    rest = rest if sum(ch.isalpha() for ch in rest) > 1 else ""
    return _Shape(tuple(codes), possessive, rest, tuple(name_words))


# --- the decision ----------------------------------------------------------------------------
def _topk_mean(sim: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row (``k`` capped at the row length)."""
    if sim.shape[1] == 0:
        return np.full(sim.shape[0], -1.0, dtype=np.float32)
    k = max(1, min(k, sim.shape[1]))
    return np.partition(sim, sim.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


@dataclass
class _Scores:
    obj: np.ndarray  # top-k similarity to the vocabulary
    best_term: np.ndarray  # nearest vocabulary term
    best_sim: np.ndarray  # its cosine
    kind: dict[str, np.ndarray]  # top-k similarity to each bad kind's prototypes
    person: np.ndarray  # top-k similarity to one-word personal-name / kinship prototypes


def _score(E: np.ndarray, R: np.ndarray, ref: _Reference, config: LabelConfig) -> _Scores:
    """Similarities of rows of ``E`` to the reference matrix ``R``, chunk by chunk."""
    n = E.shape[0]
    obj = np.zeros(n, np.float32)
    best_term = np.zeros(n, np.int64)
    best_sim = np.zeros(n, np.float32)
    kind = {k: np.zeros(n, np.float32) for k in BAD_KINDS}
    person = np.zeros(n, np.float32)
    step = max(1, config.chunk_size)
    for a in range(0, n, step):
        sim = E[a : a + step] @ R.T  # one product against vocabulary + prototypes
        vs = sim[:, : ref.n_terms]
        obj[a : a + step] = _topk_mean(vs, config.top_k)
        best_term[a : a + step] = vs.argmax(axis=1)
        best_sim[a : a + step] = vs.max(axis=1)
        for k, cols in ref.kind_cols.items():
            kind[k][a : a + step] = _topk_mean(sim[:, cols], config.top_k)
        person[a : a + step] = _topk_mean(sim[:, ref.person_cols], config.top_k)
    return _Scores(obj, best_term, best_sim, kind, person)


def _embed(embed_fn: EmbedFn, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    out = np.asarray(embed_fn(texts), dtype=np.float32)
    if out.shape[0] != len(texts):
        raise ValueError(f"embed_fn returned {out.shape[0]} rows for {len(texts)} texts")
    return out


def _model_name(embed_fn: EmbedFn, config_name: str | None) -> str:
    if config_name:
        return config_name
    for obj in (embed_fn, getattr(embed_fn, "__self__", None)):
        name = getattr(obj, "model_name", None)
        if isinstance(name, str):
            return name
    return DEFAULT_EMBEDDING_MODEL


@dataclass
class _Triage:
    """The decisions rules make without embeddings, and what is left for the embeddings."""

    raw: list[str]
    norm: list[str]
    canonical: list[str | None]
    decision: list[str]
    reason: list[str]
    score: np.ndarray
    evidence: list[str]
    nearest: list[str | None]
    todo: list[int]  # rows the vocabulary does not name and the no-letters rule does not reject
    shapes: dict[int, _Shape]

    def queries(self) -> list[str]:
        """Distinct texts whose embeddings the decisions of ``todo`` read, in first-use order.

        A label with a code word (``obj_17``, ``8c64-faaa``) is decided by its shape: only
        its name candidates and the rest around the code are embedded, not the label itself.
        That is ~98% of the query texts of a raw corpus, and the decision does not read them.
        """
        queries: dict[str, None] = {}
        for i in self.todo:
            shape = self.shapes[i]
            if not shape.codes:
                queries[self.norm[i]] = None
            queries.update(dict.fromkeys(shape.name_candidates))
            if shape.rest:
                queries[shape.rest] = None
        return list(queries)


def _triage(labels: Sequence[str]) -> _Triage:
    """Steps 1 and 2 of :func:`decide_labels`: vocabulary terms, no letters, word shapes."""
    ref = _reference()
    vocab = load_vocabulary()
    raw = [str(x) for x in dict.fromkeys(labels) if x is not None]
    known = _known_surfaces()
    norm = [normalise(r, known) for r in raw]
    n = len(raw)
    out = _Triage(
        raw, norm, [None] * n, ["reject"] * n, [UNMAPPED] * n, np.zeros(n, dtype=np.float32),
        [""] * n, [None] * n, [], {},
    )  # fmt: skip
    # 1. vocabulary terms (letters and digits compared, so "TrafficLight" is "traffic light")
    for i, t in enumerate(norm):
        key = compact(t)
        if not any(ch.isalpha() for ch in key):
            out.reason[i], out.score[i], out.evidence[i] = GIBBERISH, 1.0, "shape:no_letters"
            continue
        hit = ref.exact.get(key)
        if hit is None:
            out.todo.append(i)
            continue
        out.canonical[i] = vocab.canonical[ref.term_row[hit]]
        out.decision[i] = "keep"
        out.reason[i] = "canonical_match" if ref.is_canonical[hit] else "synonym_match"
        out.score[i] = 1.0
        out.evidence[i] = f"term:{ref.texts[hit]}"
        out.nearest[i] = ref.texts[hit]
    # 2. word shape (no embeddings): codes, possessives, the words to test as names
    out.shapes = {i: _shape(norm[i], ref) for i in out.todo}
    return out


def embedding_texts(labels: Sequence[str]) -> list[str]:
    """Every text :func:`decide_labels` embeds for ``labels``: the reference (vocabulary terms
    and prototypes), then the query texts. Embedding these ahead (``label_embeddings``) leaves
    ``label_map`` nothing to compute."""
    ref_texts = list(_reference().texts)
    return list(dict.fromkeys([*ref_texts, *_triage(labels).queries()]))


def decide_labels(
    labels: Sequence[str],
    embed_fn: EmbedFn,
    config: LabelConfig | None = None,
    embedding_model: str | None = None,
) -> pa.Table:
    """Keep or reject every distinct raw label (the ``label_map`` contract).

    Args:
        labels: raw labels (duplicates and None are fine; one row per distinct label, in
            first-seen order).
        embed_fn: texts -> ``(n, d)`` float32 L2-normalised embeddings (``LabelEmbedder.embed``
            or a cached wrapper). Called at most twice, with distinct texts: the reference
            (vocabulary terms and prototypes), then every query text (labels that are neither
            vocabulary terms nor code-shaped, their words, their non-code parts).
        config: thresholds (:class:`LabelConfig`).
        embedding_model: written into ``embedding_model``; default: ``embed_fn``'s (or its
            object's) ``model_name``, else all-MiniLM-L6-v2.

    Returns:
        a table with :data:`LABEL_MAP_SCHEMA`.
    """
    config = config or LabelConfig()
    ref = _reference()
    vocab = load_vocabulary()
    model = _model_name(embed_fn, embedding_model)
    t = _triage(labels)
    norm, canonical, decision, reason = t.norm, t.canonical, t.decision, t.reason
    score, evidence, nearest = t.score, t.evidence, t.nearest
    if not t.todo:
        return _table(t.raw, norm, canonical, decision, reason, score, model, evidence, nearest)

    # 3. one embedding pass over every query text; one product per chunk of queries
    qtexts = t.queries()
    row = {q: j for j, q in enumerate(qtexts)}
    s = _score(_embed(embed_fn, qtexts), _embed(embed_fn, ref.texts), ref, config)

    # 4. decide
    for i in t.todo:
        sh = t.shapes[i]
        names = []
        for word, cands in sh.name_words:
            m = max(float(s.person[row[c]] - s.obj[row[c]]) for c in cands)
            if m > config.person_margin:
                names.append(f"{word}{m:+.2f}")

        if sh.codes:  # an instance id or a machine code, not a category: decided by shape
            kind = GIBBERISH
            if sh.possessive or names:
                kind = PRIVATE
            elif sh.rest:  # what the code is attached to: "plate", "badge" vs "class", "cls"
                r = row[sh.rest]
                if s.kind[PRIVATE][r] > s.kind[GIBBERISH][r]:
                    kind = PRIVATE
            reason[i], score[i] = kind, 1.0
            evidence[i] = f"shape:code[{','.join(sh.codes)}]"
            continue

        j = row[norm[i]]
        obj = float(s.obj[j])
        bad = {k: float(s.kind[k][j]) for k in BAD_KINDS}
        nearest[i] = ref.texts[int(s.best_term[j])]
        if sh.possessive or names:  # someone's thing, or someone
            reason[i], score[i] = PRIVATE, max(0.5, bad[PRIVATE])
            evidence[i] = "shape:possessive" if sh.possessive else f"word:name[{','.join(names)}]"
            continue

        kind = max(BAD_KINDS, key=bad.__getitem__)
        margin = config.private_reject_margin if kind == PRIVATE else config.reject_margin
        if bad[kind] > obj - margin:
            reason[i], score[i] = kind, bad[kind]
            evidence[i] = f"embedding:{kind}={bad[kind]:.3f} vs object={obj:.3f}"
            continue
        best = float(s.best_sim[j])
        if best >= config.merge_threshold:
            term = int(s.best_term[j])
            canonical[i] = vocab.canonical[ref.term_row[term]]
            decision[i], reason[i], score[i] = "keep", "embedding_match", best
            evidence[i] = f"embedding:nearest={ref.texts[term]}"
        elif obj >= config.novel_min_similarity:
            canonical[i] = norm[i]
            decision[i], reason[i], score[i] = "keep", "novel_object", best
            evidence[i] = f"embedding:object={obj:.3f} vs {kind}={bad[kind]:.3f}"
        else:
            reason[i], score[i] = UNMAPPED, obj
            evidence[i] = f"embedding:object={obj:.3f} < {config.novel_min_similarity}"
    return _table(t.raw, norm, canonical, decision, reason, score, model, evidence, nearest)


def _table(raw, norm, canonical, decision, reason, score, model, evidence, nearest) -> pa.Table:
    return pa.table(
        {
            "raw_label": pa.array(raw, pa.string()),
            "normalised": pa.array(norm, pa.string()),
            "canonical_label": pa.array(canonical, pa.string()),
            "decision": pa.array(decision, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "score": pa.array(np.round(np.asarray(score, np.float32), 4), pa.float32()),
            "embedding_model": pa.array([model] * len(raw), pa.string()),
            "evidence": pa.array(evidence, pa.string()),
            "nearest_term": pa.array(nearest, pa.string()),
        },
        schema=LABEL_MAP_SCHEMA,
    )


# --- sources ---------------------------------------------------------------------------------
SOURCE_DECISION_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("boxes", pa.int64(), nullable=False),
        pa.field("rejected_boxes", pa.int64(), nullable=False),
        pa.field("bad_label_fraction", pa.float64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
    ]
)


def source_label_decisions(
    per_source_counts: pa.Table | pl.DataFrame,
    label_map: pa.Table | pl.DataFrame,
    config: LabelConfig | None = None,
) -> pa.Table:
    """The sources to drop for label quality (``source_label_quality``).

    Args:
        per_source_counts: ``source_id``, ``raw_label``, ``boxes`` (boxes of that label in
            that source; a missing ``boxes`` column counts each row once).
        label_map: the ``label_map`` table (``raw_label``, ``decision``). A raw label absent
            from it counts as rejected (``label_unmapped``), as in the curation step.
        config: ``source_bad_label_fraction``: a source is dropped when the fraction of its
            boxes whose label is rejected is *above* it.

    Returns:
        one row per dropped source (:data:`SOURCE_DECISION_SCHEMA`), sorted by ``source_id``.
    """
    config = config or LabelConfig()
    counts = per_source_counts if isinstance(per_source_counts, pl.DataFrame) else None
    if counts is None:
        counts = pl.from_arrow(per_source_counts)
    assert isinstance(counts, pl.DataFrame)
    if "boxes" not in counts.columns:
        counts = counts.with_columns(pl.lit(1, pl.Int64).alias("boxes"))
    lm = label_map if isinstance(label_map, pl.DataFrame) else pl.from_arrow(label_map)
    assert isinstance(lm, pl.DataFrame)
    keep = lm.filter(pl.col("decision") == "keep").select("raw_label").unique()
    per_source = (
        counts.join(keep.with_columns(pl.lit(True).alias("_kept")), on="raw_label", how="left")
        .group_by("source_id")
        .agg(
            pl.col("boxes").sum().cast(pl.Int64).alias("boxes"),
            pl.col("boxes")
            .filter(pl.col("_kept").is_null())
            .sum()
            .cast(pl.Int64)
            .alias("rejected_boxes"),
        )
        .with_columns(
            (pl.col("rejected_boxes") / pl.max_horizontal(pl.col("boxes"), pl.lit(1))).alias(
                "bad_label_fraction"
            )
        )
        .filter(pl.col("bad_label_fraction") > config.source_bad_label_fraction)
        .with_columns(pl.lit(SOURCE_LABEL_QUALITY).alias("reason"))
        .sort("source_id")
        .select(SOURCE_DECISION_SCHEMA.names)
    )
    return per_source.to_arrow().cast(SOURCE_DECISION_SCHEMA)


# --- measurement -----------------------------------------------------------------------------
def label_quality_report(
    label_map: pa.Table | pl.DataFrame, truth: Mapping[str, str]
) -> dict[str, object]:
    """Precision and recall of the label decisions against known truth (per distinct label).

    Args:
        label_map: the ``label_map`` table.
        truth: raw label -> ``real`` or the bad kind it is (``label_gibberish``,
            ``label_private``, ``label_vague``); labels absent from ``label_map`` are counted
            in ``missing`` and left out of the figures.

    Returns:
        ``labels``, ``real``, ``bad``, ``missing``; ``bad_recall`` (bad labels rejected, any
        reason), ``bad_precision`` (rejected labels that are bad), ``false_reject_rate`` (real
        labels rejected), ``false_rejects`` (up to 20 examples), ``missed_bad`` (up to 20);
        ``by_reason``: per reject reason ``flagged``, ``true``, ``matched``, ``precision``,
        ``recall``; ``keep_reasons``: counts of kept real labels by reason.
    """
    lm = label_map if isinstance(label_map, pl.DataFrame) else pl.from_arrow(label_map)
    assert isinstance(lm, pl.DataFrame)
    decided = dict(zip(lm["raw_label"].to_list(), lm["reason"].to_list()))
    kept = dict(zip(lm["raw_label"].to_list(), (d == "keep" for d in lm["decision"].to_list())))
    pairs = [(lab, t, decided[lab], kept[lab]) for lab, t in truth.items() if lab in decided]
    real = [p for p in pairs if p[1] == "real"]
    bad = [p for p in pairs if p[1] != "real"]
    rejected = [p for p in pairs if not p[3]]

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    by_reason = {}
    for code in REJECT_REASONS:
        flagged = sum(1 for p in pairs if p[2] == code)
        true = sum(1 for p in pairs if p[1] == code)
        matched = sum(1 for p in pairs if p[2] == code and p[1] == code)
        if flagged or true:
            by_reason[code] = {
                "flagged": flagged,
                "true": true,
                "matched": matched,
                "precision": ratio(matched, flagged),
                "recall": ratio(matched, true),
            }
    keep_reasons: dict[str, int] = {}
    for p in real:
        if p[3]:
            keep_reasons[p[2]] = keep_reasons.get(p[2], 0) + 1
    false_rejects = [p for p in real if not p[3]]
    missed = [p for p in bad if p[3]]
    return {
        "labels": len(pairs),
        "real": len(real),
        "bad": len(bad),
        "missing": len(truth) - len(pairs),
        "bad_recall": ratio(len(bad) - len(missed), len(bad)),
        "bad_precision": ratio(sum(1 for p in rejected if p[1] != "real"), len(rejected)),
        "false_reject_rate": ratio(len(false_rejects), len(real)),
        "false_rejects": [f"{p[0]} ({p[2]})" for p in false_rejects[:20]],
        "missed_bad": [f"{p[0]} ({p[1]} kept as {p[2]})" for p in missed[:20]],
        "by_reason": by_reason,
        "keep_reasons": keep_reasons,
    }


__all__ = [
    "BAD_KINDS",
    "KEEP_REASONS",
    "LABEL_MAP_SCHEMA",
    "REJECT_REASONS",
    "SOURCE_DECISION_SCHEMA",
    "LabelConfig",
    "Vocabulary",
    "compact",
    "decide_labels",
    "embedding_texts",
    "label_quality_report",
    "load_prototypes",
    "load_vocabulary",
    "normalise",
    "source_label_decisions",
]
