"""DuckDB as a Dagster resource: a connection with the project's views over the storage root."""

from __future__ import annotations

import dagster as dg
import duckdb

from assets.sql import register_views


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
