-- 0001_init: the GeoPackage 1.3 core (header pragmas, spatial reference systems, contents,
-- geometry columns, extensions), CGCS2000 (EPSG:4490), the four feature tables with their
-- R*Tree spatial indexes (the "gpkg_rtree_index" extension, triggers exactly as the
-- specification gives them), the owners attribute table, and the service's internal tables.
--
-- Applied by `GpkgStore::migrate` inside one transaction. The rtree triggers call
-- ST_IsEmpty / ST_MinX / ST_MaxX / ST_MinY / ST_MaxY, which every GeoPackage-aware writer
-- (GDAL, QGIS, and `GpkgStore` itself) registers on its connections.
--
-- Internal tables (change_log, audit_log, api_keys, schema_migrations) are deliberately NOT
-- registered in gpkg_contents: they are the service's bookkeeping, not data for GIS users.
-- GDAL lists unregistered tables only as plain attribute layers (LIST_ALL_TABLES=AUTO);
-- nothing about them breaks GeoPackage conformance.

PRAGMA application_id = 1196444487; -- 0x47504B47, 'GPKG'
PRAGMA user_version = 10300;        -- GeoPackage 1.3.0

-- GeoPackage core ---------------------------------------------------------------------------
-- IF NOT EXISTS / OR IGNORE so that an empty GeoPackage made by another tool can be adopted.

CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition TEXT NOT NULL,
  description TEXT
);

INSERT OR IGNORE INTO gpkg_spatial_ref_sys
  (srs_name, srs_id, organization, organization_coordsys_id, definition, description)
VALUES
  ('Undefined Cartesian SRS', -1, 'NONE', -1, 'undefined',
   'undefined Cartesian coordinate reference system'),
  ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined',
   'undefined geographic coordinate reference system'),
  ('WGS 84 geodetic', 4326, 'EPSG', 4326,
   'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]',
   'longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid'),
  ('China Geodetic Coordinate System 2000', 4490, 'EPSG', 4490,
   'GEOGCS["China Geodetic Coordinate System 2000",DATUM["China_2000",SPHEROID["CGCS2000",6378137,298.257222101,AUTHORITY["EPSG","1024"]],AUTHORITY["EPSG","1043"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4490"]]',
   'CGCS2000 longitude/latitude, the canonical CRS of Lifeline');

CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE,
  min_y DOUBLE,
  max_x DOUBLE,
  max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);

CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);

CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
);

-- Data tables ---------------------------------------------------------------------------------
-- `id` is the GeoPackage feature id and the model's id. AUTOINCREMENT so that an id, once
-- used, is never handed out again: the change log and clients refer to records by id.
-- Every enum column's CHECK lists exactly the strings of its `string_enum!` vocabulary
-- (a unit test in src/store/gpkg.rs writes every value through the store). The CHECKs are
-- chains of `=` joined by OR, not `col IN (...)`: SQLite builds a temporary b-tree for each
-- IN list on every execution of a statement, which made bulk writes of pipelines (six such
-- columns) more than ten times slower.
-- Dates are GeoPackage DATE ('YYYY-MM-DD'); timestamps DATETIME ('YYYY-MM-DDTHH:MM:SS.SSSZ').

CREATE TABLE owners (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  emergency_contact TEXT NOT NULL,
  emergency_phone TEXT NOT NULL,
  email TEXT,
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);

CREATE TABLE grid_cells (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  geometry MULTIPOLYGON NOT NULL,
  level TEXT NOT NULL
    CHECK (level = 'district' OR level = 'street' OR level = 'community' OR level = 'grid' OR
           level = 'micro_grid'),
  parent_id INTEGER,
  name TEXT NOT NULL,
  code TEXT NOT NULL,
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  CONSTRAINT fk_grid_cells_parent FOREIGN KEY (parent_id) REFERENCES grid_cells(id)
);
-- Foreign-key children are indexed: deleting a parent must not scan the child table.
CREATE INDEX grid_cells_parent_id ON grid_cells(parent_id);

