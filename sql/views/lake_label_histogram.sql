-- Per canonical label of the published lake: samples, instances, sources, share of instances.
CREATE OR REPLACE VIEW lake_label_histogram AS
SELECT label,
       count(*) AS samples,
       sum(n_boxes) AS instances,
       count(DISTINCT source_id) AS sources,
       round(sum(n_boxes) / sum(sum(n_boxes)) OVER (), 6) AS instance_share
FROM lake
GROUP BY label
ORDER BY instances DESC, label
