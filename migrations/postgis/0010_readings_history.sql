-- 0010_readings_history: the readings history at city scale (issue 16) on plain PostGIS.
--
-- * readings becomes `PARTITION BY RANGE (t)` with one partition per UTC day, named as
--   Citus' `create_time_partitions` names them for a one-day interval
--   (`readings_p2026_12_07`), so both engines look alike. Retention drops whole partitions
--   (`DROP TABLE`), never a bulk DELETE. The primary key and constraints keep their names;
--   the key (sensor_id, t) holds the partition column, as PostgreSQL requires.
-- * readings_hourly / readings_daily: per sensor and hour / UTC day, the count, sum, min
--   and max of the readings that are not of bad quality, kept up to date by the ingest
--   statement itself (`insert_readings` in crates/store/src/readings/postgis.sql) from the
--   rows that were actually new. The key starts with sensor_id so Citus can co-locate them
--   with readings. They are not partitioned and outlive raw retention.
-- * lifeline_readings_partitions(from, to): creates the missing daily partitions covering
--   [from, to); lifeline_readings_drop_partitions(horizon): drops those ending at or before
--   the horizon. Both return the names they touched. Called by `RiskStore::maintain_readings`.
--
-- Existing rows are kept: the old table is renamed, the partitioned one created under the
-- old names, partitions made for the old rows' days, the rows moved and the rollups
-- backfilled, then the old table dropped — all inside the migration's transaction.

ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_pkey TO readings_unpartitioned_pkey;
ALTER TABLE readings_unpartitioned
  RENAME CONSTRAINT readings_quality_check TO readings_unpartitioned_quality_check;
ALTER INDEX readings_t_brin RENAME TO readings_unpartitioned_t_brin;

CREATE TABLE readings (
  sensor_id bigint NOT NULL,
  t timestamptz NOT NULL,
  value double precision NOT NULL,
  quality text NOT NULL
    CONSTRAINT readings_quality_check CHECK (quality IN ('good', 'uncertain', 'bad')),
  CONSTRAINT readings_pkey PRIMARY KEY (sensor_id, t)
) PARTITION BY RANGE (t);
CREATE INDEX readings_t_brin ON readings USING brin (t);

CREATE TABLE readings_hourly (
  sensor_id bigint NOT NULL,
  bucket timestamptz NOT NULL,
  n bigint NOT NULL,
  sum double precision NOT NULL,
  min double precision NOT NULL,
  max double precision NOT NULL,
  CONSTRAINT readings_hourly_pkey PRIMARY KEY (sensor_id, bucket)
);

CREATE TABLE readings_daily (
  sensor_id bigint NOT NULL,
  bucket timestamptz NOT NULL,
  n bigint NOT NULL,
  sum double precision NOT NULL,
  min double precision NOT NULL,
  max double precision NOT NULL,
  CONSTRAINT readings_daily_pkey PRIMARY KEY (sensor_id, bucket)
);

-- The missing daily partitions of readings covering [from_t, to_t), oldest first. Serialised
-- by an advisory lock ("LIFERP"), so two instances (or an ingest creating a partition on
-- demand and the hourly maintenance) never race to create the same one. Days are UTC and
-- 24 h whatever the session's time zone.
CREATE FUNCTION lifeline_readings_partitions(from_t timestamptz, to_t timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  d timestamptz := date_trunc('day', from_t, 'UTC');
  part text;
BEGIN
  IF from_t IS NULL OR to_t IS NULL THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(x'4c49464552500001'::bigint);
  WHILE d < to_t LOOP
    part := 'readings_p' || to_char(d AT TIME ZONE 'UTC', 'YYYY_MM_DD');
    IF to_regclass(quote_ident(part)) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                     part, d, d + interval '24 hours');
      RETURN NEXT part;
    END IF;
    d := d + interval '24 hours';
  END LOOP;
END
$$;

-- Drops the daily partitions of readings (named `readings_pYYYY_MM_DD`) that end at or
-- before `horizon`, oldest first; returns their names.
CREATE FUNCTION lifeline_readings_drop_partitions(horizon timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  part text;
BEGIN
  PERFORM pg_advisory_xact_lock(x'4c49464552500001'::bigint);
  FOR part IN
    SELECT c.relname::text
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'readings'::regclass
      AND c.relname ~ '^readings_p[0-9]{4}_[0-9]{2}_[0-9]{2}$'
      AND to_date(substr(c.relname, 11), 'YYYY_MM_DD')::timestamp AT TIME ZONE 'UTC'
          + interval '24 hours' <= horizon
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I', part);
    RETURN NEXT part;
  END LOOP;
END
$$;

SELECT lifeline_readings_partitions(lo, hi + interval '1 millisecond')
FROM (SELECT min(t) AS lo, max(t) AS hi FROM readings_unpartitioned) AS span;

INSERT INTO readings (sensor_id, t, value, quality)
SELECT sensor_id, t, value, quality FROM readings_unpartitioned;

INSERT INTO readings_hourly (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, date_trunc('hour', t, 'UTC'), count(*), sum(value), min(value), max(value)
FROM readings WHERE quality <> 'bad'
GROUP BY 1, 2;

INSERT INTO readings_daily (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, date_trunc('day', t, 'UTC'), count(*), sum(value), min(value), max(value)
FROM readings WHERE quality <> 'bad'
GROUP BY 1, 2;

DROP TABLE readings_unpartitioned;
