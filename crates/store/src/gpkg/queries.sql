-- The GeoPackage store's own statements (gpkg/mod.rs): the bookkeeping every write shares
-- (gpkg_contents, change log, audit log) and the migrations table. The layers' record
-- statements are built from the layer schemas (records/gpkg.rs), the capabilities' in their
-- folders.

-- name: contents_touch_extent
-- Widens the layer's bbox and records the change time.
UPDATE gpkg_contents SET last_change = ?1,
  min_x = min(coalesce(min_x, ?2), ?2), min_y = min(coalesce(min_y, ?3), ?3),
  max_x = max(coalesce(max_x, ?4), ?4), max_y = max(coalesce(max_y, ?5), ?5)
WHERE table_name = ?6

-- name: contents_touch
UPDATE gpkg_contents SET last_change = ?1 WHERE table_name = ?2

-- name: change_insert
INSERT INTO change_log (layer, record_id, op, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)

-- name: audit_insert
INSERT INTO audit_log (at, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)

-- name: latest_version
SELECT coalesce(max(version), 0) FROM change_log

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  applied_at DATETIME NOT NULL)

-- name: migrations_applied
SELECT version FROM schema_migrations

-- name: migration_record
INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)

-- name: migrations_version
SELECT coalesce(max(version), 0) FROM schema_migrations
