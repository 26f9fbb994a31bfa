-- Facts about one lake version for its manifest: sources, labels, images (by normalised URI),
-- and rows / instances per split.
SELECT count(DISTINCT source_id) AS sources,
       count(DISTINCT label) AS labels,
       count(DISTINCT hash(normalise_uri(image_uri))) AS images,
       count(*) FILTER (WHERE split = 'train') AS train_rows,
       count(*) FILTER (WHERE split = 'holdout') AS holdout_rows,
       coalesce(sum(n_boxes) FILTER (WHERE split = 'train'), 0) AS train_instances,
       coalesce(sum(n_boxes) FILTER (WHERE split = 'holdout'), 0) AS holdout_instances
FROM {lake}
