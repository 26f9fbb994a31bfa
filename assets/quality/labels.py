"""Step I of the quality stage: what a raw label means (keep it under a canonical name, or not).

Plain Python, no dagster. :func:`decide_labels` turns the distinct raw labels of the corpus into
the ``label_map`` contract (docs/CONTRACTS.md): one row per distinct raw label with its
``normalised`` form, ``canonical_label`` (null when rejected), ``decision`` (keep | reject),
``reason``, ``score`` and ``embedding_model``, plus ``evidence`` (what fired, for people) and
the nearest vocabulary term.

How a label is decided (all similarities are cosines of all-MiniLM-L6-v2 embeddings of
normalised texts; every comparison is one matrix product per chunk of labels against the
stacked vocabulary + prototype matrix):

Steps 1 and 2 need no embeddings and no thresholds: :func:`triage` runs them once
(``label_embeddings`` writes the :class:`Triage`, ``label_map`` decides from it) and says which
texts steps 3 to 5 embed (:func:`embedding_texts`).

1. :func:`~vprim.assets.quality.vocabulary.normalise` (case, ``_``/``-``/camelCase separators,
   plurals; ``vocabulary.py`` holds it and the shipped data). A label whose
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import KeepReason, Reason
from vprim.assets.quality.embedder import MODEL_NAME as DEFAULT_EMBEDDING_MODEL
from vprim.assets.quality.vocabulary import (
    BAD_KINDS,
    known_surfaces,
    load_prototypes,
    load_vocabulary,
    normalise,
    surface,
)
from vprim.assets.terms import compact

GIBBERISH, PRIVATE, UNMAPPED = Reason.LABEL_GIBBERISH, Reason.LABEL_PRIVATE, Reason.LABEL_UNMAPPED

EmbedFn = Callable[[Sequence[str]], np.ndarray]


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
    known = known_surfaces(vocab_path)
    texts: list[str] = []
    term_row, is_canonical = [], []
    exact: dict[str, int] = {}
    for row, terms in enumerate(vocab.terms):
        for j, term in enumerate(terms):
            text = normalise(term, known)
            exact.setdefault(compact(text), len(texts))
            exact.setdefault(compact(surface(term)), len(texts))
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
class Triage:
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

    def to_table(self) -> pa.Table:
        """The triage as a :data:`schemas.TRIAGE_SCHEMA` table, rows in label order."""
        n = len(self.raw)
        todo = np.zeros(n, dtype=bool)
        todo[self.todo] = True
        shapes = [self.shapes.get(i) for i in range(n)]
        return pa.table(
            {
                "raw_label": self.raw,
                "normalised": self.norm,
                "canonical_label": self.canonical,
                "decision": self.decision,
                "reason": [str(r) for r in self.reason],
                "score": pa.array(self.score, pa.float32()),
                "evidence": self.evidence,
                "nearest_term": self.nearest,
                "todo": todo,
                "codes": [sh and list(sh.codes) for sh in shapes],
                "possessive": [sh and sh.possessive for sh in shapes],
                "rest": [sh and sh.rest for sh in shapes],
                "name_words": [
                    sh and [{"word": w, "candidates": list(c)} for w, c in sh.name_words]
                    for sh in shapes
                ],
            },
            schema=S.TRIAGE_SCHEMA,
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> Triage:
        """The triage :meth:`to_table` wrote."""
        col = {name: table[name].to_pylist() for name in S.TRIAGE_SCHEMA.names}
        todo = [i for i, t in enumerate(col["todo"]) if t]
        shapes = {
            i: _Shape(
                codes=tuple(col["codes"][i]),
                possessive=bool(col["possessive"][i]),
                rest=col["rest"][i],
                name_words=tuple((w["word"], tuple(w["candidates"])) for w in col["name_words"][i]),
            )
            for i in todo
        }
        score = np.asarray(table["score"].to_numpy(zero_copy_only=False), dtype=np.float32)
        return cls(
            col["raw_label"], col["normalised"], col["canonical_label"], col["decision"],
            col["reason"], score, col["evidence"], col["nearest_term"], todo, shapes,
        )  # fmt: skip


def triage(labels: Sequence[str]) -> Triage:
    """Steps 1 and 2 of :func:`decide_labels`: vocabulary terms, no letters, word shapes.

    Args:
        labels: raw labels (duplicates and None are fine; one row per distinct label, in
            first-seen order).
    """
    ref = _reference()
    vocab = load_vocabulary()
    raw = [str(x) for x in dict.fromkeys(labels) if x is not None]
    known = known_surfaces()
    norm = [normalise(r, known) for r in raw]
    n = len(raw)
    out = Triage(
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
        canonical = ref.is_canonical[hit]
        out.reason[i] = KeepReason.CANONICAL_MATCH if canonical else KeepReason.SYNONYM_MATCH
        out.score[i] = 1.0
        out.evidence[i] = f"term:{ref.texts[hit]}"
        out.nearest[i] = ref.texts[hit]
    # 2. word shape (no embeddings): codes, possessives, the words to test as names
    out.shapes = {i: _shape(norm[i], ref) for i in out.todo}
    return out


def embedding_texts(labels: Sequence[str] | Triage) -> list[str]:
    """Every text :func:`decide_labels` embeds for ``labels`` (or their :class:`Triage`): the
    reference (vocabulary terms and prototypes), then the query texts. Embedding these ahead
    (``label_embeddings``) leaves ``label_map`` nothing to compute."""
    t = labels if isinstance(labels, Triage) else triage(labels)
    return list(dict.fromkeys([*_reference().texts, *t.queries()]))


def decide_labels(
    labels: Sequence[str] | Triage,
    embed_fn: EmbedFn,
    config: LabelConfig | None = None,
    embedding_model: str | None = None,
) -> pa.Table:
    """Keep or reject every distinct raw label (the ``label_map`` contract).

    Args:
        labels: raw labels (duplicates and None are fine; one row per distinct label, in
            first-seen order), or their :func:`triage` (not changed).
        embed_fn: texts -> ``(n, d)`` float32 L2-normalised embeddings (``LabelEmbedder.embed``
            or a cached wrapper). Called at most twice, with distinct texts: the reference
            (vocabulary terms and prototypes), then every query text (labels that are neither
            vocabulary terms nor code-shaped, their words, their non-code parts).
        config: thresholds (:class:`LabelConfig`).
        embedding_model: written into ``embedding_model``; default: ``embed_fn``'s (or its
            object's) ``model_name``, else all-MiniLM-L6-v2.

    Returns:
        a table with :data:`schemas.LABEL_MAP_SCHEMA`.
    """
    config = config or LabelConfig()
    ref = _reference()
    vocab = load_vocabulary()
    model = _model_name(embed_fn, embedding_model)
    t = labels if isinstance(labels, Triage) else triage(labels)
    norm, canonical, decision, reason = t.norm, list(t.canonical), list(t.decision), list(t.reason)
    score, evidence, nearest = t.score.copy(), list(t.evidence), list(t.nearest)
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
            decision[i], reason[i], score[i] = "keep", KeepReason.EMBEDDING_MATCH, best
            evidence[i] = f"embedding:nearest={ref.texts[term]}"
        elif obj >= config.novel_min_similarity:
            canonical[i] = norm[i]
            decision[i], reason[i], score[i] = "keep", KeepReason.NOVEL_OBJECT, best
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
        schema=S.LABEL_MAP_SCHEMA,
    )


__all__ = [
    "BAD_KINDS",
    "LabelConfig",
    "Triage",
    "decide_labels",
    "embedding_texts",
    "triage",
]
