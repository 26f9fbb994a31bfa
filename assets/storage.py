"""Plain storage helpers over an fsspec root (local folder, s3://, gs://, memory://...).

Every table is written atomically: to a temporary name beside its final path, then moved
into place, so a crash or a kill leaves the previous file readable and never a half file.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

#: zstd level 1, not 3. On a full-scale lake bucket (3.26M rows) level 1 spends ~15% less CPU
#: writing and the file is 5% smaller; on raw and clean shards the two are within noise (level
#: 1 files 1% larger). Decompression speed does not depend on the level.
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1, "row_group_size": 256_000}


def parquet_writer(sink, schema: pa.Schema) -> pq.ParquetWriter:
    """A streaming Parquet writer with the project's compression, for tables written in parts."""
    return pq.ParquetWriter(
        sink,
        schema,
        compression=PARQUET_OPTIONS["compression"],
        compression_level=PARQUET_OPTIONS["compression_level"],
    )


#: protocols whose files only the writing process sees
PROCESS_LOCAL_PROTOCOLS = frozenset({"memory"})


def shared_across_processes(root: str) -> bool:
    """Whether other processes (pool workers, a run's step processes) see what this one
    writes under ``root``: ``memory://`` lives in one process, so work on it must run there."""
    return fsspec.utils.get_protocol(root) not in PROCESS_LOCAL_PROTOCOLS


class Storage:
    """The project's storage root.

    Args:
        root: fsspec URL or local path of the root; tables live under it by stage.
    """

    def __init__(self, root: str):
        self.root_url = root.rstrip("/") or "/"
        self.fs, self.root = fsspec.core.url_to_fs(self.root_url)
        self.fs.makedirs(self.root, exist_ok=True)

    @property
    def protocol(self) -> str:
        """The filesystem's protocol (``file``, ``s3``, ``memory`` ...): DuckDB's name for it."""
        protocol = self.fs.protocol
        return protocol if isinstance(protocol, str) else protocol[0]

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    @property
    def shared_across_processes(self) -> bool:
        """Whether other processes see this root (:func:`shared_across_processes`)."""
        return self.protocol not in PROCESS_LOCAL_PROTOCOLS

    def path(self, *parts: str) -> str:
        """Absolute path inside the storage filesystem."""
        return posixpath.join(self.root, *parts)

    def url(self, *parts: str) -> str:
        """URL that DuckDB, Polars or pyarrow can open (a plain path for local storage)."""
        p = self.path(*parts)
        return p if self.is_local else self.fs.unstrip_protocol(p)

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def glob(self, pattern: str) -> list[str]:
        """Absolute paths in ``fs`` (:meth:`relative` makes them ``parts`` again), sorted."""
        return sorted(self.fs.glob(self.path(pattern)))

    def relative(self, path: str) -> str:
        """An absolute path in ``fs`` (from :meth:`glob`) relative to the root: what the other
        methods take. (An object store's paths are not absolute: ``bucket/prefix/x``.)"""
        return posixpath.relpath(path, self.root)

    @contextmanager
    def atomic_path(self, *parts: str) -> Iterator[str]:
        """Yield a temporary path beside ``parts``; move it into place when the block ends."""
        final = self.path(*parts)
        self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
        # hidden and not ending in the final suffix, so a reader's "*.parquet" glob never
        # matches a half-written (or a killed writer's) temporary file
        tmp = posixpath.join(
            posixpath.dirname(final), f".{posixpath.basename(final)}.tmp-{uuid.uuid4().hex}"
        )
        try:
            yield tmp
            self.fs.mv(tmp, final)
        finally:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)

    def write_parquet(self, table: pa.Table, *parts: str) -> str:
        """Write ``table`` atomically as zstd Parquet; returns the final path."""
        with self.atomic_path(*parts) as tmp, self.fs.open(tmp, "wb") as f:
            pq.write_table(table, f, **PARQUET_OPTIONS)
        return self.path(*parts)

    def put_file(self, local_path: str, *parts: str) -> str:
        """Copy a file of local scratch space to ``parts`` atomically; returns the final path."""
        with self.atomic_path(*parts) as tmp:
            self.fs.put_file(local_path, tmp)
        return self.path(*parts)

    def read_parquet(self, *parts: str, filters=None, columns=None) -> pa.Table:
        with self.fs.open(self.path(*parts), "rb") as f:
            return pq.read_table(f, filters=filters, columns=columns)

    def write_json(self, obj: object, *parts: str) -> str:
        with self.atomic_path(*parts) as tmp, self.fs.open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
        return self.path(*parts)

    def read_text(self, *parts: str) -> str | None:
        """A small text file's stripped content; None when it is missing or empty."""
        if not self.exists(*parts):
            return None
        with self.fs.open(self.path(*parts), "r") as f:
            return f.read().strip() or None

    def write_text(self, text: str, *parts: str) -> None:
        """Replace a small text file atomically (readers see the old or the new, never half)."""
        with self.atomic_path(*parts) as tmp, self.fs.open(tmp, "w") as f:
            f.write(text + "\n")

    def read_json(self, *parts: str) -> object:
        with self.fs.open(self.path(*parts), "r") as f:
            return json.load(f)
