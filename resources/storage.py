"""The storage root as a Dagster resource (local folder or any fsspec URL)."""

from __future__ import annotations

import dagster as dg

from vprim.assets.storage import Storage


class StorageResource(dg.ConfigurableResource):
    """Where every table lives: ``VPRIM_ROOT`` (default ``./data``); ``s3://...`` works alike."""

    root: str = "data"

    def get(self) -> Storage:
        return Storage(self.root)
