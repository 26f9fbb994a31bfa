"""The image stage's building blocks: header probe with EXIF, the size rule and coordinate map,
the perceptual hash, near-duplicate search and the probe cache.

Real files: Pillow's and scikit-image's images under tests/sources/data/images (README there);
files written here are written by Pillow (JPEG/PNG with an EXIF block) or zipfile.
"""

from __future__ import annotations

import io
import itertools
import os
import zipfile
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageFile, ImageOps

from vprim.assets.contracts.schemas import READER_SCHEMA
from vprim.assets.sources.images import neardup, orientation
from vprim.assets.sources.images import phash as H
from vprim.assets.sources.images import probe as P
from vprim.assets.sources.images.bench import bench_images, bench_neardup, copies_of

DATA = Path(__file__).parent / "data" / "images"
EXIF = DATA / "exif"
PHOTOS = [*sorted((DATA / "photos").glob("*.jpg")), EXIF / "hopper.jpg"]


def write_jpeg(path: Path, size=(40, 30), orientation: int | None = None, **kw) -> Path:
    """A JPEG written by Pillow, with an EXIF Orientation tag when given."""
    img = Image.new("RGB", size, (90, 120, 150))
    exif = Image.Exif()
    if orientation is not None:
        exif[orientation_tag()] = orientation
    img.save(path, "JPEG", exif=exif, **kw)
    return path


def orientation_tag() -> int:
    return 0x0112  # written out: the EXIF specification's tag number


# --- probe ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(1, 9))
def test_probe_reads_pillows_own_orientation_files(k):
    # Pillow's test images: the same 128x128 picture stored in each orientation
    path = EXIF / ("hopper.jpg" if k == 1 else f"hopper_orientation_{k}.jpg")
    probe = P.probe_uri(str(path))
    assert probe == P.Probe("ok", 128, 128, k, "JPEG")
    assert probe.displayed_size == (128, 128)  # square: stored == displayed


@pytest.mark.parametrize("k", range(1, 9))
def test_probe_of_exif_jpegs_written_by_pillow(tmp_path, k):
    path = write_jpeg(tmp_path / "a.jpg", (40, 30), k)
    probe = P.probe_uri(f"file://{path}")
    assert (probe.status, probe.width, probe.height, probe.orientation) == ("ok", 40, 30, k)
    expected = (30, 40) if k >= 5 else (40, 30)  # 5-8 swap the axes
    assert probe.displayed_size == expected
    assert ImageOps.exif_transpose(Image.open(path)).size == expected  # Pillow agrees


def test_probe_of_a_rectangle_stored_sideways():
    # Pillow's orientation_rectangle.jpg: 2x1 stored, orientation 8, shown 1x2
    probe = P.probe_uri(str(EXIF / "orientation_rectangle.jpg"))
    assert (probe.width, probe.height, probe.orientation, probe.displayed_size) == (2, 1, 8, (1, 2))


@pytest.mark.parametrize("value", [0, 9, 255])
def test_out_of_range_orientation_counts_as_1(tmp_path, value):
    probe = P.probe_uri(str(write_jpeg(tmp_path / "a.jpg", (40, 30), value)))
    assert (probe.status, probe.orientation, probe.displayed_size) == ("ok", 1, (40, 30))


def test_png_orientation_from_exiftool_xmp():
    probe = P.probe_uri(str(EXIF / "xmp_tags_orientation_exiftool.png"))
    assert (probe.status, probe.format, probe.width, probe.orientation) == ("ok", "PNG", 10, 3)


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "PNG", "JPEG"])
def test_orientation_6_in_every_format_shows_the_same_picture(tmp_path, fmt):
    # Pillow 12+ itself reports and loads a TIFF as displayed: the probe still gives the
    # stored size, and the hash is not transposed twice
    photo = Image.open(DATA / "photos" / "chelsea.jpg")  # 451x300
    exif = Image.Exif()
    exif[orientation_tag()] = 6
    photo.save(tmp_path / "x", fmt, exif=exif)
    probe = P.probe_uri(str(tmp_path / "x"), with_hash=True)
    assert (probe.format, probe.width, probe.height, probe.displayed_size) == (
        fmt,
        451,
        300,
        (300, 451),
    )
    shown = io.BytesIO()
    photo.transpose(Image.Transpose.ROTATE_270).save(shown, "PNG")  # what orientation 6 shows
    assert H.hamming(probe.phash, hash_of(shown.getvalue())) <= 2