CREATE TABLE pipelines (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  geometry LINESTRING NOT NULL,
  kind TEXT NOT NULL
    CHECK (kind = 'water_supply' OR kind = 'drainage' OR kind = 'gas' OR kind = 'oil_gas' OR
           kind = 'power' OR kind = 'telecom' OR kind = 'broadcast_tv' OR
           kind = 'street_lighting' OR kind = 'traffic_signal' OR kind = 'heat'),
  sub_kind TEXT CHECK (sub_kind = 'storm' OR sub_kind = 'sewage' OR sub_kind = 'combined'),
  pressure_class TEXT
    CHECK (pressure_class = 'low' OR pressure_class = 'medium_b' OR
           pressure_class = 'medium_a' OR pressure_class = 'sub_high_b' OR
           pressure_class = 'sub_high_a' OR pressure_class = 'high_b' OR
           pressure_class = 'high_a'),
  voltage_kv DOUBLE,
  material TEXT,
  diameter_mm DOUBLE,
  section_width_mm DOUBLE,
  section_height_mm DOUBLE,
  depth_start_m DOUBLE,
  depth_end_m DOUBLE,
  invert_start_m DOUBLE,
  invert_end_m DOUBLE,
  burial TEXT CHECK (burial = 'direct' OR burial = 'duct' OR burial = 'tunnel'),
  owner_id INTEGER NOT NULL,
  year_built INTEGER,
  survey_date DATE,
  plan_accuracy_cm DOUBLE,
  depth_accuracy_cm DOUBLE,
  quality_level TEXT
    CHECK (quality_level = 'QL-A' OR quality_level = 'QL-B' OR quality_level = 'QL-C' OR
           quality_level = 'QL-D'),
  status TEXT NOT NULL
    CHECK (status = 'in_service' OR status = 'planned' OR status = 'under_construction' OR
           status = 'abandoned' OR status = 'removed'),
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  CONSTRAINT fk_pipelines_owner FOREIGN KEY (owner_id) REFERENCES owners(id)
);
CREATE INDEX pipelines_owner_id ON pipelines(owner_id);

CREATE TABLE risk_points (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  geometry GEOMETRY NOT NULL,
  category TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level = 'low' OR level = 'general' OR level = 'large' OR
                             level = 'major'),
  name TEXT NOT NULL,
  grid_cell_id INTEGER,
  responsible_unit TEXT NOT NULL,
  responsible_person TEXT NOT NULL,
  responsible_phone TEXT,
  emergency_plan TEXT,
  last_review DATE,
  next_review DATE,
  status TEXT NOT NULL CHECK (status = 'active' OR status = 'mitigated' OR status = 'closed'),
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  CONSTRAINT fk_risk_points_grid_cell FOREIGN KEY (grid_cell_id) REFERENCES grid_cells(id)
);
CREATE INDEX risk_points_grid_cell_id ON risk_points(grid_cell_id);

CREATE TABLE sensors (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  location POINT NOT NULL,
  kind TEXT NOT NULL
    CHECK (kind = 'gas_lel' OR kind = 'pressure' OR kind = 'flow' OR kind = 'level' OR
           kind = 'displacement' OR kind = 'crack' OR kind = 'strain' OR
           kind = 'vibration' OR kind = 'temperature' OR kind = 'video'),
  code TEXT,
  pipeline_id INTEGER,
  risk_point_id INTEGER,
  status TEXT NOT NULL CHECK (status = 'online' OR status = 'offline' OR status = 'fault' OR
                              status = 'maintenance'),
  installed DATE,
  updated_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  CONSTRAINT fk_sensors_pipeline FOREIGN KEY (pipeline_id) REFERENCES pipelines(id),
  CONSTRAINT fk_sensors_risk_point FOREIGN KEY (risk_point_id) REFERENCES risk_points(id)
);
CREATE INDEX sensors_pipeline_id ON sensors(pipeline_id);
CREATE INDEX sensors_risk_point_id ON sensors(risk_point_id);

-- Registration ---------------------------------------------------------------------------------

INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES
  ('pipelines', 'features', 'pipelines', 'Underground pipeline segments', 4490),
  ('risk_points', 'features', 'risk_points', 'Registered risk points (point or area)', 4490),
  ('grid_cells', 'features', 'grid_cells', 'Grid-governance cells, district to micro-grid', 4490),
  ('sensors', 'features', 'sensors', 'Sensing devices', 4490),
  ('owners', 'attributes', 'owners', 'Pipeline owners and operators', NULL);

INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, srs_id, z, m) VALUES
  ('pipelines', 'geometry', 'LINESTRING', 4490, 0, 0),
  ('risk_points', 'geometry', 'GEOMETRY', 4490, 0, 0),
  ('grid_cells', 'geometry', 'MULTIPOLYGON', 4490, 0, 0),
  ('sensors', 'location', 'POINT', 4490, 0, 0);

INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) VALUES
  ('pipelines', 'geometry', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only'),
  ('risk_points', 'geometry', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only'),
  ('grid_cells', 'geometry', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only'),
  ('sensors', 'location', 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only');

-- R*Tree spatial indexes (GeoPackage 1.3, extension F.3 "RTree Spatial Indexes") --------------
-- One block per feature table: <t> = table, <c> = geometry column, <i> = id.

-- pipelines.geometry
CREATE VIRTUAL TABLE rtree_pipelines_geometry USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER rtree_pipelines_geometry_insert AFTER INSERT ON pipelines
  WHEN (new.geometry NOT NULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_pipelines_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_pipelines_geometry_update1 AFTER UPDATE OF geometry ON pipelines
  WHEN OLD.id = NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_pipelines_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_pipelines_geometry_update2 AFTER UPDATE OF geometry ON pipelines
  WHEN OLD.id = NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_pipelines_geometry WHERE id = OLD.id;
END;

CREATE TRIGGER rtree_pipelines_geometry_update3 AFTER UPDATE ON pipelines
  WHEN OLD.id != NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_pipelines_geometry WHERE id = OLD.id;
  INSERT OR REPLACE INTO rtree_pipelines_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_pipelines_geometry_update4 AFTER UPDATE ON pipelines
  WHEN OLD.id != NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_pipelines_geometry WHERE id IN (OLD.id, NEW.id);
END;

CREATE TRIGGER rtree_pipelines_geometry_delete AFTER DELETE ON pipelines
  WHEN old.geometry NOT NULL
BEGIN
  DELETE FROM rtree_pipelines_geometry WHERE id = OLD.id;
END;

-- risk_points.geometry
CREATE VIRTUAL TABLE rtree_risk_points_geometry USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER rtree_risk_points_geometry_insert AFTER INSERT ON risk_points
  WHEN (new.geometry NOT NULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_risk_points_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_risk_points_geometry_update1 AFTER UPDATE OF geometry ON risk_points
  WHEN OLD.id = NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_risk_points_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_risk_points_geometry_update2 AFTER UPDATE OF geometry ON risk_points
  WHEN OLD.id = NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_risk_points_geometry WHERE id = OLD.id;
END;

CREATE TRIGGER rtree_risk_points_geometry_update3 AFTER UPDATE ON risk_points
  WHEN OLD.id != NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_risk_points_geometry WHERE id = OLD.id;
  INSERT OR REPLACE INTO rtree_risk_points_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_risk_points_geometry_update4 AFTER UPDATE ON risk_points
  WHEN OLD.id != NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_risk_points_geometry WHERE id IN (OLD.id, NEW.id);
END;

CREATE TRIGGER rtree_risk_points_geometry_delete AFTER DELETE ON risk_points
  WHEN old.geometry NOT NULL
BEGIN
  DELETE FROM rtree_risk_points_geometry WHERE id = OLD.id;
END;

-- grid_cells.geometry
CREATE VIRTUAL TABLE rtree_grid_cells_geometry USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER rtree_grid_cells_geometry_insert AFTER INSERT ON grid_cells
  WHEN (new.geometry NOT NULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_grid_cells_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_grid_cells_geometry_update1 AFTER UPDATE OF geometry ON grid_cells
  WHEN OLD.id = NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  INSERT OR REPLACE INTO rtree_grid_cells_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_grid_cells_geometry_update2 AFTER UPDATE OF geometry ON grid_cells
  WHEN OLD.id = NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_grid_cells_geometry WHERE id = OLD.id;
END;

CREATE TRIGGER rtree_grid_cells_geometry_update3 AFTER UPDATE ON grid_cells
  WHEN OLD.id != NEW.id AND
       (NEW.geometry NOTNULL AND NOT ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_grid_cells_geometry WHERE id = OLD.id;
  INSERT OR REPLACE INTO rtree_grid_cells_geometry VALUES (
    NEW.id,
    ST_MinX(NEW.geometry), ST_MaxX(NEW.geometry),
    ST_MinY(NEW.geometry), ST_MaxY(NEW.geometry)
  );
END;

CREATE TRIGGER rtree_grid_cells_geometry_update4 AFTER UPDATE ON grid_cells
  WHEN OLD.id != NEW.id AND
       (NEW.geometry ISNULL OR ST_IsEmpty(NEW.geometry))
BEGIN
  DELETE FROM rtree_grid_cells_geometry WHERE id IN (OLD.id, NEW.id);
END;

CREATE TRIGGER rtree_grid_cells_geometry_delete AFTER DELETE ON grid_cells
  WHEN old.geometry NOT NULL
BEGIN
  DELETE FROM rtree_grid_cells_geometry WHERE id = OLD.id;
END;

-- sensors.location
CREATE VIRTUAL TABLE rtree_sensors_location USING rtree(id, minx, maxx, miny, maxy);

CREATE TRIGGER rtree_sensors_location_insert AFTER INSERT ON sensors
  WHEN (new.location NOT NULL AND NOT ST_IsEmpty(NEW.location))
BEGIN
  INSERT OR REPLACE INTO rtree_sensors_location VALUES (
    NEW.id,
    ST_MinX(NEW.location), ST_MaxX(NEW.location),
    ST_MinY(NEW.location), ST_MaxY(NEW.location)
  );
END;

CREATE TRIGGER rtree_sensors_location_update1 AFTER UPDATE OF location ON sensors
  WHEN OLD.id = NEW.id AND
       (NEW.location NOTNULL AND NOT ST_IsEmpty(NEW.location))
BEGIN
  INSERT OR REPLACE INTO rtree_sensors_location VALUES (
    NEW.id,
    ST_MinX(NEW.location), ST_MaxX(NEW.location),
    ST_MinY(NEW.location), ST_MaxY(NEW.location)
  );
END;

CREATE TRIGGER rtree_sensors_location_update2 AFTER UPDATE OF location ON sensors
  WHEN OLD.id = NEW.id AND
       (NEW.location ISNULL OR ST_IsEmpty(NEW.location))
BEGIN
  DELETE FROM rtree_sensors_location WHERE id = OLD.id;
END;

CREATE TRIGGER rtree_sensors_location_update3 AFTER UPDATE ON sensors
  WHEN OLD.id != NEW.id AND
       (NEW.location NOTNULL AND NOT ST_IsEmpty(NEW.location))
BEGIN
  DELETE FROM rtree_sensors_location WHERE id = OLD.id;
  INSERT OR REPLACE INTO rtree_sensors_location VALUES (
    NEW.id,
    ST_MinX(NEW.location), ST_MaxX(NEW.location),
    ST_MinY(NEW.location), ST_MaxY(NEW.location)
  );
END;

CREATE TRIGGER rtree_sensors_location_update4 AFTER UPDATE ON sensors
  WHEN OLD.id != NEW.id AND
       (NEW.location ISNULL OR ST_IsEmpty(NEW.location))
BEGIN
  DELETE FROM rtree_sensors_location WHERE id IN (OLD.id, NEW.id);
END;

CREATE TRIGGER rtree_sensors_location_delete AFTER DELETE ON sensors
  WHEN old.location NOT NULL
BEGIN
  DELETE FROM rtree_sensors_location WHERE id = OLD.id;
END;

-- Internal tables (not registered in gpkg_contents) -------------------------------------------

-- Append-only log of every write; `version` is the monotonic change version.
CREATE TABLE change_log (
  version INTEGER PRIMARY KEY AUTOINCREMENT,
  layer TEXT NOT NULL
    CHECK (layer = 'pipelines' OR layer = 'risk_points' OR layer = 'grid_cells' OR
           layer = 'sensors' OR layer = 'owners'),
  record_id INTEGER NOT NULL,
  op TEXT NOT NULL CHECK (op = 'insert' OR op = 'update' OR op = 'delete' OR op = 'bulk'),
  actor TEXT NOT NULL,
  at DATETIME NOT NULL
);

-- Who did what; `detail` is JSON text.
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at DATETIME NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role = 'viewer' OR role = 'contractor' OR role = 'analyst' OR
                            role = 'operator' OR role = 'admin'),
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}'
);

-- API keys: only the SHA-256 hash of a key is ever stored.
CREATE TABLE api_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role = 'viewer' OR role = 'contractor' OR role = 'analyst' OR
                            role = 'operator' OR role = 'admin'),
  key_hash TEXT NOT NULL UNIQUE,
  created_at DATETIME NOT NULL,
  revoked_at DATETIME
);

