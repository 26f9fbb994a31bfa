-- The lake rows of one bucket (contract: DESIGN.md section 3), from bucket_samples.
-- boxes_999: each coordinate as round(v / side * 999), clamped to 0..999. The split is an
-- md5 of the normalised image URI alone (not DuckDB's hash(), which may change between DuckDB
-- releases), so an image keeps its split across lake versions, seeds and upgrades.
WITH kept AS (
    SELECT *, list_transform(boxes, lambda b: [
               least(999, greatest(0, round(b[1] / image_width * 999)))::INTEGER,
               least(999, greatest(0, round(b[2] / image_height * 999)))::INTEGER,
               least(999, greatest(0, round(b[3] / image_width * 999)))::INTEGER,
               least(999, greatest(0, round(b[4] / image_height * 999)))::INTEGER
           ]) AS boxes_999
    FROM bucket_samples
    WHERE NOT capped AND NOT duplicate
)
SELECT printf('%016x', hash(source_id, image_id, label)) AS sample_id,
       source_id, image_id, image_uri, image_width, image_height, label, boxes, boxes_999,
       n_boxes,
       '<|ref|>' || label || '<|/ref|><|box|>['
           || array_to_string(list_transform(boxes_999, lambda b: '[' || array_to_string(b, ',') || ']'), ',')
           || ']<|/box|>' AS target,
       CASE WHEN md5_number(image_key) % 1000 < {holdout_permille} THEN 'holdout' ELSE 'train' END AS split
FROM kept
ORDER BY label, source_id, image_id
