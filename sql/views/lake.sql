-- The published lake version (lake/CURRENT): one row per grounding sample.
CREATE OR REPLACE VIEW lake AS
SELECT * FROM read_parquet('{lake}', hive_partitioning = false)
