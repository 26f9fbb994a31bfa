-- The distinct images of one bucket's lake rows, as DuckDB hash() of the normalised URI (the
-- manifest's `images` is the count of distinct keys over all buckets), from bucket_samples.
COPY (
    SELECT DISTINCT hash(image_key) AS image
    FROM bucket_samples
    WHERE NOT capped AND NOT duplicate
) TO '{out_path}' (FORMAT parquet)
