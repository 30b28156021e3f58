-- SQL of the PostGIS ticket store (tickets/postgis.rs), one statement per `-- name:`.
-- Every value is a bound parameter. Each write is ONE statement (a data-modifying CTE,
-- atomic by itself): the ticket row and its audit entry (and, on submission, the outbox
-- rows and theirs) commit together in a single round trip. The document is stored without
-- its id; reads take the id from the column. The store prepares the hot statements once
-- per connection (`prepare_cached`).

-- name: submit
-- A submission, ONE statement: the ticket, its audit entry, and its owners' notifications
-- with theirs. $10: the owners' drafts (JSON array, `notify::Draft`); each is resolved
-- against the owner's registered channels here, in the same snapshot (registered e-mail or
-- SMS replaces the owner record's; a webhook only if registered), and its message is the
-- draft's parts joined with the new ticket id. Nothing is written (no row returned) when
-- the requester already used this key. Returns the ticket id and the webhooks written.
WITH t AS (
  INSERT INTO excavation_tickets
    (requester, idempotency_key, request_hash, state, version, created_at, updated_at, doc)
  VALUES ($1, $2, $3, $4, 1, $5, $5, $6)
  ON CONFLICT (requester, idempotency_key) DO NOTHING
  RETURNING id),
a AS (
  INSERT INTO audit_log (actor, role, action, target, detail)
  SELECT $7, $8, 'ticket_submit', 'excavation_tickets/' || t.id, $9 FROM t),
d AS (
  SELECT * FROM jsonb_to_recordset($10::jsonb)
    AS x(ord integer, owner_id bigint, email text, sms text, parts text[],
         due_at timestamptz)),
n AS (
  INSERT INTO notification_outbox (ticket_id, owner_id, channel, address, message, due_at,
    status, attempts, next_attempt_at, created_at, updated_at)
  SELECT t.id, d.owner_id, v.channel, v.address, array_to_string(d.parts, t.id::text),
    d.due_at, 'pending', 0, $5, $5, $5
  FROM t CROSS JOIN d
  LEFT JOIN owner_channels c ON c.owner_id = d.owner_id
  CROSS JOIN LATERAL (VALUES (1, 'email', COALESCE(c.email, d.email)),
                             (2, 'sms', COALESCE(c.sms, d.sms)),
                             (3, 'webhook', c.webhook_url)) AS v(k, channel, address)
  WHERE v.address IS NOT NULL
  ORDER BY d.ord, v.k
  RETURNING id, ticket_id, owner_id, channel, due_at),
na AS (
  INSERT INTO audit_log (actor, role, action, target, detail)
  SELECT $7, $8, 'notification_created', 'notification_outbox/' || n.id,
    jsonb_build_object('ticket_id', n.ticket_id, 'owner_id', n.owner_id,
      'channel', n.channel, 'due_at', n.due_at)
  FROM n)
SELECT t.id, (SELECT count(*) FROM n WHERE n.channel = 'webhook') FROM t

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

-- name: channels
-- Owner notifications (migration 0005). Columns of a notification, in the order
-- `pg_notification` reads them: id, ticket_id, owner_id, channel, address, message,
-- due_at, status, attempts, last_error, next_attempt_at, created_at, updated_at,
-- delivered_at.
SELECT owner_id, webhook_url, email, sms FROM owner_channels WHERE owner_id = ANY($1)

-- name: set_channels
-- $8: when (the service clock's time).
WITH c AS (
  INSERT INTO owner_channels (owner_id, webhook_url, email, sms, updated_at)
  VALUES ($1, $2, $3, $4, $8)
  ON CONFLICT (owner_id) DO UPDATE SET webhook_url = EXCLUDED.webhook_url,
    email = EXCLUDED.email, sms = EXCLUDED.sms, updated_at = EXCLUDED.updated_at
  RETURNING owner_id)
INSERT INTO audit_log (actor, role, action, target, detail)
SELECT $5, $6, 'owner_channels_set', 'owners/' || c.owner_id, $7 FROM c

-- name: enqueue
-- $1: a JSON array of new notifications. Rows already in the outbox (a retried submission)
-- are skipped; each new row gets its audit entry in the same statement.
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(ticket_id bigint, owner_id bigint, channel text, address text, message text,
         due_at timestamptz)),
n AS (
  INSERT INTO notification_outbox (ticket_id, owner_id, channel, address, message, due_at,
    status, attempts, next_attempt_at, created_at, updated_at)
  SELECT ticket_id, owner_id, channel, address, message, due_at, 'pending', 0, $2, $2, $2
  FROM input
  ON CONFLICT (ticket_id, owner_id, channel) DO NOTHING
  RETURNING *),
a AS (
  INSERT INTO audit_log (actor, role, action, target, detail)
  SELECT $3, $4, 'notification_created', 'notification_outbox/' || n.id,
    jsonb_build_object('ticket_id', n.ticket_id, 'owner_id', n.owner_id,
      'channel', n.channel, 'due_at', n.due_at)
  FROM n)
SELECT id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at
FROM n ORDER BY id

-- name: notifications
SELECT id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at
FROM notification_outbox
WHERE ($1::bigint IS NULL OR ticket_id = $1) AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR id = $3)
ORDER BY id LIMIT $4

-- name: claim
-- Due pending webhooks, reserved until $2 (the lease); SKIP LOCKED lets several instances'
-- workers share the outbox without sending a row twice.
UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = $2, updated_at = $1
WHERE id IN (
  SELECT id FROM notification_outbox
  WHERE status = 'pending' AND channel = 'webhook' AND next_attempt_at <= $1
  ORDER BY next_attempt_at, id LIMIT $3
  FOR UPDATE SKIP LOCKED)
RETURNING id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at

-- name: finish
-- Only a pending row changes; no row returned otherwise. $9: the audit action.
WITH u AS (
  UPDATE notification_outbox SET status = $2, last_error = $3,
    next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, updated_at = $6
  WHERE id = $1 AND status = 'pending'
  RETURNING *),
a AS (
  INSERT INTO audit_log (actor, role, action, target, detail)
  SELECT $7, $8, $9, 'notification_outbox/' || u.id, $10 FROM u)
SELECT id, ticket_id, owner_id, channel, address, message, due_at, status, attempts,
  last_error, next_attempt_at, created_at, updated_at, delivered_at
FROM u
