-- Sources and boxes at each step: raw, after step I (labels), after step II (geometry).
CREATE OR REPLACE VIEW curation_funnel AS
SELECT step, sources, boxes FROM (
    SELECT 1 AS n, 'raw' AS step, count(*) AS sources, sum(raw_boxes) AS boxes
    FROM source_selection
    UNION ALL
    SELECT 2, 'after step I (labels)',
           count(*) FILTER (WHERE stage IS DISTINCT FROM 'label'),
           sum(raw_boxes - label_rejected) FILTER (WHERE stage IS DISTINCT FROM 'label')
    FROM source_selection
    UNION ALL
    SELECT 3, 'after step II (geometry)',
           count(*) FILTER (WHERE decision = 'keep'),
           sum(clean_boxes) FILTER (WHERE decision = 'keep')
    FROM source_selection
)
ORDER BY n
