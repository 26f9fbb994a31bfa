"""The synthetic raw corpus: determinism, caching, contracts, planted truth, renderer.

The files are checked with small readers of our own (``mini_readers``), written from
docs/FORMATS.md and independent of ``assets/sources/readers``; when those readers exist, a last
test runs every tiny source through them too. The near-threshold cases are checked in
``test_near_threshold.py``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sources import mini_readers as M
from tests.sources.mini_readers import MINI_READERS, Read, box_id, iou, self_intersects, vocab_row
from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.layout import SYNTHETIC_MARKER as MARKER
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.render import open_image, render_image
from vprim.assets.sources.synthetic.corpus import Corpus, content_hash, generate_corpus
from vprim.assets.sources.synthetic.labels import VAGUE_LABELS
from vprim.assets.sources.synthetic.plan import (
    SCALES,
    SYNTHETIC_FORMATS,
    plan_source,
    source_id_of,
)
from vprim.assets.sources.synthetic.vocabulary import VOCABULARY_PATH, load_vocabulary, surface_form

#: box-level codes of the images of real-image sources (the last one is kept, not rejected)
IMAGE_CODES = (*R.IMAGE_REASONS, "exif_rotated")

#: the thresholds the near-threshold cases sit next to (GeometryConfig's and LabelConfig's names)
NEAR_THRESHOLDS = {
    "oob_tolerance_px", "oob_tolerance_frac", "truncation_margin_px", "truncation_margin_frac",
    "tiny_min_side_px", "tiny_min_area_frac", "max_aspect", "oversized_area_frac",
    "duplicate_iou", "polygon_bbox_min_iou", "missing_annotation_rate", "min_clean_boxes",
    "source_bad_label_fraction",
}  # fmt: skip

# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_corpus) -> Corpus:
    return tiny_corpus


@pytest.fixture(scope="module")
def catalog(tiny) -> pa.Table:
    return pq.read_table(tiny.catalog_path)


@pytest.fixture(scope="module")
def planted(tiny) -> list[dict]:
    return pq.read_table(tiny.planted_path).to_pylist()


@pytest.fixture(scope="module")
def read(catalog) -> dict[str, Read | None]:
    """Every tiny source read by the small readers below: {source_id: result}."""
    out = {}
    for row in catalog.to_pylist():
        reader = MINI_READERS.get(row["format"])
        out[row["source_id"]] = reader(row["uri"]) if reader else None
    return out


@pytest.fixture(scope="module")
def vocab_keys() -> dict[str, int]:
    return M.vocab_keys()


# --- tests: generation -----------------------------------------------------------------------


def _tree(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out


def test_tiny_is_deterministic_and_independent_of_workers(tiny, tmp_path):
    t = time.perf_counter()
    other = generate_corpus(str(tmp_path / "again"), "tiny", seed=0, workers=2)
    print(f"tiny with 2 workers in {time.perf_counter() - t:.2f}s")
    assert Path(tiny.planted_path).read_bytes() == Path(other.planted_path).read_bytes()
    assert _tree(tiny.sources_dir) == _tree(other.sources_dir)
    a, b = pq.read_table(tiny.catalog_path), pq.read_table(other.catalog_path)
    assert a.drop(["uri"]).equals(b.drop(["uri"]))
    rel = [[os.path.relpath(u, c.sources_dir) for u in t["uri"].to_pylist()]
           for t, c in ((a, tiny), (b, other))]  # fmt: skip
    assert rel[0] == rel[1]
    assert (tiny.n_sources, tiny.n_boxes) == (other.n_sources, other.n_boxes)
    # the same folder regenerated from scratch: byte-identical catalog too
    first = Path(other.catalog_path).read_bytes()
    os.remove(Path(other.catalog_path).parent / MARKER)
    again = generate_corpus(str(tmp_path / "again"), "tiny", seed=0)
    assert Path(again.catalog_path).read_bytes() == first
    # another seed is another corpus
    seeded = generate_corpus(str(tmp_path / "seed1"), "tiny", seed=1)
    assert Path(seeded.planted_path).read_bytes() != Path(tiny.planted_path).read_bytes()


def test_cached_and_atomic(tmp_path):
    out = tmp_path / "c"
    first = generate_corpus(str(out), "tiny", seed=3)
    stamp = os.stat(first.catalog_path).st_mtime_ns
    marker = json.loads((out / MARKER).read_text())
    assert marker["scale"] == "tiny" and marker["seed"] == 3
    assert marker["n_sources"] == first.n_sources and marker["n_boxes"] == first.n_boxes
    t = time.perf_counter()
    second = generate_corpus(str(out), "tiny", seed=3, workers=2)
    assert time.perf_counter() - t < 2.0
    assert second == first and os.stat(second.catalog_path).st_mtime_ns == stamp
    # other parameters: rebuilt and swapped in whole
    third = generate_corpus(str(out), "tiny", seed=4)
    assert json.loads((out / MARKER).read_text())["seed"] == 4 and third.seed == 4
    # a half-written folder (no marker) is never taken as a corpus
    half = tmp_path / "half"
    (half / "sources" / "junk").mkdir(parents=True)
    (half / "catalog.parquet").write_bytes(b"partial")
    fixed = generate_corpus(str(half), "tiny", seed=3)
    assert pq.read_table(fixed.catalog_path).num_rows == first.n_sources
    assert not (half / "sources" / "junk").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "half"]  # no temp folders left


def test_unknown_scale_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown scale"):
        generate_corpus(str(tmp_path / "x"), "huge")


def test_catalog_contract(tiny, catalog):
    from vprim.assets.sources.catalog import validate_catalog

    assert catalog.schema.equals(S.CATALOG_SCHEMA, check_metadata=False)
    validate_catalog(catalog)
    rows = catalog.to_pylist()
    assert len(rows) == tiny.n_sources == SCALES["tiny"].n_sources
    for row in rows:
        # a source is its folder, or the one zip in it (a real-image source delivered so)
        folder = os.path.join(tiny.sources_dir, row["source_id"])
        assert os.path.isabs(row["uri"]) and os.path.isdir(folder)
        files = [(rel, data) for rel, data in _tree(folder).items()]
        if row["uri"] != folder:
            assert row["uri"].endswith(".zip")
            assert [rel for rel, _ in files] == [os.path.basename(row["uri"])]
        assert row["content_hash"] == content_hash(files)
    assert {r["format"] for r in rows} == {*SYNTHETIC_FORMATS, "auto"}


def test_planted_contract_and_coverage(tiny, planted):
    table = pq.read_table(tiny.planted_path)
    assert table.schema.equals(S.PLANTED_SCHEMA, check_metadata=False)
    assert table.schema.metadata[b"vprim.schema_version"] == b"1.2"
    codes = Counter(r["defect"] for r in planted)
    expected = {
        *R.BOX_REASONS,
        "label_gibberish",
        "label_private",
        "label_vague",
        "source_label_quality",
        "source_oversized_everywhere",
        "source_missing_annotations",
        "source_too_few_boxes",
        Reason.PARSE_INVALID_JSON,
        Reason.PARSE_BAD_ENCODING,
        Reason.PARSE_MISSING_IMAGE_SIZE,
        Reason.PARSE_UNKNOWN_FORMAT,
        Reason.PARSE_EMPTY_FILE,
        Reason.PARSE_PATH_ESCAPE,
        "duplicate_image",
        *IMAGE_CODES,
        "duplicate_content",
    }
    assert expected <= set(codes), expected - set(codes)
    near_box = {"near:" + c for c in R.BOX_REASONS if c not in ("non_finite_box",
                "degenerate_box", "crowd_region")}  # fmt: skip
    near_source = {"near:source_missing_annotations", "near:source_too_few_boxes",
                   "near:source_label_quality"}  # fmt: skip
    assert set(codes) - expected == near_box | near_source
    box_level = {*R.BOX_REASONS, "label_gibberish", "label_private", "label_vague",
                 Reason.PARSE_MISSING_IMAGE_SIZE, Reason.PARSE_PATH_ESCAPE, *near_box,
                 *IMAGE_CODES}  # fmt: skip
    ids = set()
    for r in planted:
        if r["defect"] in box_level:
            assert r["image_id"] is not None and r["box_index"] is not None
            want = H.instance_ids(r["source_id"], [r["image_id"]], [r["box_index"]])[0]
            assert r["instance_id"] == int(want)
            ids.add((r["source_id"], r["instance_id"]))
        elif r["defect"] in ("duplicate_image", "duplicate_content"):  # image level
            assert r["image_id"] is not None and r["box_index"] is None
        else:
            assert r["image_id"] is None and r["box_index"] is None and r["instance_id"] is None
        # a near case names the threshold it sits next to; a negative is always one
        assert r["near"] is None or r["near"] in NEAR_THRESHOLDS, r
        assert not r["defect"].startswith("near:") or r["near"] is not None, r
    n_box_rows = sum(1 for r in planted if r["defect"] in box_level)
    assert len(ids) == n_box_rows, "one defect per planted box"


def test_planted_boxes_match_the_files(catalog, planted, read, vocab_keys):
    """Every planted box is where the files say, and has the defect it is planted for."""
    by_id = {}
    for row in catalog.to_pylist():
        r = read[row["source_id"]]
        if r is None:
            continue
        for box in r.boxes:
            by_id[(row["source_id"], box_id(row["source_id"], box))] = box
    image_boxes = defaultdict(list)
    for (sid, _), box in by_id.items():
        image_boxes[(sid, box["image_id"])].append(box)
    checked = Counter()
    for p in planted:
        if p["instance_id"] is None or p["near"] is not None:
            continue  # near-threshold cases: test_near_threshold.py
        box = by_id.get((p["source_id"], p["instance_id"]))
        assert box is not None, f"planted {p} is not in the files"
        assert box["image_id"] == p["image_id"] and box["box_index"] == p["box_index"]
        x0, y0, x1, y1 = box["xyxy"]
        wh = box["size"]
        d = p["defect"]
        finite = all(math.isfinite(v) for v in box["xyxy"])
        if d == "non_finite_box":
            assert not finite
        elif d == "degenerate_box":
            assert x1 <= x0 or y1 <= y0
        elif d == "out_of_bounds":
            W, H = wh
            assert x0 <= -0.1 * W or y0 <= -0.1 * H or x1 >= 1.1 * W or y1 >= 1.1 * H
        elif d == "truncated_box":
            W, H = wh
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert x0 == 0 or y0 == 0 or x1 == W or y1 == H
        elif d == "oversized_box":
            assert (x1 - x0) * (y1 - y0) >= 0.93 * wh[0] * wh[1]
        elif d == "tiny_box":
            assert 0 < min(x1 - x0, y1 - y0) <= 4
        elif d == "extreme_aspect":
            w, h = x1 - x0, y1 - y0
            assert w > 4 and h > 4 and max(w / h, h / w) >= 25
        elif d == "duplicate_box":
            earlier = [
                o for o in image_boxes[(p["source_id"], box["image_id"])]
                if o["box_index"] < box["box_index"] and o["label"] == box["label"]
            ]  # fmt: skip
            assert any(iou(o["xyxy"], box["xyxy"]) >= 0.95 for o in earlier)
        elif d == "crowd_region":
            assert box["crowd"]
        elif d == "invalid_polygon":
            assert box["polygon"] and self_intersects(box["polygon"])
        elif d.startswith("label_"):
            assert vocab_row(box["label"], vocab_keys) is None, box["label"]
        elif d == Reason.PARSE_PATH_ESCAPE:
            assert ".." in box["ref"]
        elif d == Reason.PARSE_MISSING_IMAGE_SIZE:
            assert box["size"] is None and "://" not in box["ref"]
        checked[d] += 1
    assert set(checked) >= set(R.BOX_REASONS)


def test_clean_boxes_are_clearly_clean(catalog, planted, read, vocab_keys):
    bad = {(p["source_id"], p["instance_id"]) for p in planted if p["instance_id"] is not None}
    dups = {(p["source_id"], p["instance_id"]) for p in planted
            if p["defect"] in ("duplicate_box", "near:duplicate_box")}  # fmt: skip
    n_clean = 0
    for row in catalog.to_pylist():
        sid, r = row["source_id"], read[row["source_id"]]
        if r is None:
            continue
        per_image = defaultdict(list)
        for box in r.boxes:
            per_image[box["image_id"]].append(box)
        for boxes in per_image.values():
            for box in boxes:
                if (sid, box_id(sid, box)) in bad:
                    continue
                n_clean += 1
                W, H = box["size"]
                x0, y0, x1, y1 = box["xyxy"]
                w, h = x1 - x0, y1 - y0
                assert all(math.isfinite(v) for v in box["xyxy"])
                assert w >= 16 and h >= 16 and w >= 0.03 * W and h >= 0.03 * H, box
                assert w * h <= 0.6 * W * H and max(w / h, h / w) <= 5, box
                assert min(x0, y0, W - x1, H - y1) >= 0, box
                assert x0 >= 0.03 * W and W - x1 >= 0.03 * W, box
                assert y0 >= 0.03 * H and H - y1 >= 0.03 * H, box
                assert not box["crowd"]
                if box["polygon"]:
                    pts = np.array(box["polygon"]).reshape(-1, 2)
                    assert not self_intersects(box["polygon"])
                    assert np.allclose([*pts.min(0), *pts.max(0)], box["xyxy"], atol=0.01)
                row_of = vocab_row(box["label"], vocab_keys)
                assert row_of is not None, f"clean box with a label outside the vocabulary: {box}"
                for other in boxes:
                    if other is box or (sid, box_id(sid, other)) in dups:
                        continue
                    if vocab_row(other["label"], vocab_keys) == row_of:
                        assert iou(box["xyxy"], other["xyxy"]) < 0.5, (box, other)
    assert n_clean > 1000


def test_source_level_truth(catalog, planted, read):
    src_rows = defaultdict(set)
    box_codes = defaultdict(Counter)
    near_sources = set()
    for p in planted:
        if p["instance_id"] is None:
            src_rows[p["source_id"]].add(p["defect"])
            if p["near"] is not None:
                near_sources.add(p["source_id"])
        else:
            box_codes[p["source_id"]][p["defect"]] += 1
    assert len(near_sources) == 6  # one source per side of each source rule
    kinds = Counter()
    for row in catalog.to_pylist():
        sid, r = row["source_id"], read[row["source_id"]]
        if row["format"] == "auto":
            # nothing can be read: no format, and no box at all
            assert src_rows[sid] == {Reason.PARSE_UNKNOWN_FORMAT, "source_too_few_boxes"}
            continue
        if sid in near_sources:
            continue  # sources next to a source rule's threshold: test_near_threshold.py
        n_boxes = len(r.boxes)
        images_with = {b["image_id"] for b in r.boxes}
        empty = 1 - len(images_with) / len(r.images)
        n_bad_labels = sum(v for k, v in box_codes[sid].items() if k.startswith("label_"))
        if "source_label_quality" in src_rows[sid]:
            kinds["labels"] += 1
            assert n_bad_labels >= 0.55 * n_boxes  # clearly above the 50% threshold
        else:
            assert n_bad_labels <= 0.2 * n_boxes
        if "source_oversized_everywhere" in src_rows[sid]:
            kinds["oversized"] += 1
            over = {
                b["image_id"]
                for b in r.boxes
                if (b["xyxy"][2] - b["xyxy"][0]) * (b["xyxy"][3] - b["xyxy"][1])
                >= 0.93 * b["size"][0] * b["size"][1]
            }
            assert over == set(r.images)
        if "source_missing_annotations" in src_rows[sid]:
            kinds["missing"] += 1
            assert row["format"] != "openimages" and empty >= 0.55
        elif not src_rows[sid] & {"source_label_quality"}:
            assert empty < 0.1, (sid, empty)
    assert kinds["labels"] and kinds["oversized"] and kinds["missing"]


def test_formats_reference_images_as_documented(catalog, read):
    for row in catalog.to_pylist():
        r = read[row["source_id"]]
        if r is None:
            continue
        plan = plan_source("tiny", 0, int(row["source_id"].split("-")[1]))
        owner = source_id_of(plan.mirror_of) if plan.mirror_of >= 0 else row["source_id"]
        for box in r.boxes:
            if ".." in box["ref"] or "://" not in box["ref"]:
                continue  # planted path escape / missing size
            parts = urlsplit(box["ref"])
            assert parts.scheme == "synthetic" and parts.netloc == owner
            assert M.size_from_uri(box["ref"]) == tuple(box["size"])
            if row["format"] in ("coco", "voc", "yolo", "openimages", "labelme"):
                assert parts.path == "/" + box["image_id"]


def test_file_defects_are_where_planted(catalog, planted, read):
    file_rows = Counter(
        (p["source_id"], p["defect"]) for p in planted
        if p["image_id"] is None and p["defect"].startswith("parse_")
    )  # fmt: skip
    for row in catalog.to_pylist():
        sid, r = row["source_id"], read[row["source_id"]]
        if r is None:
            continue
        n_rows = sum(v for (s, d), v in file_rows.items() if s == sid)
        assert len(r.file_errors) == n_rows, (sid, r.file_errors)


def test_mirrors_republish_their_origin_under_other_uri_spellings(catalog, planted, read):
    """A mirror holds its origin's images, labels and boxes; only its id and the spelling of
    the image URIs (query keys swapped) differ, and each of its images is planted once."""
    mirrors = [
        p for p in (plan_source("tiny", 0, i) for i in range(len(catalog))) if p.mirror_of >= 0
    ]
    assert mirrors, "tiny plants at least one mirror"
    dup_rows = Counter(r["source_id"] for r in planted if r["defect"] == "duplicate_image")
    for plan in mirrors:
        mine, theirs = read[plan.source_id], read[source_id_of(plan.mirror_of)]
        assert [b["ref"] for b in mine.boxes] != [b["ref"] for b in theirs.boxes]

        def content(r):  # str: planted non-finite boxes are NaN, and NaN != NaN
            return [(b["label"], str(b["xyxy"]), M.size_from_uri(b["ref"])) for b in r.boxes]

        assert content(mine) == content(theirs)
        for a, b in zip(mine.boxes, theirs.boxes):
            pa_, pb = urlsplit(a["ref"]), urlsplit(b["ref"])
            assert (pa_.netloc, pa_.path) == (pb.netloc, pb.path)
            assert sorted(pa_.query.split("&")) == sorted(pb.query.split("&"))
        assert dup_rows[plan.source_id] == len({b["image_id"] for b in mine.boxes})


def test_vocabulary_file():
    text = VOCABULARY_PATH.read_text(encoding="utf-8")
    comments = [ln for ln in text.splitlines() if ln.startswith("#")]
    assert any("CC BY 4.0" in ln for ln in comments)
    vocab = load_vocabulary()
    assert len(vocab) >= 2000
    assert len(set(vocab.canonical)) == len(vocab)
    assert 0.07 <= vocab.holdout.mean() <= 0.13
    car = vocab.canonical.index("car")
    assert {"automobile", "auto", "motorcar"} <= set(vocab.synonyms[car])
    terms = {M._compact(t) for c, s in zip(vocab.canonical, vocab.synonyms) for t in (c, *s)}
    for word in VAGUE_LABELS:
        assert M._compact(word) not in terms, word


def test_surface_forms():
    assert surface_form("traffic light", "snake") == "traffic_light"
    assert surface_form("traffic light", "kebab") == "traffic-light"
    assert surface_form("traffic light", "camel") == "TrafficLight"
    assert surface_form("car", "upper") == "CAR"
    assert surface_form("car", "capital", plural=True) == "Cars"
    assert surface_form("box", "plain", plural=True) == "boxes"
    assert surface_form("strawberry", "plain", plural=True) == "strawberries"


@pytest.mark.slow
def test_small_scale_numbers(tmp_path):
    t = time.perf_counter()
    corpus = generate_corpus(str(tmp_path / "small"), "small", seed=0, workers=2)
    elapsed = time.perf_counter() - t
    print(f"small: {corpus.n_sources} sources, {corpus.n_boxes} boxes in {elapsed:.1f}s")
    assert corpus.n_sources == 2_000
    assert 800_000 <= corpus.n_boxes <= 1_300_000
    planted = pq.read_table(corpus.planted_path, columns=["source_id", "defect"]).to_pylist()
    src = Counter(p["defect"] for p in planted if p["defect"].startswith("source_"))
    assert 0.50 <= src["source_label_quality"] / 2000 <= 0.62
    geometry = src["source_oversized_everywhere"] + src["source_missing_annotations"]
    assert 0.09 <= geometry / 2000 <= 0.15
    codes = {p["defect"] for p in planted}
    assert set(R.BOX_REASONS) <= codes


# --- renderer --------------------------------------------------------------------------------

URI = "synthetic://syn-000001/000007?w=320&h=240"
BOXES = [[10, 10, 60, 80], [100, 40, 180, 120], [200, 150, 300, 230], [5, 200, 15, 210]]
LABELS = ["car", "traffic_light", "Dog", "cup"]
ATTRS = [{"colour": "red"}, {"pose": "left", "occluded": "1"}, [("pose", "rear")], None]


def test_renderer_is_deterministic():
    a = render_image(URI, BOXES, LABELS, ATTRS)
    b = render_image(URI, np.array(BOXES, dtype=float), LABELS, ATTRS)
    assert a.size == (320, 240) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    other = render_image(URI.replace("000007", "000008"), BOXES, LABELS, ATTRS)
    assert other.tobytes() != a.tobytes()


def test_renderer_draws_inside_each_box_and_follows_attributes():
    bg = np.asarray(render_image(URI, [], []), dtype=np.int16)
    img = np.asarray(render_image(URI, BOXES, LABELS, ATTRS), dtype=np.int16)
    changed = np.abs(img - bg).sum(axis=2) > 0
    for x0, y0, x1, y1 in BOXES:
        inside = changed[y0:y1, x0:x1]
        assert inside.mean() > 0.2
    outside = changed.copy()
    for x0, y0, x1, y1 in BOXES:
        outside[y0:y1, x0:x1] = False
    assert not outside.any()
    red = np.asarray(render_image(URI, BOXES[:1], ["car"], [{"colour": "red"}]))
    blue = np.asarray(render_image(URI, BOXES[:1], ["car"], [{"colour": "blue"}]))
    assert (red != blue).any()
    plain = np.asarray(render_image(URI, BOXES[1:2], ["cup"]))
    occl = np.asarray(render_image(URI, BOXES[1:2], ["cup"], [{"occluded": "1"}]))
    assert (plain != occl).any()
    # bad boxes are skipped, never an error
    render_image(URI, [[math.nan, 0, 5, 5], [50, 50, 50, 80], [-100, -100, 1e9, 1e9]], ["a"] * 3)


def test_open_image_renders_synthetic_and_reads_files(tmp_path):
    a = open_image(URI, BOXES, LABELS, ATTRS)
    assert a.tobytes() == render_image(URI, BOXES, LABELS, ATTRS).tobytes()
    assert open_image(URI).size == (320, 240)
    path = tmp_path / "x.png"
    a.save(path)
    assert open_image(str(path)).tobytes() == a.tobytes()
    with pytest.raises(ValueError):
        open_image("synthetic://s/i?w=100000&h=100000")


# --- the real readers, when they exist --------------------------------------------------------


def test_real_readers_agree_with_planted(catalog, planted):
    """Every tiny source through ``READERS``: planted boxes are read (as boxes, or as box-level
    rejects with the planted parse reason or ``image_missing``), planted files fail with the
    planted reason, nothing else is rejected on read, junk is no format, and unannotated images
    are counted."""
    readers_mod = pytest.importorskip("vprim.assets.sources.readers")
    readers = getattr(readers_mod, "READERS", None)
    if not readers:
        pytest.skip("vprim.assets.sources.readers.READERS does not exist yet")
    from vprim.assets.sources.readers.base import ParseError, Source

    # a reader rejects a box whose image file is missing; the image step the other image codes
    reader_rejects = {*R.PARSE_REASONS, Reason.IMAGE_MISSING}
    want = defaultdict(dict)
    file_rows = defaultdict(Counter)
    source_rows = defaultdict(set)
    for p in planted:
        if p["instance_id"] is not None:
            want[p["source_id"]][p["instance_id"]] = p["defect"]
        elif p["defect"].startswith("parse_"):
            file_rows[p["source_id"]][p["defect"]] += 1
        else:
            source_rows[p["source_id"]].add(p["defect"])
    for row in catalog.to_pylist():
        sid = row["source_id"]
        source = Source(sid, row["uri"])
        if row["format"] == "auto":
            detect = getattr(readers_mod, "detect_format", None)
            if detect is not None:
                assert detect(source) is None
            continue
        reader = readers[row["format"]]
        reader = reader() if isinstance(reader, type) else reader
        context = reader.prepare(source)
        seen: set[int] = set()
        rejects: dict[int, str] = {}
        errors: Counter = Counter()
        n_images = 0
        images_with_boxes: set[str] = set()
        for path in reader.files(source, context):
            try:
                result = reader.read_file(source, context, path)
            except ParseError as exc:
                errors[exc.reason] += 1
                continue
            errors.update(e.reason for e in result.record_errors)
            n_images += result.images
            boxes = result.boxes
            if boxes.num_rows:
                image_ids = boxes["image_id"].to_pylist()
                images_with_boxes.update(image_ids)
                ids = H.instance_ids(sid, image_ids, boxes["box_index"].to_numpy())
                seen.update(int(v) for v in ids)
            for rej in result.rejects:
                rejects[int(H.instance_ids(sid, [rej.image_id], [rej.box_index])[0])] = rej.reason
        where = f"{sid} ({row['format']})"
        assert errors == file_rows[sid], where
        for iid, defect in want[sid].items():
            if defect in reader_rejects:
                assert rejects.get(iid) == defect, where
            else:
                assert iid in seen, f"{where}: planted {defect} box not read"
        assert all(want[sid].get(k) == v for k, v in rejects.items()), where
        if "source_missing_annotations" in source_rows[sid]:
            assert 1 - len(images_with_boxes) / n_images >= 0.55, where
