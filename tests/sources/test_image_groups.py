"""Content groups are keyed by the pictures, not by where the files lie."""

from __future__ import annotations

import polars as pl

from vprim.assets.sources.image_groups import content_groups


def _images(root: str) -> pl.DataFrame:
    # x and y are 4 bits apart (within the default radius), z is 5 bits from x and 9 from y
    return pl.DataFrame(
        {
            "image_uri": [f"{root}/a/x.jpg", f"{root}/b/y.jpg", f"{root}/a/z.jpg"],
            "source_id": ["a", "b", "a"],
            "phash": [0x0, 0xF, 0x1F0],
        },
        schema={"image_uri": pl.String, "source_id": pl.String, "phash": pl.UInt64},
    )


def _keys(root: str) -> dict[str, tuple[str, int, int]]:
    table = pl.from_arrow(content_groups(_images(root), radius=4))
    return {
        uri.removeprefix(root): (key, size, sources)
        for uri, key, size, sources in table.iter_rows()
    }


def test_every_hashed_image_gets_a_content_key_and_singletons_their_own():
    assert _keys("/data") == {
        "/a/x.jpg": ("phash:0000000000000000", 2, 2),
        "/b/y.jpg": ("phash:0000000000000000", 2, 2),
        "/a/z.jpg": ("phash:00000000000001f0", 1, 1),
    }


def test_the_keys_do_not_depend_on_the_storage_root():
    assert _keys("/tmp/one/data") == _keys("s3://bucket/prefix")
