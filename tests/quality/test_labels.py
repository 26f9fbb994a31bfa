"""Step I, label meaning: normalisation, the real embedder, its cache, and the measured filter.

Everything here runs the real all-MiniLM-L6-v2 on the CPU; the model is loaded once per module
and the reference texts (vocabulary + prototypes) are embedded once through a module cache.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from vprim.assets.contracts import reasons as R
from vprim.assets.contracts.schemas import LABEL_MAP_SCHEMA
from vprim.assets.quality import curate
from vprim.assets.quality import labels as L
from vprim.assets.quality import vocabulary as V
from vprim.assets.quality.embedder import MODEL_NAME, EmbeddingCache, LabelEmbedder, embed_cached
from vprim.assets.terms import compact


@pytest.fixture(scope="module")
def embedder() -> LabelEmbedder:
    return LabelEmbedder(device="cpu")


@pytest.fixture(scope="module")
def embed(embedder, tmp_path_factory):
    cache = EmbeddingCache(tmp_path_factory.mktemp("emb") / "cache.parquet")

    def fn(texts):
        return cache.embed_cached(embedder, texts)[0]

    fn.model_name = embedder.model_name
    return fn


def decide(labels, embed) -> dict[str, dict]:
    table = L.decide_labels(labels, embed)
    return {r["raw_label"]: r for r in table.to_pylist()}


# --- normalisation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Car", "car"),  # case only
        ("cars", "car"),  # regular plural of a vocabulary term
        ("traffic_light", "traffic light"),  # snake_case
        ("traffic-light", "traffic light"),  # kebab-case
        ("TrafficLight", "traffic light"),  # PascalCase
        ("trafficLights", "traffic light"),  # camelCase and a plural at once
        ("TRAFFIC_LIGHTS", "traffic light"),  # SHOUTING_SNAKE: no camel split inside capitals
        ("IDCard", "id card"),  # an acronym run before a capitalised word
        ("ChestOfDrawers", "chest of drawers"),  # short words inside camelCase ("Of")
        ("iPhone", "iphone"),  # a single leading lower-case letter is not a word
        ("  hot   dog  ", "hot dog"),  # stray and repeated whitespace
        ("Batteries", "battery"),  # -ies -> -y
        ("boxes", "box"),  # -xes -> -x
        ("buses", "bus"),  # -es plural whose singular ends in s
        ("James", "jame"),  # -es is a plural ending only after s, x, z, ch, sh, o: not "jam"
        ("hamsters", "hamster"),  # unknown word: the usual English rule
        ("glasses", "glasses"),  # a plurale tantum stays plural
        ("sunglasses", "sunglasses"),  # ... also as a suffix
        ("skis", "skis"),  # a vocabulary term written in the plural is kept as written
        ("canvas", "canvas"),  # a singular that merely ends in s
        ("Power Plugs And Sockets", "power plugs and sockets"),  # a coordination stays plural
        ("Organ(musicalInstrument)", "organ (musical instrument)"),  # parenthesised qualifier
        ("Li's shoes", "li's shoe"),  # possessive kept, last word singularised to a known word
        ("class_3", "class 3"),  # digits survive as their own word
        ("N/A", "n/a"),  # punctuation inside a word is kept
        ("café table", "café table"),  # non-ASCII letters are letters
        ("", ""),  # empty stays empty
    ],
)
def test_normalise(raw, expected):
    assert V.normalise(raw) == expected


def test_shipped_data_loads():
    vocab = V.load_vocabulary()
    protos = V.load_prototypes()
    assert len(vocab) > 2000
    assert sum(len(t) for t in vocab.terms) > 2500
    kinds = Counter(k for k, _ in protos)
    assert set(kinds) == set(L.BAD_KINDS)
    assert min(kinds.values()) >= 100  # many varied prototypes of each kind
    # no prototype is itself an object term of the vocabulary
    ref = L._reference()
    assert not [x for _, x in protos if compact(V.normalise(x)) in ref.exact]


# --- synonyms and canonical names ------------------------------------------------------------
def test_synonyms_merge(embed):
    got = decide(
        ["automobile", "cars", "Car", "traffic_light", "TrafficLight", "traffic-light"], embed
    )
    for raw in ("automobile", "cars", "Car"):
        assert got[raw]["canonical_label"] == "car", got[raw]
        assert got[raw]["decision"] == "keep"
    for raw in ("traffic_light", "TrafficLight", "traffic-light"):
        assert got[raw]["canonical_label"] == "traffic light", got[raw]
    assert got["automobile"]["reason"] == "synonym_match"
    assert got["Car"]["reason"] == "canonical_match"
    assert {r["score"] for r in got.values()} == {1.0}


def test_embedding_merge_of_unlisted_surface_forms(embed):
    # not vocabulary terms, but near-duplicates of one: merged by cosine >= merge_threshold
    got = decide(["kitty cat", "puppy dog"], embed)
    assert got["kitty cat"]["canonical_label"] == "cat"
    assert got["puppy dog"]["canonical_label"] == "dog"
    for row in got.values():
        assert row["reason"] == "embedding_match"
        assert row["score"] >= L.LabelConfig().merge_threshold


# --- bad labels, on examples that are not prototypes -----------------------------------------
BAD_EXAMPLES = {
    "label_gibberish": [
        "0", "17", "class_3", "cls12", "label_9", "a3f9c2e1", "xkcd_q", "n01440764", "obj_4",
        "c7", "L12", "b7e2-44fa", "zzqx", "---",
    ],
    "label_private": [
        "MyRoommate", "johns_mug", "Sarah's phone", "ID_Card_1", "Kevin", "Emily Chen",
        "sarah_face", "employee_badge_042", "plate_AB12XYZ", "mom_bike", "passport_olga",
        "ChloeNguyen",
    ],
    "label_vague": [
        "OK", "NG", "good", "bad", "other", "object", "thing", "misc", "unknown", "stuff",
        "fail", "normal", "abnormal", "N/A", "none", "Others", "things",
    ],
}  # fmt: skip


def test_bad_examples_are_not_prototypes():
    protos = {V.normalise(x) for _, x in V.load_prototypes()}
    for examples in BAD_EXAMPLES.values():
        assert not [x for x in examples if V.normalise(x) in protos]


@pytest.mark.parametrize("kind", L.BAD_KINDS)
def test_bad_kinds_rejected(embed, kind):
    got = decide(BAD_EXAMPLES[kind], embed)
    for row in got.values():
        assert row["decision"] == "reject", row
        assert row["canonical_label"] is None
        assert row["reason"] == kind, row
        assert 0.0 < row["score"] <= 1.0
        assert row["evidence"]


# --- hold-out: real names the shipped vocabulary does not contain ----------------------------
HOLDOUT_STYLE = [
    "hamster", "dolphin", "Croissant", "AlarmClock", "washing_machines", "fireplace",
    "necklace", "flowerpot", "shovel", "trophy", "avocado", "donkey", "Cello", "scoreboard",
    "Sea_Turtles", "wind turbine", "snow globe", "kayak paddle", "ukulele",
]  # fmt: skip


def test_holdout_style_names_are_kept(embed):
    ref = L._reference()
    for raw in HOLDOUT_STYLE:  # none of them is a term of the shipped vocabulary
        assert compact(V.normalise(raw)) not in ref.exact, raw
    got = decide(HOLDOUT_STYLE, embed)
    for raw, row in got.items():
        assert row["decision"] == "keep", row
        assert row["reason"] == "novel_object", row
        assert row["canonical_label"] == V.normalise(raw)
        assert 0.0 < row["score"] < L.LabelConfig().merge_threshold


def test_label_map_contract(embed):
    table = L.decide_labels(["Car", "car", "Car", None, "xkcd_q", "hamster"], embed)
    assert table.schema.equals(LABEL_MAP_SCHEMA)
    assert table["raw_label"].to_pylist() == ["Car", "car", "xkcd_q", "hamster"]  # distinct
    assert set(table["embedding_model"].to_pylist()) == {MODEL_NAME}
    rows = table.to_pylist()
    for r in rows:
        assert (r["canonical_label"] is None) == (r["decision"] == "reject")
        assert r["reason"] in R.KEEP_REASONS + R.LABEL_REASONS


# --- the embedder and its cache --------------------------------------------------------------
class CountingEmbedder:
    """Wraps the real embedder and counts the texts it is asked to embed."""

    def __init__(self, inner: LabelEmbedder):
        self.inner = inner
        self.model_name = inner.model_name
        self.dim = inner.dim
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded.extend(texts)
        return self.inner.embed(texts)


def test_embedder_output(embedder):
    m = embedder.embed(["car", "automobile", "banana"])
    assert m.dtype == np.float32 and m.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    assert m[0] @ m[1] > m[0] @ m[2]  # a synonym is closer than an unrelated object
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.device == "cpu"
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_cache_embeds_only_new_texts(embedder, tmp_path):
    path = tmp_path / "emb.parquet"
    counting = CountingEmbedder(embedder)
    cache = EmbeddingCache(path)
    first, n_new = cache.embed_cached(counting, ["car", "dog", "car", "cat"])
    assert n_new == 3 and len(counting.embedded) == 3  # distinct texts, once each
    assert first.shape == (4, 384)
    np.testing.assert_array_equal(first[0], first[2])

    again, n_new = cache.embed_cached(counting, ["cat", "car", "dog"])
    assert n_new == 0 and len(counting.embedded) == 3  # nothing embedded the second time
    np.testing.assert_array_equal(again[1], first[0])

    reopened = EmbeddingCache(path)  # a later run reads the file
    _, n_new = reopened.embed_cached(counting, ["dog", "car"])
    assert n_new == 0 and len(counting.embedded) == 3
    _, n_new = embed_cached(counting, ["dog", "zebra"], reopened)  # only the new one
    assert n_new == 1 and counting.embedded[-1] == "zebra"

    table = pq.read_table(path)
    assert sorted(table["text"].to_pylist()) == ["car", "cat", "dog", "zebra"]
    assert set(table["model"].to_pylist()) == {MODEL_NAME}
    assert [p.name for p in tmp_path.iterdir()] == ["emb.parquet"]  # no temporary left over
    fresh = embedder.embed(["zebra"])[0]
    np.testing.assert_allclose(reopened.get(MODEL_NAME, ["zebra"])[0][0], fresh, atol=1e-6)

    # a step whose texts are all cached never loads the model (label_map after
    # label_embeddings): it is loaded on the first text that must be embedded
    lazy = LabelEmbedder(device="cpu")
    _, n_new = embed_cached(lazy, ["dog", "zebra"], reopened)
    assert n_new == 0 and lazy._model is None and lazy.dim == 384
    _, n_new = embed_cached(lazy, ["okapi"], reopened)
    assert n_new == 1 and lazy._model is not None


def test_embedding_texts_cover_label_map_and_skip_code_labels(embedder, tmp_path):
    """``label_embeddings`` embeds what ``label_map`` reads: afterwards the map is decided from
    the cache alone, and a code-shaped label is decided without its own embedding."""
    labels = ["Car", "obj_17", "anna's bike", "license plate 7f3a9c", "8c64-faaa", "hamster",
              "xkcd_q", "12345", "wheelbarrow"]  # fmt: skip
    triage = L.triage(labels)
    texts = L.embedding_texts(triage)
    assert texts == L.embedding_texts(labels)
    assert len(texts) == len(set(texts))
    codes = [V.normalise(t) for t in ("obj_17", "8c64-faaa", "license plate 7f3a9c", "12345")]
    assert set(codes).isdisjoint(texts)
    assert {"hamster", "wheelbarrow", "license plate"} <= set(texts)  # a code's rest is read

    counting = CountingEmbedder(embedder)
    cache = EmbeddingCache(tmp_path / "emb.parquet")
    cache.embed_cached(counting, texts)
    ahead = len(counting.embedded)
    # label_map decides from the triage label_embeddings wrote (a Parquet round trip)
    stored = tmp_path / "triage.parquet"
    pq.write_table(triage.to_table(), stored)
    read_back = L.Triage.from_table(pq.read_table(stored))
    table = L.decide_labels(read_back, lambda t: cache.embed_cached(counting, t)[0])
    assert len(counting.embedded) == ahead  # label_map embedded nothing new
    assert table.equals(L.decide_labels(labels, lambda t: cache.embed_cached(counting, t)[0]))

    rows = {r["raw_label"]: r for r in table.to_pylist()}
    for code_label in ("obj_17", "8c64-faaa", "license plate 7f3a9c"):
        row = rows[code_label]
        assert row["decision"] == "reject" and row["evidence"].startswith("shape:code")
        assert row["score"] == 1.0 and row["nearest_term"] is None  # decided by shape
    assert rows["hamster"]["decision"] == "keep" and rows["hamster"]["nearest_term"]


def test_deciding_leaves_the_triage_unchanged(embed):
    # label_map may decide one triage under several configs: each decision starts afresh
    triage = L.triage(["hamster", "kitty cat", "Car"])
    before = triage.to_table()
    strict = L.decide_labels(triage, embed, L.LabelConfig(novel_min_similarity=1.0))
    assert (
        dict(zip(strict["raw_label"].to_pylist(), strict["reason"].to_pylist()))["hamster"]
        == "label_unmapped"
    )
    default = L.decide_labels(triage, embed)
    assert triage.to_table().equals(before)
    rows = {r["raw_label"]: r for r in default.to_pylist()}
    assert rows["hamster"]["reason"] == "novel_object" and rows["hamster"]["decision"] == "keep"
    assert rows["kitty cat"]["reason"] == "embedding_match"


# --- measured on the synthetic corpus --------------------------------------------------------
def corpus_labels_with_truth(root: str) -> tuple[dict[str, str], pa.Table]:
    """Distinct raw labels of a generated corpus with their planted truth, and per-source
    box counts, read through the real format readers (``read_source``)."""
    from vprim.assets.sources.ingest import read_source
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    corpus = generate_corpus(root, "tiny")
    planted = pq.read_table(corpus.planted_path)
    bad = planted.filter(pc.starts_with(planted["defect"], "label_"))
    kind_of = dict(zip(bad["instance_id"].to_pylist(), bad["defect"].to_pylist()))
    truth: dict[str, Counter] = {}
    counts: Counter = Counter()
    for row in pq.read_table(corpus.catalog_path).to_pylist():
        outcome = read_source(row["source_id"], row["uri"], row["format"])
        for boxes in outcome.boxes:
            ids = boxes["instance_id"].to_pylist()
            for iid, raw in zip(ids, boxes["raw_label"].to_pylist()):
                truth.setdefault(raw, Counter())[kind_of.get(iid, "real")] += 1
                counts[(row["source_id"], raw)] += 1
    per_source = pa.table(
        {
            "source_id": [k[0] for k in counts],
            "raw_label": [k[1] for k in counts],
            "boxes": list(counts.values()),
        }
    )
    return {raw: c.most_common(1)[0][0] for raw, c in truth.items()}, per_source


def test_measured_on_tiny_corpus(embed, tmp_path):
    truth, per_source = corpus_labels_with_truth(str(tmp_path / "tiny"))
    kinds = Counter(truth.values())
    assert kinds["real"] > 100 and all(kinds[k] > 0 for k in L.BAD_KINDS)
    label_map = L.decide_labels(sorted(truth), embed)
    rows = {r["raw_label"]: r for r in label_map.to_pylist()}
    assert set(truth) <= set(rows)
    real = [lab for lab, t in truth.items() if t == "real"]
    bad = [lab for lab, t in truth.items() if t != "real"]
    missed = [f"{lab} ({truth[lab]})" for lab in bad if rows[lab]["decision"] == "keep"]
    false_rejects = [f"{lab} ({rows[lab]['reason']})" for lab in real
                     if rows[lab]["decision"] != "keep"]  # fmt: skip
    assert len(missed) <= 0.05 * len(bad), missed  # bad-label recall >= 0.95
    assert len(false_rejects) <= 0.01 * len(real), false_rejects
    assert any(rows[lab]["reason"] == "novel_object" for lab in real)  # hold-out names kept
    # step I's source rule, as curation applies it, drops exactly the planted sources
    boxes = per_source["boxes"].to_numpy()
    sources = np.repeat(per_source["source_id"].to_numpy(zero_copy_only=False), boxes)
    raw_labels = pa.array(np.repeat(per_source["raw_label"].to_numpy(zero_copy_only=False), boxes))
    _, _, label_bad = curate.label_fates(raw_labels, label_map)
    _, dropped = curate.source_label_quality(sources, label_bad, L.LabelConfig())
    planted = pq.read_table(tmp_path / "tiny" / "planted.parquet")
    expected = planted.filter(pc.equal(planted["defect"], "source_label_quality"))
    assert set(dropped) == set(expected["source_id"].to_pylist())


COCO_80 = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
VOC_20 = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


def test_real_dataset_category_names_are_kept(embed):
    # the category lists of two public datasets, as their files spell them
    names = COCO_80 + VOC_20
    out = decide(names, embed)
    rejected = [n for n in names if out[n]["decision"] != "keep"]
    assert len(rejected) <= 0.01 * len(names) + 1, rejected
    assert out["motorbike"]["canonical_label"] == out["motorcycle"]["canonical_label"]