def test_png_header_probe_decodes_no_pixel(tmp_path, monkeypatch):
    plain, rotated = tmp_path / "plain.png", tmp_path / "rotated.png"
    Image.new("RGB", (50, 20)).save(plain)
    exif = Image.Exif()
    exif[orientation_tag()] = 6
    Image.new("RGB", (50, 20)).save(rotated, exif=exif)

    def no_decoding(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert P.probe_uri(str(plain)) == P.Probe("ok", 50, 20, 1, "PNG")
    assert P.probe_uri(str(rotated)) == P.Probe("ok", 50, 20, 6, "PNG")


def test_truncated_jpeg_header_ok_pixels_undecodable():
    # Pillow's truncated_jpeg.jpg: the header is whole, the scan is cut short
    path = str(EXIF / "truncated_jpeg.jpg")
    assert P.probe_uri(path) == P.Probe("ok", 100, 100, 1, "JPEG")
    hashed = P.probe_uri(path, with_hash=True)
    assert (hashed.status, hashed.width, hashed.height, hashed.phash) == (
        "undecodable",
        100,
        100,
        None,
    )
    assert hashed.detail.startswith("pixels: OSError: image file is truncated")


def test_a_real_photo_cut_short(tmp_path):
    data = (DATA / "photos" / "rocket.jpg").read_bytes()
    assert P.probe_image(data[:20_000]).status == "ok"  # the header is in the first bytes
    assert P.probe_image(data[:20_000], with_hash=True).status == "undecodable"
    assert P.probe_image(data[:100]).status == "undecodable"  # not even a header


@pytest.mark.parametrize(
    "content", [b"", b"this is a text file, not an image\n", b"\xff\xd8\xff\xe0garbage"]
)
def test_non_images_are_undecodable(tmp_path, content):
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    probe = P.probe_uri(str(path), with_hash=True)
    assert (probe.status, probe.width, probe.phash) == ("undecodable", None, None)
    assert probe.detail.startswith("header: ")
    assert " at 0x" not in probe.detail and str(tmp_path) not in probe.detail  # stable text


def test_missing_file_and_opener_without_bytes(tmp_path):
    assert P.probe_uri(str(tmp_path / "nope.jpg")).status == "missing"
    assert P.probe_uri("anything", open_file=lambda uri: None).status == "missing"


def test_opener_errors_other_than_missing_propagate():
    def refuse(uri):
        raise PermissionError(uri)

    with pytest.raises(PermissionError):
        P.probe_uri("x.jpg", open_file=refuse)


def test_probe_through_fsspec_zip_and_memory(tmp_path):
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(EXIF / "hopper_orientation_6.jpg", "train/a.jpg")
    uri = f"zip://train/a.jpg::file://{archive}"
    assert P.probe_uri(uri) == P.Probe("ok", 128, 128, 6, "JPEG")
    assert P.probe_uri(f"zip://train/b.jpg::file://{archive}").status == "missing"
    with fsspec.open("memory://probe/a.jpg", "wb") as f:
        f.write(write_jpeg(tmp_path / "m.jpg", (16, 8), 5).read_bytes())
    probe = P.probe_uri("memory://probe/a.jpg", with_hash=True)
    assert (probe.width, probe.height, probe.orientation, probe.displayed_size) == (
        16,
        8,
        5,
        (8, 16),
    )
    assert probe.phash is not None


def test_probe_of_bytes_embedded_elsewhere():
    data = (EXIF / "hopper_orientation_7.jpg").read_bytes()  # as a Parquet row would hold it
    assert P.probe_uri("x.parquet?row=3", open_file=lambda uri: data).orientation == 7


def test_probe_files_table(tmp_path):
    ok = write_jpeg(tmp_path / "ok.jpg", (40, 30), 6)
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    files = [
        (str(ok), 1, 2),
        ("synthetic://s/1?w=4&h=3", 0, 0),
        (str(tmp_path / "gone.jpg"), None, None),
        (str(bad), 2, 3),
    ]
    table = P.probe_files(files, threads=2)
    assert table.schema == P.IMAGE_PROBE_SCHEMA
    rows = table.to_pylist()
    assert [r["uri"] for r in rows] == [str(ok), str(tmp_path / "gone.jpg"), str(bad)]
    assert [r["status"] for r in rows] == ["ok", "missing", "undecodable"]
    first = rows[0]
    assert (first["width"], first["height"], first["orientation"]) == (40, 30, 6)
    assert (first["displayed_width"], first["displayed_height"], first["format"]) == (
        30,
        40,
        "JPEG",
    )
    assert first["phash"] is not None and rows[1]["phash"] is None
    assert rows[1]["width"] is None and rows[1]["orientation"] == 1


# --- the probe cache -------------------------------------------------------------------------
def test_cache_returns_only_new_or_changed_images(tmp_path):
    a, b, c = (write_jpeg(tmp_path / f"{n}.jpg") for n in "abc")
    before = [(str(a), 10, 100), (str(b), 20, 200), (str(tmp_path / "d.jpg"), None, None)]
    previous = P.probe_files(before)
    now = [
        (str(a), 10, 100),  # unchanged: cached
        (str(b), 20, 201),  # touched: probed again
        (str(c), 30, 300),  # new
        (str(tmp_path / "d.jpg"), None, None),  # missing before: looked at again
        ("synthetic://s/x?w=1&h=1", 0, 0),  # never probed
    ]
    todo = P.to_probe(previous, now)
    assert todo == now[1:4]
    assert P.to_probe(None, now) == now[:4]
    fresh = P.probe_files(todo)
    merged = P.merge_probes(previous, fresh, now)
    assert merged["uri"].to_pylist() == [str(a), str(b), str(c), str(tmp_path / "d.jpg")]
    assert merged["mtime_ns"].to_pylist() == [100, 201, 300, None]
    # a file no longer listed leaves the table
    assert P.merge_probes(merged, P.empty_probes(), now[2:3])["uri"].to_pylist() == [str(c)]


def test_probe_cache_probes_what_changed_on_disk(tmp_path):
    paths = [str(write_jpeg(tmp_path / f"{k}.jpg", (20 + k, 10))) for k in range(3)]
    table, probed, cached = P.ProbeCache(threads=2).probe(P.open_uri, paths)
    assert (probed, cached, table.num_rows) == (3, 0, 3)
    again, probed, cached = P.ProbeCache(table).probe(P.open_uri, paths)
    assert (probed, cached) == (0, 3)
    assert again.equals(table)
    os.utime(paths[1], ns=(1, 1))
    _, probed, cached = P.ProbeCache(again).probe(P.open_uri, [*paths, "synthetic://s/1"])
    assert (probed, cached) == (1, 2)


# --- orientation: the size rule and the coordinate map ------------------------------------
def test_size_rule_near_its_edges():
    # stored 40x30 with orientation 6 is displayed 30x40
    stated = np.array([[30, 40], [40, 30], [41, 30], [40, 31], [30, 41], [np.nan, np.nan], [0, 0]])
    n = len(stated)
    r = orientation.resolve_sizes(stated[:, 0], stated[:, 1], [40] * n, [30] * n, [6] * n)
    assert r.to_displayed.tolist() == [False, True, False, False, False, False, False]
    assert r.mismatch.tolist() == [False, False, True, True, True, False, False]
    assert r.width.tolist() == [30] * n and r.height.tolist() == [40] * n


@pytest.mark.parametrize(
    "stored, o, stated, to_displayed, mismatch",
    [
        ((40, 30), 1, (40, 30), False, False),
        ((40, 30), 1, (30, 40), False, True),  # no EXIF evidence for a swap
        ((40, 30), 3, (40, 30), False, False),  # 2-4 keep the size: taken as displayed
        ((40, 30), 3, (30, 40), False, True),
        ((128, 128), 6, (128, 128), False, False),  # square: stored == displayed
        ((128, 128), 8, (127, 128), False, True),
        ((40, 30), 5, (40, 30), True, False),
        ((40, 30), 7, (40, 30), True, False),
        ((40, 30), 8, (30, 40), False, False),
        ((40, 30), 9, (40, 30), False, False),  # invalid orientation: 1
    ],
)
def test_size_rule_cases(stored, o, stated, to_displayed, mismatch):
    r = orientation.resolve_sizes([stated[0]], [stated[1]], [stored[0]], [stored[1]], [o])
    assert (bool(r.to_displayed[0]), bool(r.mismatch[0])) == (to_displayed, mismatch)


def marked_jpeg(path: Path, k: int, box=(8, 16, 24, 32), size=(64, 40)) -> Path:
    """A JPEG (quality 100) that is black but for a white box, block-aligned so that the JPEG
    keeps its edges, with EXIF orientation k."""
    pixels = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 255
    exif = Image.Exif()
    exif[orientation_tag()] = k
    Image.fromarray(pixels).save(path, "JPEG", quality=100, exif=exif)
    return path


def bright_box(img: Image.Image) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(np.asarray(img.convert("L")) > 128)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


@pytest.mark.parametrize("k", range(1, 9))
def test_box_transform_lands_where_pillow_shows_it(tmp_path, k):
    path = marked_jpeg(tmp_path / "m.jpg", k)
    stored = bright_box(Image.open(path))
    assert stored == (8, 16, 24, 32)
    shown = bright_box(ImageOps.exif_transpose(Image.open(path)))
    moved = orientation.boxes_to_displayed(*([v] for v in stored), [64], [40], [k])
    assert tuple(int(v[0]) for v in moved) == shown


@pytest.mark.parametrize("k", range(1, 9))
def test_point_transform_follows_a_marked_pixel(tmp_path, k):
    # a lossless PNG with one lit pixel at column 10, row 5: its centre is (10.5, 5.5)
    pixels = np.zeros((7, 12), np.uint8)
    pixels[5, 10] = 255
    exif = Image.Exif()
    exif[orientation_tag()] = k
    Image.fromarray(pixels).save(tmp_path / "p.png", exif=exif)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "p.png")))
    row, col = (int(v[0]) for v in np.nonzero(shown))
    x, y = orientation.points_to_displayed([10.5], [5.5], [12], [7], [k])
    assert (x[0], y[0]) == (col + 0.5, row + 0.5)


