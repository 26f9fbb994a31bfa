-- Per source: files and boxes seen, kept and rejected while parsing.
CREATE OR REPLACE VIEW source_stats AS
SELECT * FROM read_parquet('{root}/source_stats/shard=*.parquet', hive_partitioning = false)
