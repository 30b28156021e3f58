-- SQL of the GeoPackage ticket store (tickets/gpkg.rs), one statement per `-- name:`.

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

-- name: channel
-- Owner notifications (migration 0005); notification columns in the order
-- `gpkg_notification` reads them.
SELECT owner_id, webhook_url, email, sms FROM owner_channels WHERE owner_id = ?1

-- name: set_channels
INSERT INTO owner_channels (owner_id, webhook_url, email, sms, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (owner_id) DO UPDATE SET webhook_url = excluded.webhook_url,
  email = excluded.email, sms = excluded.sms, updated_at = excluded.updated_at

-- name: enqueue
INSERT INTO notification_outbox (ticket_id, owner_id, channel, address, message, due_at,
  status, attempts, next_attempt_at, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?7)
ON CONFLICT (ticket_id, owner_id, channel) DO NOTHING
RETURNING id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at

-- name: notifications
SELECT id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at
FROM notification_outbox
WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id = ?3)
ORDER BY id LIMIT ?4

-- name: claim
UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = ?2, updated_at = ?1
WHERE id IN (
  SELECT id FROM notification_outbox
  WHERE status = 'pending' AND channel = 'webhook' AND next_attempt_at <= ?1
  ORDER BY next_attempt_at, id LIMIT ?3)
RETURNING id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at

-- name: finish
UPDATE notification_outbox SET status = ?2, last_error = ?3,
  next_attempt_at = COALESCE(?4, next_attempt_at), delivered_at = ?5, updated_at = ?6
WHERE id = ?1 AND status = 'pending'
RETURNING id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at
