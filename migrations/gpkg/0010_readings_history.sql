-- 0010_readings_history: the readings history (issue 16) in the GeoPackage. No partitions
-- here: retention deletes raw rows older than the horizon in batches
-- (`RiskStore::maintain_readings`). The rollups are the same as on PostGIS:
-- readings_hourly / readings_daily hold, per sensor and hour / UTC day (bucket = its start
-- in Unix milliseconds), the count, sum, min and max of the readings that are not of bad
-- quality, kept up to date inside each ingest batch's transaction from the rows that were
-- actually new, and backfilled here from the rows already stored. They outlive retention.

CREATE TABLE readings_hourly (
  sensor_id INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  n INTEGER NOT NULL,
  sum REAL NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  PRIMARY KEY (sensor_id, bucket)
) WITHOUT ROWID;

CREATE TABLE readings_daily (
  sensor_id INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  n INTEGER NOT NULL,
  sum REAL NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  PRIMARY KEY (sensor_id, bucket)
) WITHOUT ROWID;

INSERT INTO readings_hourly (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, t - (((t % 3600000) + 3600000) % 3600000), count(*), sum(value), min(value),
       max(value)
FROM readings WHERE quality <> 'bad'
GROUP BY 1, 2;

INSERT INTO readings_daily (sensor_id, bucket, n, sum, min, max)
SELECT sensor_id, t - (((t % 86400000) + 86400000) % 86400000), count(*), sum(value),
       min(value), max(value)
FROM readings WHERE quality <> 'bad'
GROUP BY 1, 2;
