"""Every fsspec storage root works end to end: a local folder, ``file://``, ``memory://`` (one
process) and ``s3://`` (s3fs against moto's S3 server on 127.0.0.1). The curation job over
every shard and the camps run in this process on each root, the synthetic corpus generated
under the root, and give the lake a plain local root gives. Then the places an end-to-end run
would not show clearly: the embedding cache, the lake's plot, a checkpoint, the corpus, DuckDB
and the shard pools on ``memory://``.

The lakes are compared by a digest computed here, from the samples files: every row hashed,
the hashes sorted. A corpus under the root names its real images by absolute address
(``<root>/raw/synthetic-tiny-seed0/sources/...``), so that prefix is taken out of
``image_uri``. Every other column is compared, ``split`` included: the split follows the
image's content key, not its address (``image_groups``).

Embedding the labels is most of a tiny run's time, so the ``memory://`` and ``file://`` runs
start with the local run's embedding cache copied under their root: they read it from there
and embed nothing (asserted). The ``s3://`` run embeds every label and writes the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import time
import uuid
from dataclasses import dataclass

import dagster as dg
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vprim.assets.camps.defs import camps_assets, seed_partitions
from vprim.assets.contracts import layout
from vprim.assets.parallel import map_shards
from vprim.assets.partitions import range_tags, shard_partitions
from vprim.assets.settings import PROJECT_ROOT
from vprim.assets.sql import connect, use_storage
from vprim.assets.storage import Storage
from vprim.dagster_project.definitions import defs
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource

pytestmark = pytest.mark.e2e

#: camps small enough for a test, every generator and eval set still run
CAMPS_CONFIG = {
    "counting_camp": {"train_size": 24},
    "counting_eval": {"eval_size": 12},
    "counting_coarse_eval": {"eval_size": 6},
    "spatial_camp": {"train_size": 16, "max_objects": 4},
    "spatial_eval": {"eval_tf_size": 6, "eval_open_size": 6},
    "maze_camp": {"train_size": 8},
    "maze_eval": {"eval_size": 4},
    "path_tracing_camp": {"train_size": 8},
    "path_tracing_eval": {"eval_size": 4},
}
#: what the camps write: every training partition and every eval set
CAMP_FILES = [
    layout.camp_train_path(camp, part)
    for camp in ("counting", "spatial", "maze", "path_tracing")
    for part in range(len(seed_partitions.get_partition_keys()))
] + [
    layout.eval_set_path(name)
    for name in ("counting_fine", "counting_coarse", "spatial_tf", "spatial_open", "maze")
]
#: an image of the synthetic corpus under a root: ``<root>/raw/synthetic-tiny-seed0/...``
CORPUS_ADDRESS = re.compile(r"^.*/raw/synthetic-tiny-seed0/")
#: the manifest's counts (its inputs digest covers the clean tables, which hold the root)
COUNTS = ("rows", "instances", "sources", "labels", "images", "buckets", "balance")


def _materialise(root: str, embedded_now: int | None = None) -> float:
    """The ``rebuild_dataset`` job over every shard, then every camp, in this process on
    ``root``; returns the wall time in seconds. ``embedded_now``: how many labels the run
    must embed (those not in the root's cache), when given."""
    resources = {"storage": StorageResource(root=root), "duckdb": DuckDBResource(root=root)}
    started = time.perf_counter()
    shards = shard_partitions.get_partition_keys()
    job = defs.resolve_job_def("rebuild_dataset")
    result = job.execute_in_process(tags=range_tags(shards[0], shards[-1]), resources=resources)
    assert result.success
    (embedded,) = result.asset_materializations_for_node("label_embeddings")
    assert embedded_now is None or embedded.metadata["embedded_now"].value == embedded_now
    seeds = seed_partitions.get_partition_keys()
    for assets, tags in (
        ([a for a in camps_assets if a.partitions_def], range_tags(seeds[0], seeds[-1])),
        ([a for a in camps_assets if not a.partitions_def], {}),
    ):
        names = [a.key.to_user_string() for a in assets]
        config = {"ops": {name: {"config": CAMPS_CONFIG[name]} for name in names}}
        assert dg.materialize(assets, resources=resources, run_config=config, tags=tags).success
    return time.perf_counter() - started


def _lake(root: str) -> tuple[list[str], dict]:
    """The published lake's sorted row digests (see the module's docstring) and manifest."""
    fs, base = fsspec.core.url_to_fs(root)
    version = fs.cat_file(f"{base}/{layout.LAKE_CURRENT}").decode().strip()
    rows = []
    for path in fs.glob(f"{base}/{layout.lake_samples_glob(version)}"):
        with fs.open(path, "rb") as f:
            rows += pq.read_table(f).to_pylist()
    digests = []
    for row in rows:
        if CORPUS_ADDRESS.match(row["image_uri"]):
            row["image_uri"] = CORPUS_ADDRESS.sub("<corpus>/", row["image_uri"])
        digests.append(hashlib.md5(json.dumps(row, sort_keys=True).encode()).hexdigest())
    manifest = json.loads(fs.cat_file(f"{base}/lake/v={version}/{layout.LAKE_MANIFEST}"))
    return sorted(digests), manifest


@dataclass(frozen=True)
class Baseline:
    """The tiny run on a plain local folder: the lake every other root must give."""

    root: str
    rows: list[str]  # :func:`_lake`'s digests
    manifest: dict

    def seed_embeddings(self, root: str) -> None:
        """Copy this run's embedding cache under ``root``, as an earlier run left it."""
        local = os.path.join(self.root, layout.EMBEDDING_CACHE_PATH)
        Storage(root).put_file(local, layout.EMBEDDING_CACHE_PATH)


def _same_lake(root: str, baseline: Baseline) -> None:
    rows, manifest = _lake(root)
    base_rows, base_manifest = baseline.rows, baseline.manifest
    assert len(rows) == len(base_rows) > 100
    assert rows == base_rows
    assert {k: manifest["counts"][k] for k in COUNTS} == {
        k: base_manifest["counts"][k] for k in COUNTS
    }
    # built from the same tables (their bytes differ: clean rows name images under the root)
    assert manifest["inputs"].keys() == base_manifest["inputs"].keys()
    assert manifest["config"] == base_manifest["config"]


def _camps_written(root: str) -> None:
    fs, base = fsspec.core.url_to_fs(root)
    for rel in CAMP_FILES:
        with fs.open(f"{base}/{rel}", "rb") as f:
            assert pq.ParquetFile(f).metadata.num_rows > 0, rel


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """Runs in an empty working folder, which must stay empty: a URL taken for a local path
    would make a ``memory:`` or ``s3:`` folder there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    top_level = set(os.listdir(PROJECT_ROOT))
    yield cwd
    assert not list(cwd.iterdir())
    assert not {"memory:", "s3:", "file:"} & (set(os.listdir(PROJECT_ROOT)) - top_level)


@pytest.fixture
def memory_root():
    """A root of its own on ``memory://``, removed afterwards (it lives as long as the
    process)."""
    root = f"memory://vprim-roots-{uuid.uuid4().hex[:8]}"
    yield root
    fs, path = fsspec.core.url_to_fs(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Baseline:
    root = str(tmp_path_factory.mktemp("local-root"))
    seconds = _materialise(root)
    print(f"\nlocal path root: {seconds:.1f} s")
    _camps_written(root)
    return Baseline(root, *_lake(root))


def test_memory_root_gives_the_local_lake(baseline, memory_root, empty_cwd):
    baseline.seed_embeddings(memory_root)
    seconds = _materialise(memory_root, embedded_now=0)
    print(f"\nmemory:// root: {seconds:.1f} s")
    _same_lake(memory_root, baseline)
    _camps_written(memory_root)
    store = Storage(memory_root)
    # the corpus is under the root, and its catalog names its sources there
    catalog = store.read_parquet(layout.CATALOG_PATH)
    assert all(u.startswith("memory://") for u in catalog["uri"].to_pylist())
    assert store.exists("raw/synthetic-tiny-seed0", layout.SYNTHETIC_MARKER)


def test_file_url_root_gives_the_local_lake(baseline, tmp_path, empty_cwd):
    folder = tmp_path / "file-root"
    baseline.seed_embeddings(f"file://{folder}")
    seconds = _materialise(f"file://{folder}", embedded_now=0)
    print(f"\nfile:// root: {seconds:.1f} s")
    _same_lake(f"file://{folder}", baseline)
    assert (folder / layout.LAKE_CURRENT).is_file() and (folder / layout.CATALOG_PATH).is_file()


@pytest.fixture
def s3_bucket(monkeypatch):
    """A bucket on moto's S3 server on 127.0.0.1, reached with fake credentials from the
    environment, as a deployment's would be."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "vprim-test",
        "AWS_SECRET_ACCESS_KEY": "vprim-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }.items():
        monkeypatch.setenv(name, value)
    import boto3
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # an instance cached for another server
    client = boto3.client("s3")
    client.create_bucket(Bucket="vprim-roots")
    try:
        yield client
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def test_s3_root_gives_the_local_lake_and_writes_nothing_local(baseline, s3_bucket, empty_cwd):
    root = "s3://vprim-roots/tiny"
    seconds = _materialise(root)  # every label embedded, the cache written to the bucket
    print(f"\ns3:// root (moto on 127.0.0.1): {seconds:.1f} s")
    _same_lake(root, baseline)
    _camps_written(root)
    pages = s3_bucket.get_paginator("list_objects_v2").paginate(Bucket="vprim-roots")
    keys = {o["Key"] for page in pages for o in page["Contents"]}
    expected = [layout.CATALOG_PATH, layout.VOCABULARY_PATH, layout.EMBEDDING_CACHE_PATH,
                layout.LABEL_MAP_PATH, layout.IMAGE_GROUPS_PATH, layout.LAKE_CURRENT]  # fmt: skip
    version = Storage(root).read_text(layout.LAKE_CURRENT)
    expected += [f"{layout.lake_version_dir(version)}/{layout.LAKE_MANIFEST}", *CAMP_FILES]
    assert {f"tiny/{rel}" for rel in expected} <= keys
    corpus = [k for k in keys if k.startswith("tiny/raw/synthetic-tiny-seed0/sources/")]
    assert len(corpus) > 400 and all(k.startswith("tiny/") for k in keys)


