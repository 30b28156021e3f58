-- SQL of the GeoPackage ticket store (src/store/tickets.rs), one statement per `-- name:`.

-- name: insert
INSERT INTO excavation_tickets
  (requester, idempotency_key, request_hash, state, version, created_at, updated_at, doc)
VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6)
ON CONFLICT (requester, idempotency_key) DO NOTHING

-- name: set_doc
UPDATE excavation_tickets SET doc = ?2 WHERE id = ?1

-- name: by_key
SELECT doc FROM excavation_tickets WHERE requester = ?1 AND idempotency_key = ?2

-- name: get
SELECT doc FROM excavation_tickets WHERE id = ?1

-- name: list
SELECT doc FROM excavation_tickets
WHERE (?1 IS NULL OR requester = ?1) AND (?2 IS NULL OR state = ?2)
ORDER BY id DESC LIMIT ?3 OFFSET ?4

-- name: save
UPDATE excavation_tickets SET state = ?3, version = version + 1, updated_at = ?4, doc = ?5
WHERE id = ?1 AND version = ?2

-- name: audit
INSERT INTO audit_log (at, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
