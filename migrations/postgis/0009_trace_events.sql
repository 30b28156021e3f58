-- Issue 15: a trace an operator publishes goes on the event stream like an alarm change,
-- through the same durable log, so every instance following the store sends it, and a
-- reconnecting client gets it in its replay. A trace event belongs to no alarm.
ALTER TABLE risk_events DROP CONSTRAINT risk_events_kind_check;
ALTER TABLE risk_events ADD CONSTRAINT risk_events_kind_check CHECK (kind IN ('alarm', 'trace'));
ALTER TABLE risk_events ALTER COLUMN alarm_id DROP NOT NULL;
ALTER TABLE risk_events ADD CONSTRAINT risk_events_alarm_id_check
  CHECK ((kind = 'alarm') = (alarm_id IS NOT NULL));
