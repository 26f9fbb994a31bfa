"""Column fragments: the kept boxes of one annotation file, in the form its reader converts.

A reader's ``read_file`` gives its kept boxes as one :class:`Fragment`. A fragment is not yet
Arrow: one Arrow table per small file costs more than parsing the file, so ingest hands all
the fragments of a source to their class's :meth:`Fragment.table_of`, which builds the
``READER_SCHEMA`` columns of every box at once (Arrow's fixed cost per array, and NumPy's,
paid once per source). Three kinds serve the six formats:

- :class:`ImageBoxes`: one image and its boxes (VOC, YOLO, LabelMe: a file per image). Each
  format subclasses it with its geometry in raw form (VOC corners, YOLO normalised numbers,
  LabelMe points) and converts all of a source's geometry with NumPy in ``convert``.
- :class:`BoxColumns`: one Python value per box and column, for readers that build rows record
  by record (ODVG).
- :class:`TableFragment`: a table already, for readers that decode whole columns (COCO, Open
  Images).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain, repeat
from operator import attrgetter

import numpy as np
import pyarrow as pa

from vprim.assets.contracts import schemas as S


class Fragment:
    """The kept boxes of one file. ``len`` is their number; :meth:`table_of` makes the
    ``READER_SCHEMA`` table of fragments of this class, rows in fragment order."""

    __slots__ = ()

    def __len__(self) -> int:
        raise NotImplementedError

    @classmethod
    def table_of(cls, fragments: Sequence[Fragment]) -> pa.Table:
        raise NotImplementedError


def reader_table(columns: dict[str, object]) -> pa.Table:
    """Build a READER_SCHEMA table from column arrays, filling optional columns with nulls."""
    n = len(columns["image_id"])  # type: ignore[arg-type]
    arrays = []
    for f in S.READER_SCHEMA:
        value = columns.get(f.name)
        if value is None:
            if f.name == "is_crowd":
                value = np.zeros(n, dtype=bool)
            elif f.name == "attributes":
                value = pa.nulls(n, S.ATTRIBUTES_TYPE)
            else:
                value = pa.nulls(n, f.type)
        arrays.append(pa.array(value, type=f.type) if not isinstance(value, pa.Array) else value)
    return pa.Table.from_arrays(arrays, schema=S.READER_SCHEMA)


def empty_reader_table() -> pa.Table:
    return S.READER_SCHEMA.empty_table()


def attribute_maps(pairs_per_box: list[int], keys: list[str], values: list[str]) -> pa.MapArray:
    """One attribute map per box from flat ``keys``/``values`` (``pairs_per_box`` each)."""
    offsets = np.concatenate([[0], np.cumsum(pairs_per_box, dtype=np.int64)]).astype(np.int32)
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pa.array(keys, pa.string()),
        pa.array(values, pa.string()),
        type=S.ATTRIBUTES_TYPE,
    )


def one_ring_polygons(values: np.ndarray, counts: np.ndarray, has_ring: np.ndarray) -> pa.Array:
    """A polygon column from rows laid end to end in ``values`` (``counts`` values each): a
    row with ``has_ring`` is one ring of its values, any other row is null."""
    counts = np.asarray(counts, dtype=np.int64)
    ring_values = values[np.repeat(has_ring, counts)]
    ring_offsets = np.concatenate([[0], np.cumsum(counts[has_ring])]).astype(np.int32)
    rings = pa.ListArray.from_arrays(pa.array(ring_offsets), pa.array(ring_values, pa.float64()))
    row_offsets = np.concatenate([[0], np.cumsum(has_ring)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(row_offsets), rings, type=S.POLYGON_TYPE, mask=pa.array(~has_ring)
    )


class TableFragment(Fragment):
    """Boxes a reader decoded into a ``READER_SCHEMA`` table itself."""

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    @classmethod
    def table_of(cls, fragments: Sequence[Fragment]) -> pa.Table:
        tables = [f.table for f in fragments]  # type: ignore[attr-defined]
        if not tables:
            return empty_reader_table()
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


class BoxColumns(Fragment):
    """Append-only column builder: one Python value per box and ``READER_SCHEMA`` column."""

    __slots__ = ("cols",)

    def __init__(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in S.READER_SCHEMA.names}

    def __len__(self) -> int:
        return len(self.cols["image_id"])

    def add_image(
        self,
        image_id: str,
        image_uri: str,
        width: int,
        height: int,
        box_indexes: list[int],
        labels: list[str],
        boxes: list[tuple[float, float, float, float]],
    ) -> None:
        """Boxes of one image with no crowd flag, attributes or polygon, one extend per column."""
        k = len(labels)
        if not k:
            return
        c = self.cols
        c["image_id"].extend([image_id] * k)
        c["image_uri"].extend([image_uri] * k)
        c["image_width"].extend([width] * k)
        c["image_height"].extend([height] * k)
        c["box_index"].extend(box_indexes)
        c["raw_label"].extend(labels)
        x0, y0, x1, y1 = zip(*boxes)
        c["x0"].extend(x0)
        c["y0"].extend(y0)
        c["x1"].extend(x1)
        c["y1"].extend(y1)
        c["is_crowd"].extend([False] * k)
        c["attributes"].extend([[]] * k)  # read, never changed: one empty list serves all
        c["polygon"].extend([None] * k)

    @classmethod
    def table_of(cls, fragments: Sequence[Fragment]) -> pa.Table:
        parts = [f.cols for f in fragments]  # type: ignore[attr-defined]
        if len(parts) == 1:
            return pa.Table.from_pydict(parts[0], schema=S.READER_SCHEMA)
        names = S.READER_SCHEMA.names
        merged = {name: list(chain.from_iterable(p[name] for p in parts)) for name in names}
        return pa.Table.from_pydict(merged, schema=S.READER_SCHEMA)


class ImageBoxes(Fragment):
    """The kept boxes of one image: the image (id, URI, width, height), per box its
    ``box_index`` (None: 0, 1, ... every box of the image is kept), label and attributes
    (None: no box has any), and the boxes' ``geometry`` in its reader's raw form: a tuple of
    fields, each numbers over the boxes end to end (an ``array.array`` or a list, see
    :func:`flat`), which a subclass converts for many images at once in :meth:`convert`."""

    __slots__ = ("attributes", "box_index", "geometry", "image", "labels")

    def __init__(
        self,
        image: tuple[str, str, int, int],
        box_index: Sequence[int] | None,
        labels: list[str],
        attributes: list[dict[str, str]] | None,
        geometry: tuple[array | list, ...],
    ) -> None:
        self.image = image
        self.box_index = box_index
        self.labels = labels
        self.attributes = attributes
        self.geometry = geometry

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def convert(cls, geometry: list[tuple], columns: dict) -> dict[str, object]:
        """``x0``, ``y0``, ``x1``, ``y1`` (and ``polygon``) of every box. ``geometry`` holds,
        per geometry field, that field of every fragment (``flat`` lays them end to end);
        ``columns`` the image columns (``image_width`` and ``image_height`` per box)."""
        raise NotImplementedError

    @classmethod
    def table_of(cls, fragments: Sequence[Fragment]) -> pa.Table:
        images: Sequence[ImageBoxes] = fragments  # type: ignore[assignment]
        columns = image_columns(images)
        geometry = list(zip(*map(attrgetter("geometry"), images)))
        columns.update(cls.convert(geometry, columns))
        return reader_table(columns)


def image_columns(fragments: Sequence[ImageBoxes]) -> dict[str, object]:
    """image_id, image_uri, size, box_index, raw_label and attributes of every box."""
    per_image = np.fromiter(map(len, map(_LABELS, fragments)), np.int64, len(fragments))
    image_of_box = np.repeat(np.arange(len(per_image)), per_image)
    ids, uris, widths, heights = (
        (list(c) for c in zip(*map(_IMAGE, fragments))) if fragments else [[]] * 4
    )
    take = pa.array(image_of_box, pa.int64())
    indexes = list(map(_BOX_INDEX, fragments))
    if indexes.count(None) == len(indexes):  # every image keeps all its boxes: 0, 1, ...
        box_index = np.arange(len(image_of_box)) - np.repeat(
            np.cumsum(per_image) - per_image, per_image
        )
    else:
        box_index = np.fromiter(
            chain.from_iterable(
                range(n) if i is None else i for i, n in zip(indexes, per_image.tolist())
            ),
            np.int64,
            len(image_of_box),
        )
    given = list(map(_ATTRIBUTES, fragments))
    if given.count(None) == len(given):  # no box has attributes: empty maps
        attributes: list[dict[str, str]] = []
        pairs = np.zeros(len(image_of_box), dtype=np.int64)
    else:  # one dict per box (a shared empty one where a fragment has none)
        attributes = list(
            chain.from_iterable(
                a if a is not None else repeat(_EMPTY, n) for a, n in zip(given, per_image.tolist())
            )
        )
        pairs = list(map(len, attributes))
    return {
        "image_id": pa.array(ids, pa.string()).take(take),
        "image_uri": pa.array(uris, pa.string()).take(take),
        "image_width": np.array(widths, dtype=np.int64)[image_of_box],
        "image_height": np.array(heights, dtype=np.int64)[image_of_box],
        "box_index": box_index,
        "raw_label": pa.array(list(chain.from_iterable(map(_LABELS, fragments))), pa.string()),
        "attributes": attribute_maps(
            pairs,
            list(chain.from_iterable(attributes)),
            list(chain.from_iterable(map(dict.values, attributes))),
        ),
    }


_LABELS, _IMAGE = attrgetter("labels"), attrgetter("image")
_BOX_INDEX, _ATTRIBUTES = attrgetter("box_index"), attrgetter("attributes")
_EMPTY: dict[str, str] = {}


def packed(typecode: str, values: list) -> array:
    """``values`` (Python numbers) as an ``array.array`` of ``typecode`` (``fromlist`` is the
    fastest way there: extending an array from an iterator costs 3x more)."""
    out = array(typecode)
    out.fromlist(values)
    return out


def flat(parts: tuple[array | list, ...] | None, dtype: type = np.float64) -> np.ndarray:
    """One geometry field of many fragments (None: no fragment), end to end: ``array.array``
    parts have their buffers joined, no Python number touched (for the long fields, the
    coordinates); lists of Python numbers take one pass (for a number or two per box)."""
    parts = parts or ()
    if parts and isinstance(parts[0], array):
        return np.frombuffer(b"".join(parts), dtype=dtype)
    return np.fromiter(chain.from_iterable(parts), dtype=dtype)
