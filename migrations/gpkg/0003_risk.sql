-- 0003_risk: the risk one map (issue 5) in the GeoPackage — sensor readings (a plain
-- table, times as Unix milliseconds), alarms and the risk-event log. Internal tables, not
-- registered in gpkg_contents (they are not features for GIS users).
-- At most one open alarm per (sensor, rule): the partial unique index.

CREATE TABLE readings (
  sensor_id INTEGER NOT NULL,
  t INTEGER NOT NULL,
  value REAL NOT NULL,
  quality TEXT NOT NULL CHECK (quality = 'good' OR quality = 'uncertain' OR quality = 'bad'),
  PRIMARY KEY (sensor_id, t)
) WITHOUT ROWID;

CREATE TABLE alarms (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sensor_id INTEGER NOT NULL,
  sensor_kind TEXT NOT NULL,
  risk_point_id INTEGER,
  rule TEXT NOT NULL CHECK (rule = 'threshold' OR rule = 'rate_of_rise' OR rule = 'offline'),
  severity TEXT NOT NULL CHECK (severity = 'notice' OR severity = 'alarm' OR severity = 'emergency'),
  status TEXT NOT NULL CHECK (status = 'detected' OR status = 'verified' OR status = 'dispatched'
    OR status = 'handled' OR status = 'closed' OR status = 'false_alarm'),
  value REAL,
  detected_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  cleared_at INTEGER,
  lon REAL NOT NULL,
  lat REAL NOT NULL,
  history TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX alarms_one_open ON alarms (sensor_id, rule)
  WHERE status <> 'closed' AND status <> 'false_alarm';
CREATE INDEX alarms_status_idx ON alarms (status);

CREATE TABLE risk_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind = 'alarm'),
  alarm_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  at INTEGER NOT NULL
);
