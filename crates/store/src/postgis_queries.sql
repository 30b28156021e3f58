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

-- name: audit_recent
SELECT id, at, actor, role, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1

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
       (SELECT count(*) FROM owners)

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

-- name: geometry_type
-- Only to learn the type oid of `geometry` in this database, for binary COPY.
SELECT NULL::geometry

-- owners -----------------------------------------------------------------------------------
-- `<layer>.all` has no ORDER BY on purpose: sorting a million geometries spills to disk,
-- and the index built from them does not care about order.

-- name: owners.insert
INSERT INTO owners (id, name, emergency_contact, emergency_phone, email)
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('owners', 'id')::regclass)),
        $2, $3, $4, $5)
RETURNING id

-- name: owners.update
UPDATE owners SET name = $2, emergency_contact = $3, emergency_phone = $4, email = $5
WHERE id = $1

-- name: owners.get
SELECT id, name, emergency_contact, emergency_phone, email FROM owners WHERE id = $1

-- name: owners.all
SELECT id, name, emergency_contact, emergency_phone, email FROM owners

-- name: owners.delete
DELETE FROM owners WHERE id = $1

-- name: owners.stage
CREATE TEMP TABLE stage_owners (
  id bigint NOT NULL, name text, emergency_contact text, emergency_phone text, email text
) ON COMMIT DROP

-- name: owners.copy
COPY stage_owners (id, name, emergency_contact, emergency_phone, email)
FROM STDIN (FORMAT binary)

-- name: owners.stage_max
SELECT max(id) FROM stage_owners

-- name: owners.merge
INSERT INTO owners (id, name, emergency_contact, emergency_phone, email)
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('owners', 'id')::regclass)),
       name, emergency_contact, emergency_phone, email
FROM stage_owners
ON CONFLICT (id) DO UPDATE SET
  name = EXCLUDED.name, emergency_contact = EXCLUDED.emergency_contact,
  emergency_phone = EXCLUDED.emergency_phone, email = EXCLUDED.email

-- grid_cells -------------------------------------------------------------------------------

-- name: grid_cells.insert
INSERT INTO grid_cells (id, level, parent_id, name, code, geom)
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('grid_cells', 'id')::regclass)),
        $2, $3, $4, $5, ST_SetSRID($6::geometry, 4490))
RETURNING id

-- name: grid_cells.update
UPDATE grid_cells SET level = $2, parent_id = $3, name = $4, code = $5,
  geom = ST_SetSRID($6::geometry, 4490)
WHERE id = $1

-- name: grid_cells.get
SELECT id, level, parent_id, name, code, geom FROM grid_cells WHERE id = $1

-- name: grid_cells.all
SELECT id, level, parent_id, name, code, geom FROM grid_cells

-- name: grid_cells.delete
DELETE FROM grid_cells WHERE id = $1

-- name: grid_cells.stage
CREATE TEMP TABLE stage_grid_cells (
  id bigint NOT NULL, level text, parent_id bigint, name text, code text, geom geometry
) ON COMMIT DROP

-- name: grid_cells.copy
COPY stage_grid_cells (id, level, parent_id, name, code, geom) FROM STDIN (FORMAT binary)

-- name: grid_cells.stage_max
SELECT max(id) FROM stage_grid_cells

-- name: grid_cells.merge
-- Parents before children is not needed within one statement (foreign keys are checked at
-- its end), but the staging order follows levels anyway.
INSERT INTO grid_cells (id, level, parent_id, name, code, geom)
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('grid_cells', 'id')::regclass)),
       level, parent_id, name, code, ST_SetSRID(geom, 4490)
FROM stage_grid_cells
ON CONFLICT (id) DO UPDATE SET
  level = EXCLUDED.level, parent_id = EXCLUDED.parent_id, name = EXCLUDED.name,
  code = EXCLUDED.code, geom = EXCLUDED.geom

-- pipelines --------------------------------------------------------------------------------

-- name: pipelines.insert
INSERT INTO pipelines (id, kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, geom)
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('pipelines', 'id')::regclass)),
        $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
        $21, ST_SetSRID($22::geometry, 4490))
RETURNING id

-- name: pipelines.update
UPDATE pipelines SET kind = $2, sub_kind = $3, pressure_class = $4, voltage_kv = $5,
  material = $6, diameter_mm = $7, section_width_mm = $8, section_height_mm = $9,
  depth_start_m = $10, depth_end_m = $11, invert_start_m = $12, invert_end_m = $13,
  burial = $14, owner_id = $15, year_built = $16, survey_date = $17, plan_accuracy_cm = $18,
  depth_accuracy_cm = $19, quality_level = $20, status = $21,
  geom = ST_SetSRID($22::geometry, 4490)
