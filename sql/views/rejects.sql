-- The ledger: every box, file or source that did not reach the next stage, all stages.
CREATE OR REPLACE VIEW rejects AS
SELECT instance_id, source_id, uri, stage, reason, detail
FROM read_parquet('{root}/rejects/stage=*/shard=*.parquet', hive_partitioning = false, union_by_name = true)
