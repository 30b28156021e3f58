-- Import-job progress (issue 6) for the GeoPackage store; see import_jobs/gpkg.rs.

-- name: get
SELECT batch_size, last_row, last_fid, accepted, rejected, batches, done, actor,
       started_at, updated_at
  FROM import_jobs WHERE source = ?1 AND source_layer = ?2 AND layer = ?3

-- name: upsert
INSERT INTO import_jobs (source, source_layer, layer, batch_size, last_row, last_fid,
                         accepted, rejected, batches, done, actor, started_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT (source, source_layer, layer) DO UPDATE SET
  batch_size = excluded.batch_size, last_row = excluded.last_row,
  last_fid = excluded.last_fid, accepted = excluded.accepted,
  rejected = excluded.rejected, batches = excluded.batches, done = excluded.done,
  actor = excluded.actor, started_at = excluded.started_at,
  updated_at = excluded.updated_at
