-- Excavation tickets (issue 4): service bookkeeping like the audit log, so not registered
-- in gpkg_contents. See migrations/postgis/0002_excavation.sql for the design.
CREATE TABLE excavation_tickets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  requester TEXT NOT NULL,
  idempotency_key TEXT,
  request_hash TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('submitted', 'owners_notified', 'cleared',
    'in_progress', 'closed', 'expired', 'cancelled', 'emergency')),
  version INTEGER NOT NULL DEFAULT 1,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  doc TEXT NOT NULL,
  UNIQUE (requester, idempotency_key)
);
CREATE INDEX excavation_tickets_requester_idx ON excavation_tickets (requester, id DESC);
CREATE INDEX excavation_tickets_state_idx ON excavation_tickets (state);
