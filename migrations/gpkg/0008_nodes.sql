-- 0008_nodes (issue 15): the networks' nodes (junctions, valves, sources, customer
-- connections) as a feature table with its R*Tree index, registered like the others, and
-- each pipe's end nodes, the topology that network traces walk. A pipe names its nodes (a
-- foreign key); a valve's optional `on_pipe_id` is not one, since the two would make a
-- cycle: `lifeline check` reports a valve whose pipe does not end at it.

CREATE TABLE nodes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  geometry POINT NOT NULL,
  kind TEXT NOT NULL
    CHECK (kind = 'water_supply' OR kind = 'drainage' OR kind = 'gas' OR kind = 'oil_gas' OR
           kind = 'power' OR kind = 'telecom' OR kind = 'broadcast_tv' OR
           kind = 'street_lighting' OR kind = 'traffic_signal' OR kind = 'heat'),
  node_type TEXT NOT NULL
    CHECK (node_type = 'junction' OR node_type = 'valve' OR node_type = 'source' OR
           node_type = 'customer'),
  code TEXT,
  name TEXT,
  source_kind TEXT
    CHECK (source_kind = 'water_plant' OR source_kind = 'reservoir' OR source_kind = 'tank' OR
           source_kind = 'gate_station' OR source_kind = 'regulator' OR
           source_kind = 'substation' OR source_kind = 'transformer' OR
           source_kind = 'heat_plant' OR source_kind = 'circulation_pump'),
  valve_position TEXT CHECK (valve_position = 'open' OR valve_position = 'closed'),
  valve_condition TEXT
    CHECK (valve_condition = 'operable' OR valve_condition = 'broken' OR
           valve_condition = 'inaccessible'),
  on_pipe_id INTEGER,
  customers INTEGER,
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX nodes_kind_node_type ON nodes(kind, node_type);

ALTER TABLE pipelines ADD COLUMN from_node INTEGER REFERENCES nodes(id);
ALTER TABLE pipelines ADD COLUMN to_node INTEGER REFERENCES nodes(id);
CREATE INDEX pipelines_from_node ON pipelines(from_node);
CREATE INDEX pipelines_to_node ON pipelines(to_node);

INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES
  ('nodes', 'features', 'nodes', 'Network nodes: junctions, valves, sources, customer connections', 4490);
INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, srs_id, z, m) VALUES
  ('nodes', 'geometry', 'POINT', 4490, 0, 0);
INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) VALUES
  ('nodes', 'geometry', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only');

-- nodes.geometry: the R*Tree and its triggers exactly as GeoPackage 1.3 F.3 gives them.
CREATE VIRTUAL TABLE rtree_nodes_geometry USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER rtree_nodes_geometry_insert AFTER INSERT ON nodes
  WHEN (new.geometry NOT NULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_nodes_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_nodes_geometry_update1 AFTER UPDATE OF geometry ON nodes
  WHEN OLD.id = NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_nodes_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_nodes_geometry_update2 AFTER UPDATE OF geometry ON nodes
  WHEN OLD.id = NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_nodes_geometry WHERE id = OLD.id;
END;

CREATE TRIGGER rtree_nodes_geometry_update3 AFTER UPDATE ON nodes
  WHEN OLD.id != NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_nodes_geometry WHERE id = OLD.id;
  INSERT OR REPLACE INTO rtree_nodes_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_nodes_geometry_update4 AFTER UPDATE ON nodes
  WHEN OLD.id != NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_nodes_geometry WHERE id IN (OLD.id, NEW.id);
END;

CREATE TRIGGER rtree_nodes_geometry_delete AFTER DELETE ON nodes
  WHEN old.geometry NOT NULL
BEGIN
  DELETE FROM rtree_nodes_geometry WHERE id = OLD.id;
END;

-- change_log accepts the new layer. SQLite cannot alter a CHECK, so the table is rebuilt
-- with its rows (versions kept, so followers paging by version see no gap).
CREATE TABLE change_log_v8 (
  version INTEGER PRIMARY KEY AUTOINCREMENT,
  layer TEXT NOT NULL
    CHECK (layer = 'pipelines' OR layer = 'risk_points' OR layer = 'grid_cells' OR
           layer = 'sensors' OR layer = 'nodes' OR layer = 'owners'),
  record_id INTEGER NOT NULL,
  op TEXT NOT NULL CHECK (op = 'insert' OR op = 'update' OR op = 'delete' OR op = 'bulk'),
  actor TEXT NOT NULL,
  at DATETIME NOT NULL
);
INSERT INTO change_log_v8 (version, layer, record_id, op, actor, at)
  SELECT version, layer, record_id, op, actor, at FROM change_log;
DROP TABLE change_log;
ALTER TABLE change_log_v8 RENAME TO change_log;
