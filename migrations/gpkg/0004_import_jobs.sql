-- Resumable batch imports (issue 6): one row per (source file, source layer, target layer)
-- recording how far a `lifeline import --batch-size N` run has committed. The row is written
-- in the same transaction as each batch's records, so after a kill the recorded position and
-- the stored rows always agree, and `--resume` continues after `last_row` without
-- duplicates. Bookkeeping, so (like change_log) it is not registered in gpkg_contents.
CREATE TABLE import_jobs (
  source TEXT NOT NULL,
  source_layer TEXT NOT NULL,
  layer TEXT NOT NULL,
  batch_size INTEGER NOT NULL CHECK (batch_size > 0),
  -- The last 1-based source row whose batch is committed (0: none yet), and its FID.
  last_row INTEGER NOT NULL CHECK (last_row >= 0),
  last_fid INTEGER,
  accepted INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  batches INTEGER NOT NULL,
  done INTEGER NOT NULL CHECK (done = 0 OR done = 1),
  actor TEXT NOT NULL,
  started_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  PRIMARY KEY (source, source_layer, layer)
);
