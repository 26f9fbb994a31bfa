"""Dagster definitions of the lake stage: ``lake_samples`` (build and check a version) and
``lake`` (publish it).

Wiring, config and metadata only; the work is in ``balance.py``, ``build.py``, ``checks.py``,
``publish.py`` and ``stats.py``.
"""

import dagster as dg

from vprim.assets.configs import dagster_config
from vprim.assets.contracts import layout
from vprim.assets.lake import checks as C
from vprim.assets.lake import publish as P
from vprim.assets.lake import stats
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.lake.build import CODE_VERSION, build_version
from vprim.assets.reporting import markdown_image, md_table, query_table, table_preview
from vprim.assets.settings import current
from vprim.assets.steps import DUCKDB_STEP
from vprim.resources.duckdb import DUCKDB_HEAVY, DuckDBResource
from vprim.resources.storage import StorageResource


class LakeConfig(dagster_config(BalanceConfig, name="LakeConfig", seed=current().seed)):
    """How the lake is balanced (``BalanceConfig``'s fields: the report's N = 1,000 images per
    source and label ...), and where the by-bucket staging goes."""

    scratch_dir: str = ""  # local folder for the by-bucket staging; empty = system temp


class PublishConfig(dg.Config):
    """How many complete lake versions to keep (the published one always stays)."""

    retention: int = 3


@dg.asset(
    group_name="lake",
    kinds={"duckdb", "parquet"},
    pool="lake",  # one lake build at a time: a build clears other builds' unfinished versions
    op_tags={**DUCKDB_HEAVY, **DUCKDB_STEP},
    deps=["clean_instances", "source_selection", "label_map", "image_duplicates"],
    code_version=CODE_VERSION,
    check_specs=[
        dg.AssetCheckSpec(name, asset="lake_samples", blocking=True, description=desc)
        for name, desc in C.CHECKS.items()
    ],
    description="A new lake version: per (source, label) at most N images in a seeded order, "
    "each (image, label) once, in the contract's row format; checked before it is published.",
)
def lake_samples(
    context: dg.AssetExecutionContext,
    config: LakeConfig,
    storage: StorageResource,
    duckdb: DuckDBResource,
):
    store = storage.get()
    con = duckdb.connect()

    def progress(bucket) -> None:
        context.log.info(f"bucket {bucket.bucket:03d}: {bucket.rows:,} samples, "
                         f"{bucket.instances:,} instances")  # fmt: skip

    build = build_version(
        store, con, config.settings(), scratch=config.scratch_dir or None, on_bucket=progress
    )
    metadata = _unchanged_metadata(build) if build.unchanged else _build_metadata(store, build)
    yield dg.MaterializeResult(metadata=metadata, data_version=_data_version(build.manifest))
    for outcome in C.run_checks(store, con, build.version):
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            passed=outcome.passed,
            metadata={k: _meta(v) for k, v in outcome.metadata.items()},
        )


def _unchanged_metadata(build) -> dict:
    """A build that found the published version built from the same inputs, config, code."""
    counts = build.manifest["counts"]
    return {
        "status": "unchanged",
        "status_reason": "the published version was built from the same inputs, config and "
        "code: no new version (its checks run again on it below)",
        "version": build.version,
        "dagster/row_count": counts["rows"],
        "instances": counts["instances"],
        "seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in build.seconds.items()}),
    }


def _build_metadata(store, build) -> dict:
    counts = build.manifest["counts"]
    report = stats.balance_report(store, build.version, counts, build.labels)
    return {
        "status": "rebuilt",
        "version": build.version,
        "dagster/row_count": counts["rows"],
        "instances": counts["instances"],
        "sources": counts["sources"],
        "labels": counts["labels"],
        "images": counts["images"],
        "holdout_rows": counts["holdout_rows"],
        "balance_funnel": dg.MetadataValue.md(md_table(report.funnel)),
        "label_distribution": dg.MetadataValue.md(md_table(report.distribution)),
        "label_distribution_plot": dg.MetadataValue.md(
            markdown_image(report.png, "instances per label, before balancing and in the lake")
        ),
        "label_distribution_png": dg.MetadataValue.path(store.url(report.png_path)),
        "largest_labels": dg.MetadataValue.md(table_preview(report.largest_labels, 15)),
        "seconds": dg.MetadataValue.json({k: round(v, 2) for k, v in build.seconds.items()}),
        "path": dg.MetadataValue.path(store.url(layout.lake_version_dir(build.version))),
    }


def _data_version(manifest: dict) -> dg.DataVersion:
    """A lake version's data version: its inputs digest (the same for an unchanged build)."""
    return dg.DataVersion(manifest["inputs_digest"][:16])


def _meta(value):
    return dg.MetadataValue.json(value) if isinstance(value, (list, dict)) else value


@dg.asset(
    group_name="lake",
    kinds={"duckdb"},
    pool="lake",
    deps=[lake_samples],
    code_version=CODE_VERSION,
    description="Publish the checked version (rewrite lake/CURRENT), drop versions beyond the "
    "retention, and show the lake views: label histogram, per-source contribution, funnel.",
)
def lake(config: PublishConfig, storage: StorageResource, duckdb: DuckDBResource):
    store = storage.get()
    done = P.publish_staged(store, config.retention)
    con = duckdb.connect()  # its views now read the published version
    return dg.MaterializeResult(
        metadata={
            "status": "unchanged" if done.unchanged else "published",
            "version": done.version,
            "previous_version": done.previous or "",
            "removed_versions": dg.MetadataValue.json(done.removed),
            "dagster/row_count": done.manifest["counts"]["rows"],
            "instances": done.manifest["counts"]["instances"],
            "path": dg.MetadataValue.path(store.url(layout.lake_version_dir(done.version))),
            "funnel_raw_to_lake": dg.MetadataValue.md(_view(con, "lake_funnel")),
            "label_histogram": dg.MetadataValue.md(_view(con, "lake_label_histogram", 20)),
            "source_contribution": dg.MetadataValue.md(_view(con, "lake_source_contribution", 20)),
            "preview": dg.MetadataValue.md(
                table_preview(con.sql("SELECT * FROM lake LIMIT 5").to_arrow_table(), 5)
            ),
        },
        # what the camps read: a new version changes it, an unchanged night does not
        data_version=_data_version(done.manifest),
    )


def _view(con, name: str, limit: int | None = None) -> str:
    return query_table(con, f"SELECT * FROM {name}" + (f" LIMIT {limit}" if limit else ""))


lake_assets = [lake_samples, lake]
