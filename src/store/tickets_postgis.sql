-- SQL of the PostGIS ticket store (src/store/tickets.rs), one statement per `-- name:`.
-- Every value is a bound parameter. Each write is ONE statement (a data-modifying CTE,
-- atomic by itself): the ticket row and its audit entry commit together in a single round
-- trip. The document is stored without its id; reads take the id from the column.

-- name: insert
-- Nothing is written (no row returned) when the requester already used this key.
WITH t AS (
  INSERT INTO excavation_tickets
    (requester, idempotency_key, request_hash, state, version, created_at, updated_at, doc)
  VALUES ($1, $2, $3, $4, 1, $5, $5, $6)
  ON CONFLICT (requester, idempotency_key) DO NOTHING
  RETURNING id)
INSERT INTO audit_log (actor, role, action, target, detail)
SELECT $7, $8, 'ticket_submit', 'excavation_tickets/' || t.id, $9 FROM t
RETURNING (SELECT id FROM t)

-- name: by_key
SELECT id, doc FROM excavation_tickets WHERE requester = $1 AND idempotency_key = $2

-- name: get
SELECT id, doc FROM excavation_tickets WHERE id = $1

-- name: list
-- $1: requester or NULL for all; $2: state or NULL for all.
SELECT id, doc FROM excavation_tickets
WHERE ($1::text IS NULL OR requester = $1) AND ($2::text IS NULL OR state = $2)
ORDER BY id DESC LIMIT $3 OFFSET $4

-- name: save
-- No row returned: the stored version is not $2 (a concurrent change) or no such ticket.
WITH s AS (
  UPDATE excavation_tickets SET state = $3, version = version + 1, updated_at = $4, doc = $5
  WHERE id = $1 AND version = $2
  RETURNING id)
INSERT INTO audit_log (actor, role, action, target, detail)
SELECT $6, $7, $8, 'excavation_tickets/' || s.id, $9 FROM s
RETURNING 1
