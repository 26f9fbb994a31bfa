-- The distinct images of one bucket's lake rows, as the md5 of the normalised URI in two
-- 64-bit halves (Parquet holds no 128-bit integer; DuckDB would write a lossy double). The
-- manifest's `images` is the count of distinct keys over all buckets. md5, not DuckDB's
-- 64-bit hash(): it collides 101 times among the full lake's 13.5M image URIs.
COPY (
    SELECT DISTINCT (image >> 64)::UBIGINT AS image_hi,
           (image & 18446744073709551615::UHUGEINT)::UBIGINT AS image_lo
    FROM bucket_samples
    WHERE NOT capped AND NOT duplicate
) TO '{out_path}' (FORMAT parquet)
