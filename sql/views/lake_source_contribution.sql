-- Per source: what it brings to the published lake, next to what it had after curation.
CREATE OR REPLACE VIEW lake_source_contribution AS
WITH contributed AS (
    SELECT source_id, count(*) AS samples, sum(n_boxes) AS instances, count(DISTINCT label) AS labels
    FROM lake
    GROUP BY source_id
)
SELECT c.source_id, c.samples, c.instances, c.labels, s.clean_boxes,
       round(c.instances / nullif(s.clean_boxes, 0), 4) AS share_of_clean,
       round(c.instances / sum(c.instances) OVER (), 6) AS share_of_lake
FROM contributed AS c
LEFT JOIN source_selection AS s USING (source_id)
ORDER BY c.instances DESC, c.source_id
