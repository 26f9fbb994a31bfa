-- Sources and boxes from raw to the published lake: the curation funnel, then what the lake
-- holds after the per-(source, label) cap and the cross-source de-duplication.
CREATE OR REPLACE VIEW lake_funnel AS
SELECT step, sources, boxes FROM (
    SELECT CASE step WHEN 'raw' THEN 1 WHEN 'after step I (labels)' THEN 2 ELSE 3 END AS n, *
    FROM curation_funnel
    UNION ALL
    SELECT 4, 'in the lake', count(DISTINCT source_id), sum(n_boxes)
    FROM lake
)
ORDER BY n
