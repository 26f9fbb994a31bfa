"""Dagster resources: thin ConfigurableResource wrappers over plain helpers in ``assets``."""

from resources.compute import ComputeResource
from resources.duckdb import DuckDBResource
from resources.embedder import LabelEmbedderResource
from resources.storage import StorageResource

__all__ = ["ComputeResource", "DuckDBResource", "LabelEmbedderResource", "StorageResource"]
