"""Write the hf_parquet test sources as the ``datasets`` library writes Parquet shards.

``datasets`` is not installed here (and no real detection shard could be fetched), so this
writes with pyarrow what ``datasets.ArrowWriter`` / ``Dataset.to_parquet`` write: the Arrow
types of the features and the schema metadata key ``huggingface`` holding
``{"info": {"features": Features.to_dict()}}``. The features are cppe-5's (as the
``datasets`` 2.x script defined them: a ``Sequence`` of a dict, stored as a struct of lists)
and a ``datasets`` 4.x ``List`` of a dict (stored as a list of structs). Run it from the
repository root: ``.venv/bin/python tests/sources/data/hf_parquet/make_fixtures.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

HERE = Path(__file__).parent
CPPE5_NAMES = ["Coverall", "Face_Shield", "Gloves", "Goggles", "Mask"]
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def with_features(table: pa.Table, features: dict) -> pa.Table:
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return table.replace_schema_metadata(meta)


# --- cppe5: datasets 2.x, Sequence({...}) = struct of lists, ClassLabel, embedded PNGs ------
CPPE5_FEATURES = {
    "image_id": value("int64"),
    "image": {"_type": "Image"},
    "width": value("int32"),
    "height": value("int32"),
    "objects": {
        "feature": {
            "id": value("int64"),
            "area": value("int64"),
            "bbox": {"feature": value("float32"), "length": 4, "_type": "Sequence"},
            "category": {"names": CPPE5_NAMES, "_type": "ClassLabel"},
        },
        "_type": "Sequence",
    },
}
CPPE5_OBJECTS = pa.struct(
    [
        ("id", pa.list_(pa.int64())),
        ("area", pa.list_(pa.int64())),
        ("bbox", pa.list_(pa.list_(pa.float32(), 4))),
        ("category", pa.list_(pa.int64())),
    ]
)


def cppe5_train() -> pa.Table:
    """4 rows in 2 row groups. Row 2 has no width/height (size from the PNG header: 7x5);
    row 3 has no objects. Row 1's third box has category 5 (names 0..4) and its fourth -1."""
    objects = [
        {"id": [1, 2], "area": [200, 36], "bbox": [[10, 20, 20, 10], [0.5, 1.5, 6, 6]],
         "category": [0, 4]},
        {"id": [3, 4, 5, 6], "area": [1, 1, 1, 1],
         "bbox": [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4]],
         "category": [1, 4, 5, -1]},
        {"id": [7], "area": [4], "bbox": [[1, 2, 2, 2]], "category": [3]},
        {"id": [], "area": [], "bbox": [], "category": []},
    ]  # fmt: skip
    images = [
        {"bytes": png(40, 30, (200, 0, 0)), "path": "IMG_0001.png"},
        {"bytes": png(16, 16, (0, 200, 0)), "path": "IMG_0002.png"},
        {"bytes": png(7, 5, (0, 0, 200)), "path": "IMG_0003.png"},
        {"bytes": png(9, 9, (9, 9, 9)), "path": "IMG_0004.png"},
    ]
    table = pa.table(
        {
            "image_id": pa.array([101, 102, 103, 104], pa.int64()),
            "image": pa.array(images, IMAGE_TYPE),
            "width": pa.array([40, 16, None, 9], pa.int32()),
            "height": pa.array([30, 16, None, 9], pa.int32()),
            "objects": pa.array(objects, CPPE5_OBJECTS),
        }
    )
    return with_features(table, CPPE5_FEATURES)


def cppe5_test() -> pa.Table:
    """1 row, image_id 101 again (ids restart per split): a second file qualifies ids."""
    objects = [{"id": [9], "area": [9], "bbox": [[3, 3, 3, 3]], "category": [2]}]
    table = pa.table(
        {
            "image_id": pa.array([101], pa.int64()),
            "image": pa.array([{"bytes": png(12, 8, (1, 2, 3)), "path": "t.png"}], IMAGE_TYPE),
            "width": pa.array([12], pa.int32()),
            "height": pa.array([8], pa.int32()),
            "objects": pa.array(objects, CPPE5_OBJECTS),
        }
    )
    return with_features(table, CPPE5_FEATURES)


# --- listed: datasets 4.x, List({...}) = list of structs, string categories, image paths ----
LISTED_FEATURES = {
    "image": {"_type": "Image"},
    "objects": {
        "feature": {
            "bbox": {"feature": value("float64"), "_type": "List"},
            "category": value("string"),
            "iscrowd": value("bool"),
        },
        "_type": "List",
    },
}
LISTED_OBJECTS = pa.list_(
    pa.struct(
        [("bbox", pa.list_(pa.float64())), ("category", pa.string()), ("iscrowd", pa.bool_())]
    )
)


def listed_train() -> pa.Table:
    """No image_id, width or height columns. Row 0's image is the file images/street.png
    (bytes null, as ``to_parquet`` leaves a path-only image); row 1's is embedded (6x4)
    under a basename that is not a file here. Row 1: a 3-number bbox, a null coordinate,
    an empty category, a crowd box."""
    objects = [
        [{"bbox": [0, 0, 5, 5], "category": "car", "iscrowd": False}],
        [
            {"bbox": [1, 1, 2], "category": "car", "iscrowd": False},
            {"bbox": [1, None, 2, 2], "category": "bus", "iscrowd": False},
            {"bbox": [1, 1, 2, 2], "category": "", "iscrowd": False},
            {"bbox": [0.25, 0.5, 4, 3], "category": "crowd of people", "iscrowd": True},
        ],
    ]
    images = [
        {"bytes": None, "path": "images/street.png"},
        {"bytes": png(6, 4, (5, 5, 5)), "path": "frame.png"},
    ]
    table = pa.table(
        {"image": pa.array(images, IMAGE_TYPE), "objects": pa.array(objects, LISTED_OBJECTS)}
    )
    return with_features(table, LISTED_FEATURES)


def main() -> None:
    for name, table, group in (
        ("cppe5/data/train-00000-of-00001.parquet", cppe5_train(), 2),
        ("cppe5/data/test-00000-of-00001.parquet", cppe5_test(), 100),
        ("listed/data/train-00000-of-00001.parquet", listed_train(), 100),
    ):
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, row_group_size=group)
    (HERE / "listed/images").mkdir(parents=True, exist_ok=True)
    (HERE / "listed/images/street.png").write_bytes(png(50, 25, (9, 90, 9)))
    # the embedded images, for tests that compare read_embedded_image with them
    (HERE / "pngs").mkdir(exist_ok=True)
    for k, image in enumerate(cppe5_train()["image"].to_pylist()):
        (HERE / f"pngs/cppe5_train_row{k}.png").write_bytes(image["bytes"])


if __name__ == "__main__":
    main()