WHERE id = $1

-- name: pipelines.get
SELECT id, kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, geom
FROM pipelines WHERE id = $1

-- name: pipelines.all
SELECT id, kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, geom
FROM pipelines

-- name: pipelines.delete
DELETE FROM pipelines WHERE id = $1

-- name: pipelines.stage
CREATE TEMP TABLE stage_pipelines (
  id bigint NOT NULL, kind text, sub_kind text, pressure_class text,
  voltage_kv double precision, material text, diameter_mm double precision,
  section_width_mm double precision, section_height_mm double precision,
  depth_start_m double precision, depth_end_m double precision,
  invert_start_m double precision, invert_end_m double precision, burial text,
  owner_id bigint, year_built integer, survey_date date, plan_accuracy_cm double precision,
  depth_accuracy_cm double precision, quality_level text, status text, geom geometry
) ON COMMIT DROP

-- name: pipelines.copy
COPY stage_pipelines (id, kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, geom)
FROM STDIN (FORMAT binary)

-- name: pipelines.stage_max
SELECT max(id) FROM stage_pipelines

-- name: pipelines.merge
INSERT INTO pipelines (id, kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, geom)
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('pipelines', 'id')::regclass)),
  kind, sub_kind, pressure_class, voltage_kv, material, diameter_mm,
  section_width_mm, section_height_mm, depth_start_m, depth_end_m, invert_start_m,
  invert_end_m, burial, owner_id, year_built, survey_date, plan_accuracy_cm,
  depth_accuracy_cm, quality_level, status, ST_SetSRID(geom, 4490)
FROM stage_pipelines
ON CONFLICT (id) DO UPDATE SET
  kind = EXCLUDED.kind, sub_kind = EXCLUDED.sub_kind,
  pressure_class = EXCLUDED.pressure_class, voltage_kv = EXCLUDED.voltage_kv,
  material = EXCLUDED.material, diameter_mm = EXCLUDED.diameter_mm,
  section_width_mm = EXCLUDED.section_width_mm,
  section_height_mm = EXCLUDED.section_height_mm, depth_start_m = EXCLUDED.depth_start_m,
  depth_end_m = EXCLUDED.depth_end_m, invert_start_m = EXCLUDED.invert_start_m,
  invert_end_m = EXCLUDED.invert_end_m, burial = EXCLUDED.burial,
  owner_id = EXCLUDED.owner_id, year_built = EXCLUDED.year_built,
  survey_date = EXCLUDED.survey_date, plan_accuracy_cm = EXCLUDED.plan_accuracy_cm,
  depth_accuracy_cm = EXCLUDED.depth_accuracy_cm, quality_level = EXCLUDED.quality_level,
  status = EXCLUDED.status, geom = EXCLUDED.geom

-- risk_points ------------------------------------------------------------------------------

-- name: risk_points.insert
INSERT INTO risk_points (id, category, level, name, grid_cell_id, responsible_unit,
  responsible_person, responsible_phone, emergency_plan, last_review, next_review, status, geom)
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('risk_points', 'id')::regclass)),
        $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, ST_SetSRID($13::geometry, 4490))
RETURNING id

-- name: risk_points.update
UPDATE risk_points SET category = $2, level = $3, name = $4, grid_cell_id = $5,
  responsible_unit = $6, responsible_person = $7, responsible_phone = $8,
  emergency_plan = $9, last_review = $10, next_review = $11, status = $12,
  geom = ST_SetSRID($13::geometry, 4490)
WHERE id = $1

-- name: risk_points.get
SELECT id, category, level, name, grid_cell_id, responsible_unit, responsible_person,
  responsible_phone, emergency_plan, last_review, next_review, status, geom
FROM risk_points WHERE id = $1

-- name: risk_points.all
SELECT id, category, level, name, grid_cell_id, responsible_unit, responsible_person,
  responsible_phone, emergency_plan, last_review, next_review, status, geom
FROM risk_points

-- name: risk_points.delete
DELETE FROM risk_points WHERE id = $1

-- name: risk_points.stage
CREATE TEMP TABLE stage_risk_points (
  id bigint NOT NULL, category text, level text, name text, grid_cell_id bigint,
  responsible_unit text, responsible_person text, responsible_phone text,
  emergency_plan text, last_review date, next_review date, status text, geom geometry
) ON COMMIT DROP

