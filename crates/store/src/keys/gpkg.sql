-- API keys and the audit log of the GeoPackage store (keys/gpkg.rs). Keys are stored as
-- hashes (the audit log is in ../audit/). Columns of a key row, in the order
-- `api_key_from_row` reads them: id, name, role, key_hash, created_at, revoked_at.

-- name: key_insert
INSERT INTO api_keys (name, role, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)

-- name: key_by_hash
SELECT id, name, role, key_hash, created_at, revoked_at FROM api_keys WHERE key_hash = ?1

-- name: key_revoke
UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL

-- name: key_list
SELECT id, name, role, key_hash, created_at, revoked_at FROM api_keys
ORDER BY created_at DESC, id DESC

