-- Statements of the risk store on PostGIS (readings/postgis.rs), one per `-- name:`
-- section, bound parameters only. Alarm rows are always read with the column list of
-- `alarm_cols` (kept in step with `pg_alarm`).

-- name: insert_readings
INSERT INTO readings (sensor_id, t, value, quality)
SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::text[])
ON CONFLICT DO NOTHING
RETURNING sensor_id, t

-- name: readings_raw
SELECT t, value, quality FROM readings
WHERE sensor_id = $1 AND t >= $2 AND t < $3 ORDER BY t LIMIT $4

-- name: readings_buckets
SELECT to_timestamp(floor(extract(epoch FROM t)::float8 / $4::float8) * $4::float8) AS b,
       min(value), avg(value), max(value), count(*)
FROM readings
WHERE sensor_id = $1 AND t >= $2 AND t < $3 AND quality <> 'bad'
GROUP BY 1 ORDER BY 1

-- name: last_reading
SELECT t, value, quality FROM readings WHERE sensor_id = $1 ORDER BY t DESC LIMIT 1

-- name: alarm_lock
SELECT pg_advisory_xact_lock($1)

-- name: alarm_open_for
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE sensor_id = $1 AND rule = $2 AND status NOT IN ('closed', 'false_alarm')

-- name: alarm_get
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE id = $1

-- name: alarm_insert
INSERT INTO alarms (sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
                    detected_at, updated_at, cleared_at, lon, lat, history)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING id

-- name: alarm_update
UPDATE alarms SET severity = $2, status = $3, value = $4, updated_at = $5, cleared_at = $6,
                  history = $7
WHERE id = $1

-- name: alarm_list
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms
WHERE (cardinality($1::text[]) = 0 OR status = ANY($1))
  AND ($2::float8 IS NULL OR (lon >= $2 AND lat >= $3 AND lon <= $4 AND lat <= $5))
  AND ($6::bigint IS NULL OR sensor_id = $6)
ORDER BY id DESC LIMIT $7

-- name: alarms_open
SELECT id, sensor_id, sensor_kind, risk_point_id, rule, severity, status, value,
       detected_at, updated_at, cleared_at, lon, lat, history
FROM alarms WHERE status NOT IN ('closed', 'false_alarm') ORDER BY id

-- name: event_insert
INSERT INTO risk_events (kind, alarm_id, payload) VALUES ('alarm', $1, $2) RETURNING id

-- name: trace_event_insert
INSERT INTO risk_events (kind, alarm_id, payload, at) VALUES ('trace', NULL, $1, $2) RETURNING id

-- name: events_since
SELECT id, kind, payload FROM risk_events WHERE id > $1 ORDER BY id LIMIT $2

-- name: event_latest
SELECT coalesce(max(id), 0) FROM risk_events

-- name: change_latest
SELECT coalesce(max(version), 0) FROM change_log

-- name: audit_insert
INSERT INTO audit_log (actor, role, action, target, detail) VALUES ($1, $2, $3, $4, $5)
