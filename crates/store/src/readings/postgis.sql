-- Statements of the risk store on PostGIS (readings/postgis.rs), one per `-- name:`
-- section, bound parameters only. Alarm rows are always read with the column list of
-- `alarm_cols` (kept in step with `pg_alarm`).

-- One round trip per batch: the readings go in (the key (sensor_id, t) refuses repeats),
-- and only the rows that were new (`RETURNING` of `ON CONFLICT DO NOTHING`) are added to
-- the hourly and daily rollups, bad quality left out. The rollup rows are upserted in key
-- order, so two concurrent batches lock them in the same order.
-- name: insert_readings
WITH ins AS (
  INSERT INTO readings (sensor_id, t, value, quality)
  SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::text[])
  ON CONFLICT DO NOTHING
  RETURNING sensor_id, t, value, quality
), hourly AS (
  INSERT INTO readings_hourly AS r (sensor_id, bucket, n, sum, min, max)
  SELECT sensor_id, date_trunc('hour', t, 'UTC'), count(*), sum(value), min(value), max(value)
  FROM ins WHERE quality <> 'bad'
  GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET n = r.n + excluded.n, sum = r.sum + excluded.sum,
      min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
), daily AS (
  INSERT INTO readings_daily AS r (sensor_id, bucket, n, sum, min, max)
  SELECT sensor_id, date_trunc('day', t, 'UTC'), count(*), sum(value), min(value), max(value)
  FROM ins WHERE quality <> 'bad'
  GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (sensor_id, bucket) DO UPDATE
  SET n = r.n + excluded.n, sum = r.sum + excluded.sum,
      min = least(r.min, excluded.min), max = greatest(r.max, excluded.max)
)
SELECT sensor_id, t FROM ins

-- Buckets of `$4` seconds re-aggregated from the rollups (the caller checked that `$4` is a
-- multiple of the rollup's width and `$2`, `$3` sit on its boundaries).
-- name: readings_rollup_hourly
SELECT to_timestamp(floor(extract(epoch FROM bucket)::float8 / $4::float8) * $4::float8) AS b,
       min(min), sum(sum) / sum(n)::float8, max(max), sum(n)::bigint
FROM readings_hourly
WHERE sensor_id = $1 AND bucket >= $2 AND bucket < $3
GROUP BY 1 ORDER BY 1

-- name: readings_rollup_daily
SELECT to_timestamp(floor(extract(epoch FROM bucket)::float8 / $4::float8) * $4::float8) AS b,
       min(min), sum(sum) / sum(n)::float8, max(max), sum(n)::bigint
FROM readings_daily
WHERE sensor_id = $1 AND bucket >= $2 AND bucket < $3
GROUP BY 1 ORDER BY 1

-- History maintenance (`maintain_readings`). The three statements below are what differs by
-- engine: on Citus they become `create_time_partitions`, `drop_old_time_partitions` and
-- `alter_old_partitions_set_access_method`; each returns the names of the partitions it
-- touched.
-- Daily partitions covering [$1, $2) that are missing (names `readings_pYYYY_MM_DD`).
-- name: readings_create_partitions
SELECT lifeline_readings_partitions($1, $2)

-- Partitions ending at or before the retention horizon $1, dropped whole.
-- name: readings_drop_partitions
SELECT lifeline_readings_drop_partitions($1)

-- Partitions older than $1 moved to the columnar access method: plain PostgreSQL has none,
-- so no rows (Citus: `alter_old_partitions_set_access_method('readings', $1, 'columnar')`).
-- name: readings_columnar_partitions
SELECT NULL::text WHERE $1::timestamptz IS NULL AND false

-- Citus only: the heap partitions of readings that end at or before $1 (what
-- `readings_to_columnar_citus` is about to convert).
-- name: readings_heap_partitions_before
SELECT partition::text FROM time_partitions
WHERE parent_table = 'readings'::regclass AND access_method <> 'columnar' AND to_value::timestamptz <= $1
ORDER BY 1

-- Citus only: moves the partitions of readings that end at or before $1 to columnar.
-- name: readings_to_columnar_citus
CALL alter_old_partitions_set_access_method('readings', $1, 'columnar')

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