def test_box_transform_by_hand_keeps_inverted_boxes_inverted():
    # stored 60x40, orientation 6 (rotate 90 clockwise): x' = 40 - y, y' = x
    x0, y0, x1, y1 = orientation.boxes_to_displayed(
        [5, 20], [10, 10], [15, 5], [30, 30], [60, 60], [40, 40], [6, 6]
    )
    assert [x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist()] == [
        [10, 10],
        [5, 20],
        [30, 30],
        [15, 5],  # the second box's x was inverted: its y stays inverted
    ]


def test_polygon_transform_keeps_nulls_and_odd_rings():
    polygons = pa.array(
        [[[1.0, 2.0, 3.0, 4.0]], None, [], [[5.0, 6.0, 7.0]], [[1.0, 1.0], [2.0, 3.0]]],
        type=pa.list_(pa.list_(pa.float64())),
    )
    # stored 10x20; orientation 8 (rotate 90 counter-clockwise): x' = y, y' = 10 - x
    out = orientation.polygons_to_displayed(polygons[1:], [10] * 4, [20] * 4, [8, 8, 8, 1])
    assert out.to_pylist() == [None, [], [[6.0, 5.0, 7.0]], [[1.0, 1.0], [2.0, 3.0]]]
    out = orientation.polygons_to_displayed(polygons, [10] * 5, [20] * 5, [8] * 5)
    assert out.to_pylist()[0] == [[2.0, 9.0, 4.0, 7.0]]


