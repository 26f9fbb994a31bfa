"""The one stable hash behind every key a contract names.

``md5_64`` (the first 8 bytes of md5, little-endian, of the key's parts joined by ``\x1f``) is
behind ``instance_id``, a source's shard, the quality stage's sample order and, through the
SQL macro ``stable_hash64`` that computes the same number, the lake's ``sample_id``, label
buckets, cap order and duplicate choice. Stable means the same bytes give the same number on
every run, machine and library version: a fixed algorithm on the UTF-8 bytes, never a
library's own ``hash()``. md5 is used as a well-spread, everywhere-available hash (DuckDB
has it), not for security.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: joins the parts of a composite key, in Python and in SQL (``chr(31)``)
KEY_SEPARATOR = "\x1f"


def md5_64(*parts: object) -> int:
    """The first 8 bytes of the md5 of the parts' text joined by ``KEY_SEPARATOR``, little-endian.

    SQL computes the same number with the macro ``stable_hash64`` (``sql/macros``): DuckDB's
    ``md5_number`` reads the digest little-endian, so its low 64 bits are these.
    """
    text = KEY_SEPARATOR.join(str(p) for p in parts)
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "little")


def stable_hash64(text: str) -> int:
    """``md5_64`` of one text: the same number as SQL's ``stable_hash64(text)``."""
    return md5_64(text)


def md5_64_array(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> np.ndarray:
    """``md5_64`` of each text as a uint64 array (a null hashes as the empty text).

    Computed by DuckDB's md5 in one vectorised pass (about 17x a Python loop: 1M texts in
    0.08 s, not 1.3 s); a call costs ~15 ms of setup, so it is for whole shards, not per source.
    """
    column = (
        texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    )
    table = pa.table({"s": pc.fill_null(pc.cast(column, pa.string()), "")})
    with duckdb.connect() as con:  # DuckDB keeps the rows' order (preserve_insertion_order)
        con.register("texts", table)
        hashed = con.sql(
            "SELECT (md5_number(s) & 18446744073709551615::UHUGEINT)::UBIGINT AS h FROM texts"
        ).to_arrow_table()
    return hashed["h"].to_numpy().astype(np.uint64, copy=False)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = values + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def image_keys(source_id: str, image_ids: Sequence[str] | pa.ChunkedArray | pa.Array) -> np.ndarray:
    """uint64 key of each (source_id, image_id); hashed once per distinct image."""
    if isinstance(image_ids, pa.ChunkedArray):
        image_ids = image_ids.combine_chunks()
    if isinstance(image_ids, pa.Array):  # an Arrow column: hash its distinct values only
        encoded = pc.dictionary_encode(image_ids)
        keys = image_keys(source_id, encoded.dictionary.to_pylist())
        return keys[encoded.indices.to_numpy(zero_copy_only=False)]
    cache: dict[str, int] = {}
    out = np.empty(len(image_ids), dtype=np.uint64)
    for i, image_id in enumerate(image_ids):
        key = cache.get(image_id)
        if key is None:
            key = cache[image_id] = md5_64(source_id, image_id)
        out[i] = key
    return out


def instance_ids(
    source_id: str, image_ids: Sequence[str] | pa.ChunkedArray | pa.Array, box_index: np.ndarray
) -> np.ndarray:
    """Stable uint64 ``instance_id`` for boxes of one source.

    Args:
        source_id: the catalog id of the source.
        image_ids: ``(n,)`` image id of each box (the format's own image identifier, as str).
        box_index: ``(n,)`` 0-based position of the box among its image's boxes, in file order.

    Returns:
        ``(n,)`` uint64 array. The same inputs give the same ids on every run and machine.
    """
    box_index = np.asarray(box_index, dtype=np.uint64)
    if len(image_ids) != len(box_index):
        raise ValueError(
            f"image_ids has {len(image_ids)} entries but box_index has {len(box_index)}"
        )
    keys = image_keys(source_id, image_ids)
    with np.errstate(over="ignore"):
        return _splitmix64(keys ^ (box_index * _GOLDEN))


def shard_of(source_id: str, n_shards: int) -> int:
    """The static shard a source belongs to: a stable hash of its id modulo ``n_shards``."""
    return stable_hash64(source_id) % n_shards
