-- SQL of `PostgisStore` (src/store/postgis.rs), one statement per `-- name:` section.
-- Every value is a bound parameter ($n); nothing is ever spliced into this text.
--
-- Column order per layer is the same in insert, update, get, all, stage and copy: the Rust
-- side binds and reads by position (`id` first, the geometry last).
-- Geometries arrive as EWKB without an SRID (geozero's `wkb::Encode`) and are tagged
-- EPSG:4490 here; they leave as EWKB with the SRID (the binary form of `geometry`).

-- name: ping
SELECT 1

-- name: write_lock
-- Taken first by every write transaction and held to commit: writes are serialised, so
-- change-log versions commit in order and sequence bumps cannot race.
SELECT pg_advisory_xact_lock($1::bigint)

-- name: bump_sequence
-- Moves the id sequence of table $1 up to $2 if it is behind (after explicit ids).
SELECT setval(pg_get_serial_sequence($1::text, 'id')::regclass, $2::bigint)
WHERE $2::bigint > COALESCE(pg_sequence_last_value(pg_get_serial_sequence($1::text, 'id')::regclass), 0)

-- name: change_insert
INSERT INTO change_log (layer, record_id, op, actor) VALUES ($1, $2, $3, $4) RETURNING version

-- name: changes_since
SELECT version, layer, record_id, op, actor, at FROM change_log
WHERE version > $1 ORDER BY version LIMIT $2

-- name: latest_version
SELECT COALESCE(max(version), 0) FROM change_log

-- name: audit_insert
INSERT INTO audit_log (actor, role, action, target, detail) VALUES ($1, $2, $3, $4, $5)

-- name: key_insert
INSERT INTO api_keys (name, role, key_hash) VALUES ($1, $2, $3)
RETURNING id, name, role, key_hash, created_at, revoked_at

-- name: key_by_hash
SELECT id, name, role, key_hash, created_at, revoked_at FROM api_keys WHERE key_hash = $1

-- name: key_revoke
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL

-- name: key_list
SELECT id, name, role, key_hash, created_at, revoked_at FROM api_keys
ORDER BY created_at DESC, id DESC

-- name: counts
-- In `Layer::ALL` order.
SELECT (SELECT count(*) FROM pipelines), (SELECT count(*) FROM risk_points),
       (SELECT count(*) FROM grid_cells), (SELECT count(*) FROM sensors),
       (SELECT count(*) FROM nodes), (SELECT count(*) FROM owners)

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
  version bigint PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: migrations_applied
SELECT version FROM schema_migrations ORDER BY version

-- name: migration_record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2)

-- name: citus_installed
-- Whether this server is a Citus coordinator (issue 16): the schema is then laid out over
-- the cluster after the migrations (migrations/citus/).
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')

-- name: citus_layout_table
CREATE TABLE IF NOT EXISTS citus_layout (
  version bigint PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: citus_layout_applied
SELECT 1 FROM citus_layout WHERE version = $1

-- name: citus_layout_record
INSERT INTO citus_layout (version, name) VALUES ($1, $2)

-- name: geometry_type
-- Only to learn the type oid of `geometry` in this database, for binary COPY.
SELECT NULL::geometry

-- Records of every layer ------------------------------------------------------------------
-- One set of statements for every layer, expanded once per layer from its schema
-- (`lifeline_model::schema`) when the store starts:
--   {table}          the layer's table;
--   {columns}        id, the schema's attributes in table order, the geometry column;
--   {values}         $2… for the attributes, then the geometry as ST_SetSRID($n::geometry, 4490);
--   {set}            attribute = $i …, geometry = ST_SetSRID($n::geometry, 4490);
--   {stage_columns}  the staging table's column definitions (types from the schema);
--   {merge_values}   the staged attributes, then ST_SetSRID(geometry, 4490);
--   {excluded}       attribute = EXCLUDED.attribute … for the upsert.
-- The statements bind and read in that column order: id first, geometry last. Owners have
-- no geometry. `layer.all` has no ORDER BY on purpose: sorting a million geometries spills
-- to disk, and the index built from them does not care about order.

-- name: layer.insert
INSERT INTO {table} ({columns})
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('{table}', 'id')::regclass)),
        {values})
RETURNING id

-- name: layer.update
UPDATE {table} SET {set}
WHERE id = $1

-- name: layer.get
SELECT {columns} FROM {table} WHERE id = $1

-- name: layer.all
SELECT {columns} FROM {table}

-- name: layer.delete
DELETE FROM {table} WHERE id = $1

-- name: layer.stage
CREATE TEMP TABLE stage_{table} ({stage_columns}) ON COMMIT DROP

-- name: layer.copy
COPY stage_{table} ({columns}) FROM STDIN (FORMAT binary)

