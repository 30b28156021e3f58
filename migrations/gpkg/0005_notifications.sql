-- Owner notifications of excavation tickets (issue 4): service bookkeeping like the audit
-- log, so not registered in gpkg_contents. See migrations/postgis/0005_notifications.sql.
CREATE TABLE owner_channels (
  owner_id INTEGER PRIMARY KEY,
  webhook_url TEXT,
  email TEXT,
  sms TEXT,
  updated_at DATETIME NOT NULL
);

CREATE TABLE notification_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES excavation_tickets (id) ON DELETE CASCADE,
  owner_id INTEGER NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
  address TEXT NOT NULL,
  message TEXT NOT NULL,
  due_at DATETIME NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_attempt_at DATETIME NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at DATETIME NOT NULL,
  delivered_at DATETIME,
  UNIQUE (ticket_id, owner_id, channel)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (status, channel, next_attempt_at);
CREATE INDEX notification_outbox_ticket_idx ON notification_outbox (ticket_id);
