-- One row per source: keep or drop, at which step, why, and its counts.
CREATE OR REPLACE VIEW source_selection AS
SELECT * FROM read_parquet('{root}/source_selection/shard=*.parquet', hive_partitioning = false)