# --- places an end-to-end run would not show clearly ---------------------------------------
class _Embedder:
    """A stand-in label embedder: 4 dimensions from the text's length, counting its calls."""

    model_name = "stand-in"
    dim = 4

    def __init__(self):
        self.embedded: list[str] = []

    def embed(self, texts):
        self.embedded += list(texts)
        return np.array([[len(t), 1, 0, 0] for t in texts], dtype=np.float32)


def test_the_embedding_cache_lives_under_a_memory_root(memory_root, empty_cwd):
    from vprim.assets.quality.embedder import EmbeddingCache

    url = Storage(memory_root).url(layout.EMBEDDING_CACHE_PATH)
    embedder = _Embedder()
    matrix, new = EmbeddingCache(url).embed_cached(embedder, ["dog", "cat", "dog"])
    assert new == 2 and matrix[:, 0].tolist() == [3, 3, 3]
    # a later run reads the file from the root and embeds only what is new
    matrix, new = EmbeddingCache(url).embed_cached(embedder, ["cat", "horse"])
    assert new == 1 and embedder.embedded == ["dog", "cat", "horse"]
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.ls(os.path.dirname(path), detail=False) == [path]  # no temporary file left


def test_the_lake_plot_is_written_under_a_memory_root(memory_root, empty_cwd):
    from vprim.assets.lake.stats import balance_report

    store = Storage(memory_root)
    labels = pa.table({"instances_before": [5, 3], "instances_kept": [4, None]})
    steps = ("samples", "instances")
    balance = {f"{w}_{s}": 1 for w in steps for s in ("before", "capped", "duplicate")}
    report = balance_report(store, "v1", {"rows": 1, "instances": 4, "balance": balance}, labels)
    with store.fs.open(store.path(report.png_path), "rb") as f:
        assert f.read() == report.png and report.png.startswith(b"\x89PNG")
    assert store.fs.ls(store.path(layout.lake_version_dir("v1")), detail=False) == [
        store.path(report.png_path)
    ]


