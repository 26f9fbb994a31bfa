-- Boxes that passed step I and step II, with their canonical label.
CREATE OR REPLACE VIEW clean_instances AS
SELECT * FROM read_parquet('{root}/clean_instances/shard=*.parquet', hive_partitioning = false)
