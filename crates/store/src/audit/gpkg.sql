-- The audit log of the GeoPackage store (audit/gpkg.rs). The chain columns (seq,
-- prev_hash, hash) are filled by the `audit_log_chain` trigger (migration 0011), with the
-- `lifeline_audit_hash` function every connection registers.

-- name: append
INSERT INTO audit_log (at, actor, role, action, target, detail, request_id,
                       min_x, min_y, max_x, max_y)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)

-- name: search
-- ?1/?2 the time window (always bound, so the `at` index serves it), ?3 actor, ?4 the
-- actions as a JSON array, ?5 a layer, ?6 the limit.
SELECT id, seq, at, actor, role, action, target, detail, request_id,
       min_x, min_y, max_x, max_y, hash
FROM audit_log
WHERE at >= ?1 AND at < ?2
  AND (?3 IS NULL OR actor = ?3)
  AND (?4 IS NULL OR action IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(detail, '$.layers') WHERE value = ?5))
ORDER BY at DESC, seq DESC
LIMIT ?6

-- name: search_area
-- As `search`, for entries whose area intersects the box ?7..?10, through the R*Tree.
SELECT a.id, a.seq, a.at, a.actor, a.role, a.action, a.target, a.detail, a.request_id,
       a.min_x, a.min_y, a.max_x, a.max_y, a.hash
FROM rtree_audit_log_area r JOIN audit_log a ON a.id = r.id
WHERE r.minx <= ?9 AND r.maxx >= ?7 AND r.miny <= ?10 AND r.maxy >= ?8
  AND a.at >= ?1 AND a.at < ?2
  AND (?3 IS NULL OR a.actor = ?3)
  AND (?4 IS NULL OR a.action IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(a.detail, '$.layers') WHERE value = ?5))
ORDER BY a.at DESC, a.seq DESC
LIMIT ?6

-- name: anchor
SELECT seq, hash FROM audit_anchor WHERE id = 1

-- name: chain
SELECT id, seq, at, actor, role, action, target, detail, request_id, prev_hash, hash
FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2

-- name: first_young
SELECT coalesce(
  (SELECT min(seq) FROM audit_log WHERE at >= ?1),
  max(coalesce((SELECT max(seq) FROM audit_log), 0), (SELECT seq FROM audit_anchor WHERE id = 1)) + 1)

-- name: hash_at
SELECT hash FROM audit_log WHERE seq = ?1

-- name: open_cut
UPDATE audit_anchor SET pruning = 1 WHERE id = 1

-- name: cut
DELETE FROM audit_log WHERE seq <= ?1

-- name: move_anchor
UPDATE audit_anchor SET seq = ?1, hash = ?2, cut_at = ?3, pruning = 0 WHERE id = 1
