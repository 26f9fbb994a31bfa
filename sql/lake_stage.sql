-- The lake's one full scan of clean_instances: the clean boxes of kept sources with their
-- label bucket, written partitioned by bucket so that each bucket is then balanced on its own
-- (and could be on another worker). The bucket is stable_hash64(canonical_label) % buckets
-- (md5-based, sql/macros/stable_hash64.sql: the same on every DuckDB release). Only the columns
-- balancing reads are staged.
COPY (
    SELECT source_id, image_id, image_uri, image_width, image_height,
           canonical_label AS label, x0, y0, x1, y1,
           (stable_hash64(canonical_label) % {buckets})::INTEGER AS label_bucket
    FROM read_parquet({clean_files}, hive_partitioning = false)
    WHERE source_id IN (
        SELECT source_id FROM read_parquet({selection_files}, hive_partitioning = false)
        WHERE decision = 'keep'
    )
) TO '{out_dir}' (FORMAT parquet, PARTITION_BY (label_bucket), COMPRESSION zstd)
