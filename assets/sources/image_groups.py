"""Near-duplicate content groups over every probed image: what ``image_duplicates`` writes.

Two sources often publish one picture under unrelated names (re-uploads, re-encodes,
resizes). Ingest's image step gives every real image a 64-bit perceptual hash
(``images/probes/shard=NNN.parquet``); here the hashes of all shards are grouped within a
Hamming radius (:func:`vprim.assets.sources.images.neardup.near_pairs`: multi-index search,
never all pairs) and every hashed image gets its group's key in ``images/groups.parquet``
(``image_uri, group_key, group_size, sources``; an image without a near duplicate is a group
of one). The lake compares images by this key, and by normalised URI where an image has none
(no pixels).

Groups are stars, not chains (:func:`~vprim.assets.sources.images.neardup.leaders`): in URI
order an image joins the first earlier leader within the radius, else leads its own group, so
every member is within the radius of its leader. A transitive closure chained unrelated
synthetic renders into groups of hundreds.

The key is made of the pictures, not of their addresses: ``phash:`` and the group's smallest
hash (identical hashes always share a group, so no two groups have the same smallest). The
lake's split follows the key, so a corpus moved to another root (a local folder to
``s3://``) keeps every image in the same split; keyed by URI, it moved some across.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from vprim.assets.contracts import layout
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.incremental import code_version
from vprim.assets.sources.evaluate import parse_scores
from vprim.assets.sources.images import neardup, phash
from vprim.assets.storage import Storage

#: what decides the groups besides the probes and the radius
CODE_VERSION = code_version("assets/sources/image_groups.py", "assets/sources/images/neardup.py")
#: the default Hamming radius between two copies' 64-bit perceptual hashes
DEFAULT_RADIUS = phash.DEFAULT_RADIUS

GROUPS_SCHEMA = pa.schema(
    [
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("group_key", pa.string(), nullable=False),
        pa.field("group_size", pa.int32(), nullable=False),
        pa.field("sources", pa.int32(), nullable=False),  # distinct sources in the group
    ]
)


def probe_files(store: Storage) -> list[str]:
    """Every shard's probe table (absolute paths in the storage filesystem)."""
    return store.glob(layout.shard_file(layout.IMAGE_PROBES_DIR, "*"))


def hashed_images(store: Storage) -> pl.DataFrame:
    """``image_uri, source_id, phash`` of every probed image that has a hash, once per
    (uri, source)."""
    frames = [
        pl.from_arrow(
            store.read_parquet(store.relative(path), columns=["uri", "source_id", "phash"])
        )
        for path in probe_files(store)
    ]
    if not frames:
        return pl.DataFrame(
            schema={"image_uri": pl.String, "source_id": pl.String, "phash": pl.UInt64}
        )
    return (
        pl.concat(frames)
        .filter(pl.col("phash").is_not_null())
        .rename({"uri": "image_uri"})
        .unique(["image_uri", "source_id"])
        .sort("image_uri", "source_id")
    )


def content_groups(images: pl.DataFrame, radius: int) -> pa.Table:
    """Every image (``image_uri, source_id, phash``) with its content group's key, size
    (distinct URIs) and number of distinct sources."""
    uris = images.unique("image_uri", keep="first", maintain_order=True)
    if uris.height == 0:
        return GROUPS_SCHEMA.empty_table()
    hashes = uris["phash"].to_numpy().astype(np.uint64, copy=False)
    group = neardup.leaders(uris.height, *neardup.near_pairs(hashes, radius))
    grouped = uris.select("image_uri", "phash").with_columns(pl.Series("group", group))
    sizes = grouped.group_by("group").agg(
        pl.len().alias("group_size"), pl.col("phash").min().alias("smallest")
    )
    sizes = sizes.with_columns(
        pl.Series("group_key", [f"phash:{h:016x}" for h in sizes["smallest"].to_list()])
    )
    sources = (
        images.join(grouped, on="image_uri")
        .group_by("group")
        .agg(pl.col("source_id").n_unique().alias("sources"))
    )
    out = (
        grouped.join(sizes, on="group")
        .join(sources, on="group")
        .sort("group_key", "image_uri")
        .select("image_uri", "group_key", "group_size", "sources")
    )
    return out.to_arrow().cast(GROUPS_SCHEMA)


def write_groups(store: Storage, radius: int) -> dict:
    """Group every hashed image and write ``images/groups.parquet``; the summary figures."""
    images = hashed_images(store)
    table = content_groups(images, radius)
    store.write_parquet(table, layout.IMAGE_GROUPS_PATH)
    grouped = pl.from_arrow(table).filter(pl.col("group_size") > 1)
    keys = grouped.select("group_key", "sources").unique("group_key")
    return {
        "hashed_images": images["image_uri"].n_unique(),
        "grouped_images": grouped.height,
        "groups": keys.height,
        "cross_source_groups": keys.filter(pl.col("sources") > 1).height,
        "radius": radius,
    }


def scores_vs_planted(con, store: Storage, planted_path: str) -> list[dict]:
    """Precision and recall of the image stage's reasons and of duplicate detection against
    the synthetic corpus's ``planted`` table (``evaluate.parse_scores`` rules for the reasons).

    Args:
        con: a DuckDB connection with the ``rejects`` and ``raw_instances`` views.
    """
    planted = pl.from_arrow(
        con.execute("SELECT * FROM read_parquet(?)", [planted_path]).to_arrow_table()
    )
    image_rows = con.execute("SELECT * FROM rejects WHERE stage = 'image'").to_arrow_table()
    scores = [
        row
        for row in parse_scores(planted, pl.from_arrow(image_rows))
        if row["reason"] in R.IMAGE_REASONS
    ]
    copies = planted.filter(pl.col("defect") == S.PLANTED_DUPLICATE_CONTENT)
    if copies.height and store.exists(layout.IMAGE_GROUPS_PATH):
        raw_images = pl.from_arrow(
            con.execute(
                "SELECT DISTINCT source_id, image_id, image_uri FROM raw_instances "
                "WHERE source_id IN (SELECT unnest(?))",
                [copies["source_id"].unique().to_list()],
            ).to_arrow_table()
        )
        scores.append(detection_scores(store, copies.select("source_id", "image_id"), raw_images))
    return scores


def detection_scores(store: Storage, planted: pl.DataFrame, raw_images: pl.DataFrame) -> dict:
    """Precision and recall of duplicate detection against the planted content copies.

    Args:
        planted: ``planted`` rows of defect ``duplicate_content`` (``source_id, image_id``:
            a copy of another source's picture).
        raw_images: ``source_id, image_id, image_uri`` of the raw rows (where the copies are).

    A planted copy is found when its image is in a group with another source's image; a
    group spanning sources is right when it holds a planted copy.
    """
    table = store.read_parquet(layout.IMAGE_GROUPS_PATH)
    groups = pl.from_arrow(table).filter((pl.col("group_size") > 1) & (pl.col("sources") > 1))
    copies = planted.join(raw_images, on=["source_id", "image_id"], how="left")
    found = copies.join(groups, on="image_uri", how="semi").height
    planted_groups = groups.join(copies.select("image_uri"), on="image_uri", how="semi")
    flagged = groups["group_key"].n_unique()
    right = planted_groups["group_key"].n_unique()
    return {
        "reason": S.PLANTED_DUPLICATE_CONTENT,
        "planted": copies.height,
        "flagged": flagged,
        "precision": round(right / flagged, 4) if flagged else None,
        "recall": round(found / copies.height, 4) if copies.height else None,
    }
