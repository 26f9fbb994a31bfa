"""DuckDB as a Dagster resource: a connection with the project's views over the storage root."""

from __future__ import annotations

import dagster as dg
import duckdb

from vprim.assets.sql import register_views

#: op tags of the steps whose DuckDB work may fill the whole ``memory_limit``. The executor runs
#: one of them at a time (``dagster_project/engine.py``): two at once would double the peak.
DUCKDB_HEAVY_TAG = ("vprim/memory", "duckdb")
DUCKDB_HEAVY = {DUCKDB_HEAVY_TAG[0]: DUCKDB_HEAVY_TAG[1]}


class DuckDBResource(dg.ConfigurableResource):
    """An in-process DuckDB connection over the storage root.

    ``memory_limit`` and ``threads`` bound what global steps may take on a shared machine.
    """

    root: str = "data"
    memory_limit: str = "4GB"
    threads: int = 2

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(config={"memory_limit": self.memory_limit, "threads": self.threads})
        register_views(con, self.root)
        return con
