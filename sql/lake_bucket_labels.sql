-- Per label of one bucket: samples and instances before balancing, capped, duplicated, kept.
SELECT label,
       count(*) AS samples_before,
       sum(n_boxes) AS instances_before,
       count(*) FILTER (WHERE capped) AS samples_capped,
       sum(n_boxes) FILTER (WHERE capped) AS instances_capped,
       count(*) FILTER (WHERE duplicate) AS samples_duplicate,
       sum(n_boxes) FILTER (WHERE duplicate) AS instances_duplicate,
       count(*) FILTER (WHERE NOT capped AND NOT duplicate) AS samples_kept,
       sum(n_boxes) FILTER (WHERE NOT capped AND NOT duplicate) AS instances_kept
FROM bucket_samples
GROUP BY label
