-- Issue 15: a trace an operator publishes goes on the event stream like an alarm change,
-- through the same durable log, so every instance following the store sends it, and a
-- reconnecting client gets it in its replay. A trace event belongs to no alarm.
-- SQLite cannot alter a CHECK, so the table is rebuilt with its rows (ids kept, so
-- followers paging by id see no gap; AUTOINCREMENT's counter follows the copied ids).
CREATE TABLE risk_events_v9 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind = 'alarm' OR kind = 'trace'),
  alarm_id INTEGER CHECK ((kind = 'alarm') = (alarm_id IS NOT NULL)),
  payload TEXT NOT NULL,
  at INTEGER NOT NULL
);
INSERT INTO risk_events_v9 (id, kind, alarm_id, payload, at)
  SELECT id, kind, alarm_id, payload, at FROM risk_events;
DROP TABLE risk_events;
ALTER TABLE risk_events_v9 RENAME TO risk_events;
