-- The catalog as last materialised: one row per raw source, with its shard.
CREATE OR REPLACE VIEW catalog AS
SELECT * FROM read_parquet('{root}/catalog/catalog.parquet')