-- name: risk_points.copy
COPY stage_risk_points (id, category, level, name, grid_cell_id, responsible_unit,
  responsible_person, responsible_phone, emergency_plan, last_review, next_review, status, geom)
FROM STDIN (FORMAT binary)

-- name: risk_points.stage_max
SELECT max(id) FROM stage_risk_points

-- name: risk_points.merge
INSERT INTO risk_points (id, category, level, name, grid_cell_id, responsible_unit,
  responsible_person, responsible_phone, emergency_plan, last_review, next_review, status, geom)
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('risk_points', 'id')::regclass)),
  category, level, name, grid_cell_id, responsible_unit, responsible_person,
  responsible_phone, emergency_plan, last_review, next_review, status, ST_SetSRID(geom, 4490)
FROM stage_risk_points
ON CONFLICT (id) DO UPDATE SET
  category = EXCLUDED.category, level = EXCLUDED.level, name = EXCLUDED.name,
  grid_cell_id = EXCLUDED.grid_cell_id, responsible_unit = EXCLUDED.responsible_unit,
  responsible_person = EXCLUDED.responsible_person,
  responsible_phone = EXCLUDED.responsible_phone, emergency_plan = EXCLUDED.emergency_plan,
  last_review = EXCLUDED.last_review, next_review = EXCLUDED.next_review,
  status = EXCLUDED.status, geom = EXCLUDED.geom

-- sensors ----------------------------------------------------------------------------------

-- name: sensors.insert
INSERT INTO sensors (id, kind, code, pipeline_id, risk_point_id, status, installed, location)
VALUES (COALESCE(NULLIF($1::bigint, 0), nextval(pg_get_serial_sequence('sensors', 'id')::regclass)),
        $2, $3, $4, $5, $6, $7, ST_SetSRID($8::geometry, 4490))
RETURNING id

-- name: sensors.update
UPDATE sensors SET kind = $2, code = $3, pipeline_id = $4, risk_point_id = $5, status = $6,
  installed = $7, location = ST_SetSRID($8::geometry, 4490)
WHERE id = $1

-- name: sensors.get
SELECT id, kind, code, pipeline_id, risk_point_id, status, installed, location
FROM sensors WHERE id = $1

-- name: sensors.all
SELECT id, kind, code, pipeline_id, risk_point_id, status, installed, location
FROM sensors

-- name: sensors.delete
DELETE FROM sensors WHERE id = $1

-- name: sensors.stage
CREATE TEMP TABLE stage_sensors (
  id bigint NOT NULL, kind text, code text, pipeline_id bigint, risk_point_id bigint,
  status text, installed date, location geometry
) ON COMMIT DROP

-- name: sensors.copy
COPY stage_sensors (id, kind, code, pipeline_id, risk_point_id, status, installed, location)
FROM STDIN (FORMAT binary)

-- name: sensors.stage_max
SELECT max(id) FROM stage_sensors

-- name: sensors.merge
INSERT INTO sensors (id, kind, code, pipeline_id, risk_point_id, status, installed, location)
SELECT COALESCE(NULLIF(id, 0), nextval(pg_get_serial_sequence('sensors', 'id')::regclass)),
  kind, code, pipeline_id, risk_point_id, status, installed, ST_SetSRID(location, 4490)
FROM stage_sensors
ON CONFLICT (id) DO UPDATE SET
  kind = EXCLUDED.kind, code = EXCLUDED.code, pipeline_id = EXCLUDED.pipeline_id,
  risk_point_id = EXCLUDED.risk_point_id, status = EXCLUDED.status,
  installed = EXCLUDED.installed, location = EXCLUDED.location

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
DROP INDEX pipelines_geom_idx

-- name: pipelines.restore
CREATE INDEX pipelines_geom_idx ON pipelines USING gist (geom);
ALTER TABLE pipelines ADD CONSTRAINT pipelines_owner_id_fkey
  FOREIGN KEY (owner_id) REFERENCES owners (id);
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

-- name: schema_fingerprint
-- Definitions of every index and constraint of the data tables, to check that a large
-- load restores exactly what the migrations made.
SELECT c.relname || ' ' || i.relname || ' ' || pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
WHERE c.relname IN ('owners', 'grid_cells', 'pipelines', 'risk_points', 'sensors')
UNION ALL
SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid::regclass::text IN ('owners', 'grid_cells', 'pipelines', 'risk_points', 'sensors')
ORDER BY 1