def test_a_checkpoint_round_trips_on_a_memory_root(memory_root, empty_cwd):
    import torch

    from vprim.assets.model.train import load_checkpoint, save_checkpoint

    store = Storage(memory_root)
    save_checkpoint(store, "r1", {"step": 3, "w": torch.arange(4.0)})
    save_checkpoint(store, "r1", {"step": 7, "w": torch.ones(4)})
    state = load_checkpoint(store, "r1")
    assert state["step"] == 7 and state["w"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert store.exists(layout.model_run_dir("r1"), "ckpt-0000003.pt")


def test_the_synthetic_corpus_under_a_memory_root_is_the_local_one(tiny_corpus, memory_root):
    from vprim.assets.sources.catalog import listing_fingerprint
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    url = f"{memory_root}/raw/synthetic-tiny-seed0"
    corpus = generate_corpus(url, "tiny", seed=0)
    fs, path = fsspec.core.url_to_fs(url)
    local_dir = os.path.dirname(tiny_corpus.sources_dir)
    mine = {posixpath.relpath(p, path) for p in fs.find(path)}
    theirs = {os.path.relpath(p, local_dir) for p in fsspec.filesystem("file").find(local_dir)}
    assert mine == theirs and corpus.n_boxes == tiny_corpus.n_boxes
    for rel in sorted(mine - {layout.SYNTHETIC_CATALOG, layout.SYNTHETIC_MARKER})[::7]:
        with open(os.path.join(local_dir, rel), "rb") as f:
            assert fs.cat_file(f"{path}/{rel}") == f.read(), rel
    with fs.open(corpus.catalog_path, "rb") as f:
        uris = pq.read_table(f)["uri"].to_pylist()
    assert all(u.startswith(f"{url}/sources/") for u in uris)
    # generated once: a second call finds the marker and writes nothing
    stamp = fs.info(f"{path}/{layout.SYNTHETIC_CATALOG}")["created"]
    assert generate_corpus(url, "tiny", seed=0) == corpus
    assert fs.info(f"{path}/{layout.SYNTHETIC_CATALOG}")["created"] == stamp
    # a source's fingerprint sees a file rewritten with the same size
    source = uris[0]
    before = listing_fingerprint(source)
    name = sorted(fs.find(fsspec.core.url_to_fs(source)[1]))[0]
    time.sleep(0.01)
    fs.pipe_file(name, fs.cat_file(name))
    assert before.startswith("listing:") and listing_fingerprint(source) != before


def test_duckdb_reads_and_writes_a_memory_root(memory_root):
    store = Storage(memory_root)
    con = connect(store)
    use_storage(con, store)  # registering the filesystem twice is harmless
    out = store.url("t/x.parquet")
    con.execute(f"COPY (SELECT 42 AS answer) TO '{out}' (FORMAT parquet)")
    assert store.read_parquet("t/x.parquet")["answer"].to_pylist() == [42]
    assert con.sql(f"SELECT answer FROM read_parquet('{store.url('t/*.parquet')}')").fetchall() == [
        (42,)
    ]


def _pid(_: int) -> int:
    return os.getpid()


def test_shard_work_on_a_memory_root_stays_in_this_process():
    assert not Storage("memory://vprim-roots-x").shared_across_processes
    assert Storage("file:///tmp").shared_across_processes
    assert map_shards(_pid, [1, 2, 3], workers=2, shared=False) == [os.getpid()] * 3


def test_globbed_paths_are_parts_again_on_every_root(memory_root, tmp_path):
    for root in (memory_root, str(tmp_path), f"file://{tmp_path}/f"):
        store = Storage(root)
        store.write_text("x", "a", "b.txt")
        (found,) = store.glob("a/*.txt")
        assert store.relative(found) == "a/b.txt" and store.read_text(store.relative(found)) == "x"