# --- judge: boxes against their probes -------------------------------------------------------
def reader_rows(rows: list[dict]) -> pa.Table:
    defaults = {"raw_label": "cat", "is_crowd": False, "attributes": [], "polygon": None}
    return pa.Table.from_pylist([{**defaults, **r} for r in rows], schema=READER_SCHEMA)


def test_judge_applies_the_rule_per_box(tmp_path):
    rotated = write_jpeg(tmp_path / "r.jpg", (40, 30), 6)  # shown 30x40
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    probes = P.probe_files([(str(p), 1, 1) for p in (rotated, bad, tmp_path / "gone.jpg")])
    box = {"x0": 5.0, "y0": 10.0, "x1": 15.0, "y1": 20.0}
    rows = [
        {"image_id": "a", "image_uri": str(rotated), "image_width": 40, "image_height": 30,
         "box_index": 0, "polygon": [[5.0, 10.0, 15.0, 20.0]], **box},  # stored size
        {"image_id": "a", "image_uri": str(rotated), "image_width": 30, "image_height": 40,
         "box_index": 1, **box},  # displayed size
        {"image_id": "a", "image_uri": str(rotated), "image_width": 30, "image_height": 41,
         "box_index": 2, **box},  # neither
        {"image_id": "b", "image_uri": str(bad), "image_width": 9, "image_height": 9,
         "box_index": 0, **box},
        {"image_id": "c", "image_uri": str(tmp_path / "gone.jpg"), "image_width": 9,
         "image_height": 9, "box_index": 0, **box},
        {"image_id": "d", "image_uri": "synthetic://s/d?w=9&h=9", "image_width": 9,
         "image_height": 9, "box_index": 0, **box},
    ]  # fmt: skip
    judged = P.judge(reader_rows(rows), probes)
    assert [(r[0], r[1], r[2]) for r in judged.rejects] == [
        ("a", 2, "image_size_mismatch"),
        ("b", 0, "image_undecodable"),
        ("c", 0, "image_missing"),
    ]
    assert "30x41" in judged.rejects[0][3] and "40x30 stored" in judged.rejects[0][3]
    kept = judged.boxes.to_pylist()
    assert judged.rotated == 1
    # orientation 6 on 40x30: x' = 30 - y, y' = x
    assert [(k["x0"], k["y0"], k["x1"], k["y1"]) for k in kept] == [
        (10.0, 5.0, 20.0, 15.0),
        (5.0, 10.0, 15.0, 20.0),
        (5.0, 10.0, 15.0, 20.0),
    ]
    assert kept[0]["polygon"] == [[20.0, 5.0, 10.0, 15.0]]
    assert [(k["image_width"], k["image_height"]) for k in kept] == [(30, 40), (30, 40), (9, 9)]


