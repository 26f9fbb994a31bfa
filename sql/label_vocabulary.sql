-- Every distinct raw label with how many boxes, images and sources carry it.
SELECT raw_label,
       count(*) AS boxes,
       count(DISTINCT (source_id, image_id)) AS images,
       count(DISTINCT source_id) AS sources
FROM raw_instances
GROUP BY raw_label
ORDER BY boxes DESC, raw_label
