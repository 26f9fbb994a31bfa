-- Boxes that passed step I and step II, with their canonical label.
CREATE OR REPLACE VIEW clean_instances AS
SELECT * FROM read_parquet('{root}/clean_instances/*.parquet', hive_partitioning = false)
