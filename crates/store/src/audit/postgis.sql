-- The audit log of the PostGIS store (audit/postgis.rs). The chain columns (seq,
-- prev_hash, hash) are filled by the `audit_log_chain` trigger (migration 0011).

-- name: append
INSERT INTO audit_log (actor, role, action, target, detail, request_id, area)
VALUES ($1, $2, $3, $4, $5, $6,
        CASE WHEN $7::float8 IS NULL THEN NULL
             ELSE ST_MakeEnvelope($7::float8, $8::float8, $9::float8, $10::float8, 4490) END)

-- name: search
-- Run unprepared (a fresh plan per call), so the planner sees which conditions are null
-- and uses the GiST index on `area` or the (actor, at) / (action, at) indexes.
SELECT id, seq, at, actor, role, action, target, detail, request_id,
       ST_XMin(area), ST_YMin(area), ST_XMax(area), ST_YMax(area), hash
FROM audit_log
WHERE ($1::text IS NULL OR actor = $1::text)
  AND ($2::text[] IS NULL OR action = ANY ($2::text[]))
  AND ($3::float8 IS NULL OR area && ST_MakeEnvelope($3::float8, $4::float8, $5::float8, $6::float8, 4490))
  AND ($7::text IS NULL OR detail -> 'layers' ? $7::text)
  AND ($8::timestamptz IS NULL OR at >= $8::timestamptz)
  AND ($9::timestamptz IS NULL OR at < $9::timestamptz)
ORDER BY at DESC, seq DESC
LIMIT $10

-- name: anchor
SELECT seq, hash FROM audit_anchor WHERE id = 1

-- name: chain
SELECT id, seq, at, actor, role, action, target, detail::text, request_id, prev_hash, hash
FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2

-- name: lock
-- The lock the chain trigger takes: a cut holds it so no append interleaves.
SELECT pg_advisory_xact_lock(5497002083629268995)

-- name: first_young
-- The first entry at or after the cut time, else one past the newest (or the anchor).
SELECT coalesce(
  (SELECT min(seq) FROM audit_log WHERE at >= $1),
  greatest((SELECT max(seq) FROM audit_log), (SELECT seq FROM audit_anchor WHERE id = 1)) + 1)

-- name: hash_at
SELECT hash FROM audit_log WHERE seq = $1

-- name: allow_cut
SELECT set_config('lifeline.audit_prune', 'on', true)

-- name: cut
DELETE FROM audit_log WHERE seq <= $1

-- name: move_anchor
UPDATE audit_anchor SET seq = $1, hash = $2, cut_at = now() WHERE id = 1