-- name: layer.stage_max
SELECT max(id) FROM stage_{table}

-- name: layer.merge
-- Parents before children is not needed within one statement (foreign keys are checked at
-- its end).
INSERT INTO {table} ({columns})
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('{table}', 'id')::regclass)),
       {merge_values}
FROM stage_{table}
ON CONFLICT (id) DO UPDATE SET {excluded}

-- Large loads -------------------------------------------------------------------------------
-- A load that more than doubles a table (and is big) is merged with the table's GiST index
-- and outgoing foreign keys set aside: building the index once (sorted build) and checking
-- each foreign key with one join is about twice as fast as maintaining both row by row.
-- It all happens inside the load's transaction, so a failure restores them untouched; the
-- price is an exclusive lock on the table until commit. The definitions below MUST match
-- migrations/postgis (a unit test compares them after a large load).

-- name: grid_cells.count
SELECT count(*) FROM grid_cells

-- name: grid_cells.set_aside
ALTER TABLE grid_cells DROP CONSTRAINT grid_cells_parent_id_fkey;
DROP INDEX grid_cells_geom_idx

-- name: grid_cells.restore
CREATE INDEX grid_cells_geom_idx ON grid_cells USING gist (geom);
ALTER TABLE grid_cells ADD CONSTRAINT grid_cells_parent_id_fkey
  FOREIGN KEY (parent_id) REFERENCES grid_cells (id);
-- Fresh statistics, so later plans see the table as it now is.
ANALYZE grid_cells

-- name: pipelines.count
SELECT count(*) FROM pipelines

-- name: pipelines.set_aside
ALTER TABLE pipelines DROP CONSTRAINT pipelines_owner_id_fkey;
ALTER TABLE pipelines DROP CONSTRAINT pipelines_from_node_fkey;
ALTER TABLE pipelines DROP CONSTRAINT pipelines_to_node_fkey;
DROP INDEX pipelines_geom_idx

-- name: pipelines.restore
CREATE INDEX pipelines_geom_idx ON pipelines USING gist (geom);
ALTER TABLE pipelines ADD CONSTRAINT pipelines_owner_id_fkey
  FOREIGN KEY (owner_id) REFERENCES owners (id);
ALTER TABLE pipelines ADD CONSTRAINT pipelines_from_node_fkey
  FOREIGN KEY (from_node) REFERENCES nodes (id);
ALTER TABLE pipelines ADD CONSTRAINT pipelines_to_node_fkey
  FOREIGN KEY (to_node) REFERENCES nodes (id);
ANALYZE pipelines

-- name: risk_points.count
SELECT count(*) FROM risk_points

-- name: risk_points.set_aside
ALTER TABLE risk_points DROP CONSTRAINT risk_points_grid_cell_id_fkey;
DROP INDEX risk_points_geom_idx

-- name: risk_points.restore
CREATE INDEX risk_points_geom_idx ON risk_points USING gist (geom);
ALTER TABLE risk_points ADD CONSTRAINT risk_points_grid_cell_id_fkey
  FOREIGN KEY (grid_cell_id) REFERENCES grid_cells (id);
ANALYZE risk_points

-- name: sensors.count
SELECT count(*) FROM sensors

-- name: sensors.set_aside
ALTER TABLE sensors DROP CONSTRAINT sensors_pipeline_id_fkey;
ALTER TABLE sensors DROP CONSTRAINT sensors_risk_point_id_fkey;
DROP INDEX sensors_location_idx

-- name: sensors.restore
CREATE INDEX sensors_location_idx ON sensors USING gist (location);
ALTER TABLE sensors ADD CONSTRAINT sensors_pipeline_id_fkey
  FOREIGN KEY (pipeline_id) REFERENCES pipelines (id);
ALTER TABLE sensors ADD CONSTRAINT sensors_risk_point_id_fkey
  FOREIGN KEY (risk_point_id) REFERENCES risk_points (id);
ANALYZE sensors

-- name: nodes.count
SELECT count(*) FROM nodes

-- name: nodes.set_aside
DROP INDEX nodes_geom_idx

-- name: nodes.restore
CREATE INDEX nodes_geom_idx ON nodes USING gist (geom);
ANALYZE nodes

-- name: schema_fingerprint
-- Definitions of every index and constraint of the data tables, to check that a large
-- load restores exactly what the migrations made.
SELECT c.relname || ' ' || i.relname || ' ' || pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
WHERE c.relname IN ('owners', 'grid_cells', 'pipelines', 'risk_points', 'sensors', 'nodes')
UNION ALL
SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid::regclass::text IN ('owners', 'grid_cells', 'pipelines', 'risk_points', 'sensors',
                                   'nodes')
ORDER BY 1
