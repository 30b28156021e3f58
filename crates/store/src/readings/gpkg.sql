-- Statements of the risk store on the GeoPackage (readings/gpkg.rs), one per
-- `-- name:` section. Times are Unix milliseconds; alarm rows are read with the column list
-- `gp_alarm` expects.

-- name: insert_reading
INSERT OR IGNORE INTO readings (sensor_id, t, value, quality) VALUES (?1, ?2, ?3, ?4)

-- The rollups of a batch's new rows, added up per (sensor, hour) and (sensor, day) first.
-- name: rollup_hourly_add
INSERT INTO readings_hourly (sensor_id, bucket, n, sum, min, max) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (sensor_id, bucket) DO UPDATE
SET n = n + excluded.n, sum = sum + excluded.sum, min = min(min, excluded.min),
    max = max(max, excluded.max)

-- name: rollup_daily_add
INSERT INTO readings_daily (sensor_id, bucket, n, sum, min, max) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (sensor_id, bucket) DO UPDATE
SET n = n + excluded.n, sum = sum + excluded.sum, min = min(min, excluded.min),
    max = max(max, excluded.max)

-- Buckets of ?4 ms re-aggregated from a rollup (aligned by the caller).
-- name: readings_rollup_hourly
SELECT (bucket / ?4) * ?4 AS b, min(min), sum(sum) / sum(n), max(max), sum(n)
FROM readings_hourly
WHERE sensor_id = ?1 AND bucket >= ?2 AND bucket < ?3
GROUP BY b ORDER BY b

-- name: readings_rollup_daily
SELECT (bucket / ?4) * ?4 AS b, min(min), sum(sum) / sum(n), max(max), sum(n)
FROM readings_daily
WHERE sensor_id = ?1 AND bucket >= ?2 AND bucket < ?3
GROUP BY b ORDER BY b

-- Retention without partitions: walk the sensors along the primary key and delete each
-- one's expired rows by key range (no index on t alone, no full scans per batch).
-- name: readings_next_sensor
SELECT sensor_id FROM readings WHERE sensor_id > ?1 ORDER BY sensor_id LIMIT 1

-- name: readings_expire_sensor
DELETE FROM readings WHERE sensor_id = ?1 AND t < ?2

-- name: readings_raw
SELECT t, value, quality FROM readings
WHERE sensor_id = ?1 AND t >= ?2 AND t < ?3 ORDER BY t LIMIT ?4

-- name: readings_buckets
SELECT (t / ?4) * ?4 AS b, min(value), avg(value), max(value), count(*)
FROM readings
WHERE sensor_id = ?1 AND t >= ?2 AND t < ?3 AND quality <> 'bad'
GROUP BY b ORDER BY b

-- name: last_reading
SELECT t, value, quality FROM readings WHERE sensor_id = ?1 ORDER BY t DESC LIMIT 1

-- name: alarm_open_for
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE sensor_id = ?1 AND rule = ?2 AND status <> 'closed' AND status <> 'false_alarm'

-- name: alarm_get
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE id = ?1

-- name: alarm_insert
INSERT INTO alarms (sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
                    detected_at, updated_at, cleared_at, lon, lat, history)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)

-- name: alarm_update
UPDATE alarms SET severity = ?2, status = ?3, value = ?4, updated_at = ?5, cleared_at = ?6,
                  history = ?7
WHERE id = ?1

-- name: alarms_open
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE status <> 'closed' AND status <> 'false_alarm' ORDER BY id

-- name: alarm_list
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms
WHERE (?1 = '' OR instr(?1, ',' || status || ',') > 0)
  AND (?2 IS NULL OR (lon >= ?2 AND lat >= ?3 AND lon <= ?4 AND lat <= ?5))
  AND (?6 IS NULL OR sensor_id = ?6)
ORDER BY id DESC LIMIT ?7

-- name: event_insert
INSERT INTO risk_events (kind, alarm_id, payload, at) VALUES ('alarm', ?1, ?2, ?3)

-- name: trace_event_insert
INSERT INTO risk_events (kind, alarm_id, payload, at) VALUES ('trace', NULL, ?1, ?2)

-- name: events_since
SELECT id, kind, payload FROM risk_events WHERE id > ?1 ORDER BY id LIMIT ?2

-- name: event_latest
SELECT coalesce(max(id), 0) FROM risk_events

-- name: change_latest
SELECT coalesce(max(version), 0) FROM change_log

-- name: audit_insert
INSERT INTO audit_log (at, actor, role, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
