-- Sources and boxes from raw to the published lake: the curation funnel, then what the lake
-- holds after the per-(source, label) cap and the cross-source de-duplication.
CREATE OR REPLACE VIEW lake_funnel AS
SELECT * FROM curation_funnel
UNION ALL
SELECT 'in the lake', count(DISTINCT source_id), sum(n_boxes)
FROM lake