def test_judge_header_sized_rows_take_the_displayed_size(tmp_path):
    rotated = write_jpeg(tmp_path / "r.jpg", (40, 30), 6)
    probes = P.probe_files([(str(rotated), 1, 1)])
    row = {"image_id": "a", "image_uri": str(rotated), "image_width": 40, "image_height": 30,
           "box_index": 0, "x0": 1.0, "y0": 2.0, "x1": 3.0, "y1": 4.0}  # fmt: skip
    judged = P.judge(reader_rows([row]), probes, header_sized=np.array([True]))
    kept = judged.boxes.to_pylist()[0]
    assert (kept["image_width"], kept["image_height"], kept["x0"], judged.rotated) == (
        30,
        40,
        1.0,
        0,
    )


# --- perceptual hash ----------------------------------------------------------------------
def hash_of(data: bytes) -> int:
    probe = P.probe_image(data, with_hash=True)
    assert probe.status == "ok", probe.detail
    return probe.phash


def test_phash_matches_scipys_dct():
    from scipy.fft import dctn

    thumb = H.displayed_thumbnail(Image.open(DATA / "photos" / "chelsea.jpg"))
    low = np.round(dctn(thumb, norm="ortho")[:8, :8].ravel(), 6)  # as documented
    bits = "".join("1" if v > np.median(low[1:]) else "0" for v in low)
    assert H.hash_thumbnail(thumb) == int(bits, 2)


def test_flat_pictures_hash_to_0_or_the_dc_bit_alone(tmp_path):
    # every AC term of a flat picture is 0: no bit but the DC one (brighter than black)
    for colour, expected in ((0, 0), (128, 1 << 63), (255, 1 << 63)):
        data = io.BytesIO()
        Image.new("RGB", (640, 480), (colour,) * 3).save(data, "JPEG")
        assert hash_of(data.getvalue()) == expected


