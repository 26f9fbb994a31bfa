-- One label bucket: every (source, image, label) candidate sample with its boxes ordered left
-- to right, and its fate. `capped`: beyond the first {cap} images of its (source, label) in
-- the seeded hash order. `duplicate`: the same (image, label) is already kept from another
-- source (same normalised URI); the sample kept is the first source in a seeded hash order.
CREATE OR REPLACE TEMP TABLE bucket_samples AS
WITH samples AS (
    SELECT source_id, image_id, label,
           any_value(image_uri) AS image_uri,
           any_value(image_width) AS image_width,
           any_value(image_height) AS image_height,
           list_sort(list([x0, y0, x1, y1])) AS boxes,  -- left to right: by x0, then y0, ...
           count(*)::INTEGER AS n_boxes
    FROM read_parquet({bucket_files}, hive_partitioning = false)
    GROUP BY source_id, image_id, label
),
ranked AS (
    SELECT *, normalise_uri(image_uri) AS image_key,
           row_number() OVER (
               PARTITION BY source_id, label
               ORDER BY hash({seed}, source_id, image_id), image_id
           ) > {cap} AS capped
    FROM samples
)
SELECT *,
       NOT capped AND row_number() OVER (
           PARTITION BY image_key, label, capped
           ORDER BY hash({seed}, source_id), source_id, image_id
       ) > 1 AS duplicate
FROM ranked
