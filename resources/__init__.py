"""Dagster resources: thin ConfigurableResource wrappers over plain helpers in ``assets``."""

from resources.compute import ComputeResource
from resources.duckdb import DUCKDB_HEAVY, DUCKDB_HEAVY_TAG, DuckDBResource
from resources.embedder import LabelEmbedderResource
from resources.storage import StorageResource

__all__ = [
    "DUCKDB_HEAVY",
    "DUCKDB_HEAVY_TAG",
    "ComputeResource",
    "DuckDBResource",
    "LabelEmbedderResource",
    "StorageResource",
]
