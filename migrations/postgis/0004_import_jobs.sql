-- Resumable batch imports (issue 6): one row per (source file, source layer, target layer)
-- recording how far a `lifeline import --batch-size N` run has committed. The row is written
-- in the same transaction as each batch's records, so after a kill the recorded position and
-- the stored rows always agree, and `--resume` continues after `last_row` without
-- duplicates.
CREATE TABLE import_jobs (
  source text NOT NULL,
  source_layer text NOT NULL,
  layer text NOT NULL,
  batch_size bigint NOT NULL CHECK (batch_size > 0),
  -- The last 1-based source row whose batch is committed (0: none yet), and its FID.
  last_row bigint NOT NULL CHECK (last_row >= 0),
  last_fid bigint,
  accepted bigint NOT NULL,
  rejected bigint NOT NULL,
  batches bigint NOT NULL,
  done boolean NOT NULL,
  actor text NOT NULL,
  started_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (source, source_layer, layer)
);
