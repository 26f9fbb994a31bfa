-- Every box as read, all shards.
CREATE OR REPLACE VIEW raw_instances AS
SELECT * FROM read_parquet('{root}/raw_instances/shard=*.parquet', hive_partitioning = false)
