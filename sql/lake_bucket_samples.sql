-- One label bucket: every (source, image, label) candidate sample with its boxes ordered left
-- to right (bucket_groups), and its fate (bucket_samples, joined on bucket_groups' rowid).
-- `capped`: beyond the first {cap} images of its (source, label) in the seeded order
-- stable_hash64(seed, source_id, image_id), ties (none expected) by image_id.
-- `duplicate`: the same (image, label) is already kept from another source; the sample kept is
-- the first source in the seeded order stable_hash64(seed, source_id). Two images are the same
-- when image_duplicates put them in one content group ({image_groups}: image_uri -> group_key,
-- only images that have a near duplicate) and otherwise when their normalised URIs are equal.
-- The split follows the same key, so copies of a picture never straddle train and holdout;
-- `image` (the count of distinct images) stays the md5 of the normalised URI: distinct files.
-- Both orders are md5-based (sql/macros/stable_hash64.sql; key parts joined by chr(31)), so the
-- same inputs and config keep the same rows on every DuckDB release. The two rankings run on
-- the narrow columns only: carrying the box lists through both window sorts cost more than
-- the rankings themselves. The normalised URI itself is not kept: only what the later steps
-- need of it (its md5 for the image count, its md5 permille for the split), so the join that
-- builds the rows carries a small number instead of a string.
CREATE OR REPLACE TEMP TABLE bucket_groups AS
SELECT source_id, image_id, label,
       any_value(image_uri) AS image_uri,
       any_value(image_width) AS image_width,
       any_value(image_height) AS image_height,
       list_sort(list([x0, y0, x1, y1])) AS boxes,  -- left to right: by x0, then y0, ...
       count(*)::INTEGER AS n_boxes
FROM read_parquet({bucket_files}, hive_partitioning = false)
GROUP BY source_id, image_id, label;

CREATE OR REPLACE TEMP TABLE bucket_samples AS
WITH ranked AS (
    SELECT g.rowid AS group_row, source_id, image_id, label, n_boxes,
           normalise_uri(g.image_uri) AS uri_key,
           coalesce(d.group_key, uri_key) AS image_key,
           row_number() OVER (
               PARTITION BY source_id, label
               ORDER BY stable_hash64(concat_ws(chr(31), {seed}, source_id, image_id)), image_id
           ) > {cap} AS capped
    FROM bucket_groups AS g
    LEFT JOIN {image_groups} AS d ON d.image_uri = g.image_uri
)
SELECT group_row, source_id, image_id, label, n_boxes, capped,
       NOT capped AND row_number() OVER (
           PARTITION BY image_key, label, capped
           ORDER BY stable_hash64(concat_ws(chr(31), {seed}, source_id)), source_id, image_id
       ) > 1 AS duplicate,
       md5_number(uri_key) AS image,  -- the image file's identity (lake_bucket_images)
       md5_permille(image_key)::SMALLINT AS permille  -- the split (lake_bucket_rows)
FROM ranked;
