-- 0001_layout (issue 16): where each table of Lifeline lives on a Citus cluster. Applied by
-- `lifeline migrate` after the ordinary migrations when the coordinator has the `citus`
-- extension, one statement at a time (Citus refuses distributed DDL sent as several
-- commands in one query string), recorded in `citus_layout`. docs/scale-out.md explains
-- and measures the choices; in short:
--
-- * Reference tables (a full copy on every node, written with two-phase commit): the
--   spatial layers and what they refer to. The whole city's network fits one server (the
--   service holds it in memory anyway), writes to it are rare, and every node then joins
--   readings with sensors, or pushes an OGC query down, without moving rows. Their foreign
--   keys, identity columns and triggers keep working, unlike on tables distributed by
--   district, where every foreign key would have to carry the district code.
-- * Distributed by `sensor_id`, co-located: the readings (the only table that outgrows
--   one server) and the alarms, so one sensor's readings and alarms share a shard. Unique
--   keys include the distribution column: `alarms`' primary key becomes
--   (sensor_id, id); `alarms_one_open` was (sensor_id, rule) already.
-- * Left on the coordinator as plain tables: the change log and the risk-event log (their
--   contract is one total order, appended under an advisory lock, with LISTEN/NOTIFY
--   through the coordinator), the audit log, tickets and their notification outbox (the
--   one-statement submission and the `SKIP LOCKED` lease need one node; thousands of rows
--   a day), import jobs and the migration bookkeeping.
--
-- The touch triggers of the spatial layers only set NEW.updated_at, so they are safe to
-- run on shards.
SET LOCAL citus.enable_unsafe_triggers = on;
SET LOCAL citus.multi_shard_modify_mode = 'sequential';

SELECT create_reference_table('owners');
SELECT create_reference_table('grid_cells');
SELECT create_reference_table('nodes');
SELECT create_reference_table('pipelines');
SELECT create_reference_table('risk_points');
SELECT create_reference_table('sensors');
SELECT create_reference_table('api_keys');
SELECT create_reference_table('owner_channels');

-- `readings` is partitioned by day (migration 0010): distributing the parent distributes
-- every partition, and each partition made later (`lifeline_readings_partitions`) is
-- distributed as it is attached. The rollups live beside their readings.
SELECT create_distributed_table('readings', 'sensor_id');
-- The BRIN index on `t` goes: daily partitions already prune time ranges, and Citus' move
-- of an old partition to columnar cannot drop an index that belongs to a partitioned one
-- (the primary key, a constraint, it re-creates).
DROP INDEX readings_t_brin;
SELECT create_distributed_table('readings_hourly', 'sensor_id', colocate_with => 'readings');
SELECT create_distributed_table('readings_daily', 'sensor_id', colocate_with => 'readings');

ALTER TABLE alarms DROP CONSTRAINT alarms_pkey;
ALTER TABLE alarms ADD CONSTRAINT alarms_pkey PRIMARY KEY (sensor_id, id);
SELECT create_distributed_table('alarms', 'sensor_id', colocate_with => 'readings');
