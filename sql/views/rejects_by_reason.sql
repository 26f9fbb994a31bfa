-- Rejects by stage and reason: rows, boxes (rows with an instance id) and sources touched.
CREATE OR REPLACE VIEW rejects_by_reason AS
SELECT stage, reason,
       count(*) AS rows,
       count(instance_id) AS boxes,
       count(DISTINCT source_id) AS sources
FROM rejects
GROUP BY stage, reason
ORDER BY stage, rows DESC
