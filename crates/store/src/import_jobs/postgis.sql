-- Import-job progress (issue 6) for the PostGIS store; see import_jobs/postgis.rs. Times
-- travel as RFC 3339 text so both stores bind the same values.

-- name: get
SELECT batch_size, last_row, last_fid, accepted, rejected, batches, done, actor,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  FROM import_jobs WHERE source = $1 AND source_layer = $2 AND layer = $3

-- name: upsert
INSERT INTO import_jobs (source, source_layer, layer, batch_size, last_row, last_fid,
                         accepted, rejected, batches, done, actor, started_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::timestamptz,
        $13::text::timestamptz)
ON CONFLICT (source, source_layer, layer) DO UPDATE SET
  batch_size = excluded.batch_size, last_row = excluded.last_row,
  last_fid = excluded.last_fid, accepted = excluded.accepted,
  rejected = excluded.rejected, batches = excluded.batches, done = excluded.done,
  actor = excluded.actor, started_at = excluded.started_at,
  updated_at = excluded.updated_at
