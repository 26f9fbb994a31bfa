-- The lake rows of one bucket (contract: DESIGN.md section 3): the kept samples of
-- bucket_samples with their boxes from bucket_groups, ordered by (label, source_id, image_id).
-- The sort runs on the joined rows before the derived columns exist (sample_id, boxes_999,
-- target, split are computed after it, on rows a projection keeps in order), so it moves
-- about half the bytes.
-- boxes_999: each coordinate as round(v / side * 999), clamped to 0..999. The split is an
-- md5 of the normalised image URI alone (bucket_samples.permille = md5_permille(image_key);
-- not DuckDB's hash(), which may change between DuckDB releases), so an image keeps its split
-- across lake versions, seeds and upgrades. target: boxes_999 cast to text is
-- "[[1, 2, 3, 4], [5, 6, 7, 8]]"; without the spaces it is the report's "[[1,2,3,4],[5,6,7,8]]"
-- (one cast instead of a string join per box). sample_id: the 16 hex digits of
-- stable_hash64(source_id, image_id, label) (md5-based, sql/macros/stable_hash64.sql; the parts
-- joined by chr(31)): the same id for the same sample on every DuckDB release.
WITH kept AS (
    SELECT g.*, s.permille
    FROM bucket_groups AS g
    JOIN (SELECT group_row, permille FROM bucket_samples WHERE NOT capped AND NOT duplicate) AS s
        ON g.rowid = s.group_row
    ORDER BY label, source_id, image_id
),
scaled AS (
    SELECT *, list_transform(boxes, lambda b: [
               to_999(b[1], image_width), to_999(b[2], image_height),
               to_999(b[3], image_width), to_999(b[4], image_height)
           ]) AS boxes_999
    FROM kept
)
SELECT printf('%016x', stable_hash64(concat_ws(chr(31), source_id, image_id, label))) AS sample_id,
       source_id, image_id, image_uri, image_width, image_height, label, boxes, boxes_999,
       n_boxes,
       '<|ref|>' || label || '<|/ref|><|box|>'
           || replace(boxes_999::VARCHAR, ' ', '') || '<|/box|>' AS target,
       CASE WHEN permille < {holdout_permille} THEN 'holdout' ELSE 'train' END AS split
FROM scaled