@pytest.mark.parametrize("k", range(2, 9))
def test_phash_is_taken_of_the_displayed_picture(k):
    # Pillow's hopper_orientation_k.jpg all show the picture hopper.jpg shows
    reference = hash_of((EXIF / "hopper.jpg").read_bytes())
    rotated = (EXIF / f"hopper_orientation_{k}.jpg").read_bytes()
    assert H.hamming(reference, hash_of(rotated)) <= H.DEFAULT_RADIUS
    stored_only = H.image_hash(Image.open(io.BytesIO(rotated)))  # EXIF ignored
    assert H.hamming(reference, stored_only) > 3 * H.DEFAULT_RADIUS


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_phash_of_copies_within_the_radius(path):
    original = hash_of(path.read_bytes())
    for name, copy in copies_of(path.read_bytes()).items():
        assert H.hamming(original, hash_of(copy)) <= H.DEFAULT_RADIUS, name


def test_phash_of_different_photos_far_apart():
    hashes = [hash_of(p.read_bytes()) for p in PHOTOS]
    closest = min(H.hamming(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > 4 * H.DEFAULT_RADIUS  # measured: 24 on these photos


def test_phash_reads_a_4000px_jpeg_at_one_eighth(monkeypatch):
    big = io.BytesIO()
    Image.open(DATA / "photos" / "rocket.jpg").resize((4000, 2668)).save(big, "JPEG")
    decoded = []
    convert = Image.Image.convert

    def spy(self, *args, **kwargs):
        decoded.append(self.size)
        return convert(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", spy)
    hash_of(big.getvalue())
    assert decoded[0] == (500, 334)


# --- near duplicates ---------------------------------------------------------------------
def brute_pairs(h: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    return np.nonzero(np.triu(d <= radius, 1))


def flip(value: np.uint64, bits: np.ndarray) -> np.uint64:
    for b in bits:
        value ^= np.uint64(1) << np.uint64(int(b))
    return value


def planted(radius: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Random hashes, plus copies at distance radius and radius + 1 of some of them,
    identical copies, and a chain whose ends are farther apart than the radius."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    near = [flip(base[k], rng.choice(64, radius + k % 2, replace=False)) for k in range(300)]
    chain = [base[400]]
    for _ in range(3):
        chain.append(flip(chain[-1], rng.choice(64, max(radius, 1), replace=False)))
    return np.r_[base, np.array(near + chain, np.uint64), base[:20], base[:3]]


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4, 5, 6])
def test_near_pairs_equals_brute_force_at_the_threshold(radius):
    h = planted(radius)
    i, j = neardup.near_pairs(h, radius)
    bi, bj = brute_pairs(h, radius)
    assert np.array_equal(i, bi) and np.array_equal(j, bj)
    # the copies at radius + 1 are not pairs, those at the radius are
    at_radius = {(k, 2000 + k) for k in range(0, 300, 2)}
    beyond = {(k, 2000 + k) for k in range(1, 300, 2)}
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert at_radius <= found and not beyond & found


@pytest.mark.parametrize("radius", [1, 4])
def test_groups_equal_connected_components_of_brute_force(radius):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    h = planted(radius, seed=radius)
    i, j = brute_pairs(h, radius)
    graph = coo_matrix((np.ones(i.size), (i, j)), shape=(h.size, h.size))
    _, labels = connected_components(graph, directed=False)
    group = neardup.groups(h, radius)
    # same partition; the representative is the smallest member of the group
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        assert (group[members] == members.min()).all()


def test_groups_are_transitive_and_follow_order():
    a = np.uint64(0)
    b = flip(a, [0, 1])
    c = flip(b, [2, 3])  # 4 bits from a: beyond radius 2, linked through b
    h = np.array([c, np.uint64(2**63 - 1), a, b], np.uint64)
    assert neardup.groups(h, 2).tolist() == [0, 1, 0, 0]
    assert neardup.groups(h, 2, order=np.array([5, 0, 3, 9])).tolist() == [2, 1, 2, 2]


def test_many_hashes_sharing_a_key_batch_correctly(monkeypatch):
    monkeypatch.setattr(neardup, "PAIR_BATCH", 1000)  # force many small batches
    rng = np.random.default_rng(3)
    # 1500 hashes that differ in their top 10 bits only: one run of 1500 in most tables, and
    # about a sixth of all pairs within 3 bits (many identical)
    h = (rng.integers(0, 2**10, 1500, dtype=np.uint64) << np.uint64(54)) | np.uint64(12345)
    i, j = neardup.near_pairs(h, 3)
    bi, bj = brute_pairs(h, 3)
    assert i.size > 100_000 and np.array_equal(i, bi) and np.array_equal(j, bj)


def test_identical_hashes_all_pair():
    h = np.r_[np.full(50, 7, np.uint64), np.uint64(8)]  # 7 and 8 are 4 bits apart
    i, _ = neardup.near_pairs(h, 0)
    assert i.size == 50 * 49 // 2
    assert neardup.near_pairs(h, 4)[0].size == 50 * 49 // 2 + 50


@pytest.mark.parametrize("radius", [0, 2, 5])
def test_index_lookup_equals_brute_force(radius):
    h = planted(radius, seed=7)
    base, queries = h[:1500], h[1500:]
    index = neardup.HashIndex(base, radius)
    q, b = index.lookup(queries)
    eq, eb = np.nonzero(np.bitwise_count(queries[:, None] ^ base[None, :]) <= radius)
    assert np.array_equal(q, eq) and np.array_equal(b, eb)
    pi, pj = index.pairs()
    bi, bj = brute_pairs(base, radius)
    assert np.array_equal(pi, bi) and np.array_equal(pj, bj)


def test_real_copies_group_by_picture():
    names, hashes = [], []
    for path in PHOTOS:
        for name, data in {"original": path.read_bytes(), **copies_of(path.read_bytes())}.items():
            names.append((path.stem, name))
            hashes.append(hash_of(data))
    group = neardup.groups(np.array(hashes, np.uint64), H.DEFAULT_RADIUS)
    by_photo = {}
    for (stem, _), g in zip(names, group, strict=True):
        by_photo.setdefault(stem, set()).add(int(g))
    assert all(len(gs) == 1 for gs in by_photo.values())  # every copy found
    assert len(set.union(*by_photo.values())) == len(PHOTOS)  # no two photos merged


def test_hash_input_validation():
    assert neardup.near_pairs(np.array([-1, -1], np.int64), 0)[0].tolist() == [0]
    with pytest.raises(ValueError, match="uint64"):
        neardup.near_pairs(np.array([1.0, 2.0]), 1)
    with pytest.raises(ValueError, match="radius"):
        neardup.near_pairs(np.zeros(3, np.uint64), 33)
    assert neardup.groups(np.zeros(0, np.uint64), 3).size == 0


# --- bench, at a small size -----------------------------------------------------------------
def test_bench_neardup_small():
    figures = bench_neardup(20_000, 4, 400)
    assert figures["tables"] == len(neardup.plan(20_000, 4).tables)
    assert figures["lookup_batch"] == 400 and figures["lookup_microseconds_per_query"] > 0


def test_bench_images_small(tmp_path):
    figures = bench_images(tmp_path, 4, threads=2)
    assert figures["phash_draft_vs_full_decode_max_bits"] <= H.DEFAULT_RADIUS
    assert figures["probe"]["images_per_second"] > 0


def test_leaders_make_stars_not_chains():
    """a-b and b-c within the radius, a-c beyond it: b joins a; c's only partner is b, who
    leads nothing, so c leads its own group. d pairs with a and c: the first leader, a."""
    a, b, c, d = 0, 1, 2, 3
    i = np.array([b, a, a, c])
    j = np.array([c, b, d, d])  # pairs (i < j), in no particular order
    assert neardup.leaders(4, i, j).tolist() == [a, a, c, a]
    assert neardup.leaders(3, np.array([], np.int64), np.array([], np.int64)).tolist() == [0, 1, 2]


def test_leaders_on_hashes_keep_every_member_within_the_radius_of_its_leader():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    walk = [base[0]]
    for bit in range(12):  # a chain: each hash 1 bit from the previous, 12 from the first
        walk.append(walk[-1] ^ np.uint64(1 << bit))
    hashes = np.r_[np.array(walk, np.uint64), base[1:]]
    i, j = neardup.near_pairs(hashes, 4)
    lead = neardup.leaders(hashes.size, i, j)
    distance = np.array([bin(int(h) ^ int(hashes[k])).count("1") for h, k in zip(hashes, lead)])
    assert distance.max() <= 4
    assert len(set(lead[:13].tolist())) == 3  # 13 chained hashes: leaders at 0, 5 and 10
    assert set(lead[:13].tolist()) == {0, 5, 10}
