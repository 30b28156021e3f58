//! GDAL (through the `gdal` crate) for everything the service reads from or writes to
//! vector files: reading any format GDAL opens into plain rows ([`read_layer`]) for the
//! importer, and writing features to GeoPackage, GeoJSON, FlatGeobuf, CSV (WKT) or
//! Shapefile ([`write_features`], [`features_to_bytes`]) for export and `?f=fgb`.
//!
//! Coordinates handed to and taken from GDAL are always x = easting/longitude,
//! y = northing/latitude (GDAL's traditional GIS order); CRS changes go through PROJ in
//! [`lifeline_model::crs`], never through GDAL, so there is one transformation path.

use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{
    Feature, FieldDefn, FieldValue, Geometry as GGeometry, LayerAccess, LayerOptions, OGRFieldType,
    OGRwkbGeometryType, ToGdal,
};
use gdal::{Dataset, DriverManager};
use lifeline_model::schema::{fields, Column};
use lifeline_model::Layer;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a GDAL operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GdalError {
    #[error("GDAL: {0}")]
    Gdal(#[from] gdal::errors::GdalError),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open '{path}' as a vector data set: {reason}")]
    Open { path: String, reason: String },
}

/// Output formats of export and `?f=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    GeoPackage,
    GeoJson,
    FlatGeobuf,
    Csv,
    Shapefile,
}

impl OutFormat {
    /// Parses `gpkg|geojson|fgb|csv|shp`.
    pub fn parse(s: &str) -> Result<Self, GdalError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "gpkg" | "geopackage" => OutFormat::GeoPackage,
            "geojson" | "json" => OutFormat::GeoJson,
            "fgb" | "flatgeobuf" => OutFormat::FlatGeobuf,
            "csv" => OutFormat::Csv,
            "shp" | "shapefile" => OutFormat::Shapefile,
            o => {
                return Err(GdalError::Unsupported(format!(
                    "format '{o}' is not supported; use gpkg, geojson, fgb, csv or shp"
                )))
            }
        })
    }

    fn driver(self) -> &'static str {
        match self {
            OutFormat::GeoPackage => "GPKG",
            OutFormat::GeoJson => "GeoJSON",
            OutFormat::FlatGeobuf => "FlatGeobuf",
            OutFormat::Csv => "CSV",
            OutFormat::Shapefile => "ESRI Shapefile",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutFormat::GeoPackage => "gpkg",
            OutFormat::GeoJson => "geojson",
            OutFormat::FlatGeobuf => "fgb",
            OutFormat::Csv => "csv",
            OutFormat::Shapefile => "shp",
        }
    }
}

/// One feature to write: id, properties (JSON values), lon/lat geometry.
pub struct OutFeature {
    pub id: i64,
    pub props: Map<String, Value>,
    pub geometry: Option<geo::Geometry<f64>>,
}

fn geometry_type(layer: Layer) -> OGRwkbGeometryType::Type {
    match layer {
        Layer::Pipelines => OGRwkbGeometryType::wkbLineString,
        Layer::Sensors | Layer::Nodes => OGRwkbGeometryType::wkbPoint,
        Layer::GridCells => OGRwkbGeometryType::wkbMultiPolygon,
        Layer::RiskPoints => OGRwkbGeometryType::wkbUnknown,
        Layer::Owners => OGRwkbGeometryType::wkbNone,
    }
}

fn epsg_of(code: &str) -> Result<u32, GdalError> {
    code.strip_prefix("EPSG:")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| GdalError::Unsupported(format!("CRS '{code}' is not an EPSG code")))
}

/// Writes features of `layer` (geometries already in `crs_code`, x = east) to `path` in
/// `format`. Returns the number written. The file is created (an existing one is replaced).
pub fn write_features(
    path: &Path,
    layer: Layer,
    features: &[OutFeature],
    crs_code: &str,
    format: OutFormat,
) -> Result<usize, GdalError> {
    if format == OutFormat::Shapefile && layer == Layer::RiskPoints {
        return Err(GdalError::Unsupported(
            "risk points mix Points and Polygons, which a Shapefile cannot hold; use gpkg, geojson, fgb or csv".into(),
        ));
    }
    let driver = DriverManager::get_driver_by_name(format.driver())?;
    if path.exists() && !path.to_string_lossy().starts_with("/vsimem/") {
        let _ = driver.delete(path);
        let _ = std::fs::remove_file(path);
    }
    let mut ds = driver.create_vector_only(path)?;
    let mut srs = SpatialRef::from_epsg(epsg_of(crs_code)?)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut opts: Vec<&str> = Vec::new();
    if format == OutFormat::Csv {
        opts.push("GEOMETRY=AS_WKT");
    }
    if format == OutFormat::GeoJson {
        opts.push("RFC7946=NO");
        opts.push("WRITE_NAME=NO");
    }
    if format == OutFormat::Shapefile {
        opts.push("ENCODING=UTF-8");
    }
    let name = layer.as_str();
    let attrs = fields(layer);
    {
        let lyr = ds.create_layer(LayerOptions {
            name,
            srs: (layer != Layer::Owners).then_some(&srs),
            ty: geometry_type(layer),
            options: if opts.is_empty() { None } else { Some(&opts) },
        })?;
        // `id` is an ordinary field too, so every format keeps it (Shapefile and CSV have no
        // writable FID).
        FieldDefn::new("id", OGRFieldType::OFTInteger64)?.add_to_layer(&lyr)?;
        for f in attrs {
            let ty = match f.column {
                Column::Real => OGRFieldType::OFTReal,
                Column::BigInt | Column::Int => OGRFieldType::OFTInteger64,
                Column::Date => OGRFieldType::OFTDate,
                Column::Text => OGRFieldType::OFTString,
            };
            FieldDefn::new(f.name, ty)?.add_to_layer(&lyr)?;
        }
    }
    let mut written = 0usize;
    // One transaction for the whole layer: GeoPackage inserts are otherwise one commit each.
    let tx_ok = matches!(format, OutFormat::GeoPackage);
    if tx_ok {
        ds.execute_sql("BEGIN", None, gdal::vector::sql::Dialect::DEFAULT)?;
    }
    // By position: CSV and Shapefile name the layer after the file, not `name`.
    let lyr = ds.layer(ds.layer_count().saturating_sub(1))?;
    let defn = lyr.defn();
    for f in features {
        let mut feat = Feature::new(defn)?;
        feat.set_field_integer64(0, f.id)?;
        for (i, a) in attrs.iter().enumerate() {
            // By position (after `id`): Shapefile launders names to 10 characters.
            let idx = i + 1;
            // Explicit nulls: FlatGeobuf otherwise reads an unset number back as 0.
            let Some(v) = f.props.get(a.name) else {
                feat.set_field_null(idx)?;
                continue;
            };
            let integer = matches!(a.column, Column::BigInt | Column::Int);
            match (v, integer) {
                (Value::Null, _) => feat.set_field_null(idx)?,
                (Value::Number(x), true) => feat.set_field_integer64(
                    idx,
                    x.as_i64().unwrap_or(x.as_f64().unwrap_or(0.0) as i64),
                )?,
                (Value::Number(x), _) => {
                    feat.set_field_double(idx, x.as_f64().unwrap_or(f64::NAN))?
                }
                (Value::String(s), _) => feat.set_field_string(idx, s)?,
                (Value::Bool(b), _) => {
                    feat.set_field_string(idx, if *b { "true" } else { "false" })?
                }
                (other, _) => feat.set_field_string(idx, &other.to_string())?,
            }
        }
        if let Some(g) = &f.geometry {
            feat.set_geometry(g.to_gdal()?)?;
        }
        feat.create(&lyr)?;
        written += 1;
    }
    if tx_ok {
        ds.execute_sql("COMMIT", None, gdal::vector::sql::Dialect::DEFAULT)?;
    }
    ds.flush_cache()?;
    ds.close()?;
    Ok(written)
}

static MEM_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes features to an in-memory file of `format` and returns its bytes (for `?f=fgb`).
pub fn features_to_bytes(
    layer: Layer,
    features: &[OutFeature],
    crs_code: &str,
    format: OutFormat,
) -> Result<Vec<u8>, GdalError> {
    let n = MEM_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = format!(
        "/vsimem/lifeline_{}_{n}.{}",
        std::process::id(),
        format.extension()
    );
    write_features(Path::new(&path), layer, features, crs_code, format)?;
    let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&path)?;
    Ok(bytes)
}

/// Sets one metadata item of a data set written earlier (opened again for update): for a
/// GeoPackage GDAL keeps it in `gpkg_metadata`, where `ogrinfo` shows it.
pub fn set_dataset_metadata(path: &Path, key: &str, value: &str) -> Result<(), GdalError> {
    use gdal::Metadata;
    let mut ds = Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
            ..Default::default()
        },
    )?;
    ds.set_metadata_item(key, value, "")?;
    ds.flush_cache()?;
    Ok(())
}

/// A source row's attribute values in column order. The column names are shared by every
/// row of one read, so a row costs one value per column and no per-row keys.
#[derive(Debug, Clone)]
pub struct Fields {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// What a missing column reads as.
static NULL: Value = Value::Null;

impl Fields {
    /// Values for `names`, in the same order.
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Fields {
        debug_assert_eq!(names.len(), values.len());
        Fields { names, values }
    }

    /// The value of column `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i))
    }

    /// The value of the `i`-th column.
    pub fn at(&self, i: usize) -> Option<&Value> {
        self.values.get(i)
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;

    /// The value of column `name`; null when there is no such column.
    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

/// One row of a source file as the importer sees it.
#[derive(Debug, Clone)]
pub struct SourceRow {
    /// 1-based position in the layer (what the validation report names).
    pub row: usize,
    /// The source FID, if the format has one.
    pub fid: Option<u64>,
    /// Field values; dates as `YYYY-MM-DD` strings.
    pub fields: Fields,
    /// The geometry in the source CRS, or why it could not be read.
    pub geometry: Result<Option<geo::Geometry<f64>>, String>,
}

/// What [`read_layer`] found in a file.
#[derive(Debug)]
pub struct SourceLayer {
    pub name: String,
    /// The layer's CRS as `EPSG:n` when GDAL identifies it, else its WKT; `None` if absent.
    pub crs: Option<String>,
    pub rows: Vec<SourceRow>,
    pub field_names: Vec<String>,
}

fn field_json(v: Option<FieldValue>) -> Value {
    match v {
        None => Value::Null,
        Some(FieldValue::IntegerValue(i)) => Value::from(i),
        Some(FieldValue::Integer64Value(i)) => Value::from(i),
        Some(FieldValue::RealValue(r)) => serde_json::Number::from_f64(r)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Some(FieldValue::StringValue(s)) => Value::String(s),
        // `NaiveDate`'s Display is `YYYY-MM-DD`, without parsing a format string per value.
        Some(FieldValue::DateValue(d)) => Value::String(d.to_string()),
        Some(FieldValue::DateTimeValue(d)) => Value::String(d.to_rfc3339()),
        Some(other) => Value::String(format!("{other:?}")),
    }
}

/// The JSON value of field `idx` (of type `ty`, from the layer definition) of `f`. The
/// common scalar types are read with one GDAL call each; the rest go through the `gdal`
/// crate's `FieldValue`. An unset field (FlatGeobuf, Shapefile) reads as null, as does a
/// null one.
fn field_value(f: &Feature, idx: usize, ty: OGRFieldType::Type) -> Value {
    let i = idx as i32;
    // SAFETY: `h` is the live feature `f` of this layer and `i` is below its field count;
    // GDAL returns a string owned by the feature, copied before `f` can change.
    unsafe {
        let h = f.c_feature();
        if gdal_sys::OGR_F_IsFieldSetAndNotNull(h, i) == 0 {
            return Value::Null;
        }
        match ty {
            OGRFieldType::OFTInteger => Value::from(gdal_sys::OGR_F_GetFieldAsInteger(h, i)),
            OGRFieldType::OFTInteger64 => Value::from(gdal_sys::OGR_F_GetFieldAsInteger64(h, i)),
            OGRFieldType::OFTReal => {
                serde_json::Number::from_f64(gdal_sys::OGR_F_GetFieldAsDouble(h, i))
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
            OGRFieldType::OFTString => {
                let p = gdal_sys::OGR_F_GetFieldAsString(h, i);
                if p.is_null() {
                    return Value::Null;
                }
                Value::String(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
            }
            _ => field_json(f.field(idx).ok().flatten()),
        }
    }
}

/// Identifies a layer's CRS: `EPSG:n` when there is an EPSG authority code, else WKT.
fn crs_of(srs: Option<SpatialRef>) -> Option<String> {
    let mut s = srs?;
    if let (Some(auth), Ok(code)) = (s.auth_name(), s.auth_code()) {
        if auth.eq_ignore_ascii_case("EPSG") {
            return Some(format!("EPSG:{code}"));
        }
    }
    if s.auto_identify_epsg().is_ok() {
        if let Ok(code) = s.auth_code() {
            return Some(format!("EPSG:{code}"));
        }
    }
    s.to_wkt().ok()
}

/// A source layer's name, CRS, columns and (when the driver knows it cheaply) row count.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub name: String,
    /// As in [`SourceLayer::crs`].
    pub crs: Option<String>,
    /// The CRS's own name (e.g. "DHDN / 3-degree Gauss-Kruger zone 3"), for people.
    pub crs_name: Option<String>,
    pub field_names: Vec<String>,
    /// Features after the attribute filter, if the driver can count without reading.
    pub count: Option<u64>,
}

fn open_dataset(path: &Path) -> Result<Dataset, GdalError> {
    Dataset::open(path).map_err(|e| GdalError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn open_layer<'a>(
    ds: &'a Dataset,
    path: &Path,
    layer_name: Option<&str>,
    where_: Option<&str>,
) -> Result<gdal::vector::Layer<'a>, GdalError> {
    let mut lyr = match layer_name {
        Some(n) => ds.layer_by_name(n).map_err(|_| {
            let names: Vec<String> = ds.layers().map(|l| l.name()).collect();
            GdalError::Unsupported(format!(
                "no layer '{n}' in {}; layers: {}",
                path.display(),
                names.join(", ")
            ))
        })?,
        None => ds.layer(0)?,
    };
    if let Some(w) = where_ {
        lyr.set_attribute_filter(w)
            .map_err(|e| GdalError::Unsupported(format!("where '{w}': {e}")))?;
    }
    Ok(lyr)
}

/// Describes one layer (by name, or the first) without reading its rows.
pub fn describe_layer(
    path: &Path,
    layer_name: Option<&str>,
    where_: Option<&str>,
) -> Result<SourceInfo, GdalError> {
    let ds = open_dataset(path)?;
    let lyr = open_layer(&ds, path, layer_name, where_)?;
    let srs = lyr.spatial_ref();
    Ok(SourceInfo {
        name: lyr.name(),
        crs_name: srs.as_ref().and_then(SpatialRef::name),
        crs: crs_of(srs),
        field_names: lyr.defn().fields().map(|f| f.name()).collect(),
        count: lyr.try_feature_count(),
    })
}

/// Where a streamed read starts: after `row` (1-based), whose FID must still be `fid`
/// (a resumed import checks that the rows already committed are still the same rows).
#[derive(Debug, Clone, Copy)]
pub struct ResumeAt {
    pub row: usize,
    pub fid: Option<u64>,
}

/// Streams the rows of one layer to `on_chunk` in chunks of up to `chunk` rows, in source
/// order; `on_chunk` returning false stops the read. `wanted` limits the fields converted
/// (the importer needs only the mapped columns). Rows up to `resume.row` are skipped
/// without converting them.
pub fn stream_rows(
    path: &Path,
    layer_name: Option<&str>,
    where_: Option<&str>,
    wanted: Option<&[String]>,
    resume: Option<ResumeAt>,
    chunk: usize,
    on_chunk: &mut dyn FnMut(Vec<SourceRow>) -> bool,
) -> Result<(), GdalError> {
    let ds = open_dataset(path)?;
    let mut lyr = open_layer(&ds, path, layer_name, where_)?;
    let all: Vec<(String, OGRFieldType::Type)> = lyr
        .defn()
        .fields()
        .map(|f| (f.name(), f.field_type()))
        .collect();
    // With `wanted`, the columns come in its order, so a caller can read a row's values by
    // position; a name the layer lacks reads as null.
    let fields: Vec<(Option<usize>, String, OGRFieldType::Type)> = match wanted {
        Some(w) => w
            .iter()
            .map(|n| match all.iter().position(|a| &a.0 == n) {
                Some(i) => (Some(i), n.clone(), all[i].1),
                None => (None, n.clone(), OGRFieldType::OFTString),
            })
            .collect(),
        None => all
            .into_iter()
            .enumerate()
            .map(|(i, (n, t))| (Some(i), n, t))
            .collect(),
    };
    let names: Arc<[String]> = fields.iter().map(|(_, n, _)| n.clone()).collect();
    let skip = resume.map_or(0, |r| r.row);
    let chunk = chunk.max(1);
    let mut rows = Vec::with_capacity(chunk);
    for (i, f) in lyr.features().enumerate() {
        let row = i + 1;
        if row <= skip {
            if let Some(r) = resume.filter(|r| r.row == row && r.fid != f.fid()) {
                return Err(GdalError::Unsupported(format!(
                    "the source changed: row {row} now has FID {:?}, the import job recorded FID {:?}; \
                     rows already committed must stay as they were to resume",
                    f.fid(),
                    r.fid
                )));
            }
            continue;
        }
        let mut values = Vec::with_capacity(fields.len());
        for (idx, _, ty) in &fields {
            values.push(idx.map_or(Value::Null, |i| field_value(&f, i, *ty)));
        }
        let geometry = match f.geometry() {
            None => Ok(None),
            Some(g) if g.is_empty() => Ok(None),
            Some(g) => {
                // SAFETY: `g` is the live geometry of `f`.
                let flat = unsafe {
                    gdal_sys::OGR_G_Is3D(g.c_geometry()) == 0
                        && gdal_sys::OGR_G_IsMeasured(g.c_geometry()) == 0
                };
                // Only a geometry with Z or M is copied to be flattened.
                let converted = if flat {
                    geo::Geometry::<f64>::try_from(g)
                } else {
                    let mut g = g.clone();
                    g.flatten_to_2d();
                    geo::Geometry::<f64>::try_from(&g)
                };
                converted
                    .map(Some)
                    .map_err(|e| format!("unreadable geometry: {e}"))
            }
        };
        rows.push(SourceRow {
            row,
            fid: f.fid(),
            fields: Fields::new(Arc::clone(&names), values),
            geometry,
        });
        if rows.len() == chunk && !on_chunk(std::mem::replace(&mut rows, Vec::with_capacity(chunk)))
        {
            return Ok(());
        }
    }
    if !rows.is_empty() {
        on_chunk(rows);
    }
    Ok(())
}

/// Reads one layer of any vector file GDAL opens (by name, or the first layer). Geometries
/// stay in the source CRS; a geometry GDAL cannot convert is recorded, not fatal.
pub fn read_layer(
    path: &Path,
    layer_name: Option<&str>,
    where_: Option<&str>,
) -> Result<SourceLayer, GdalError> {
    let info = describe_layer(path, layer_name, where_)?;
    let mut rows = Vec::new();
    stream_rows(path, layer_name, where_, None, None, 4096, &mut |mut c| {
        rows.append(&mut c);
        true
    })?;
    Ok(SourceLayer {
        name: info.name,
        crs: info.crs,
        rows,
        field_names: info.field_names,
    })
}

/// A geometry from WKT (the analysis endpoints' `geometry=`, tests). An empty geometry is
/// refused: GDAL hands `POINT EMPTY` over as a point at (0, 0), which would then be a real
/// place; and GDAL may report success without a geometry, which is refused too rather than
/// passed on as a null handle.
pub fn geometry_from_wkt(wkt: &str) -> Result<geo::Geometry<f64>, GdalError> {
    let g = GGeometry::from_wkt(wkt)?;
    // SAFETY: only the handle's value is compared; nothing is dereferenced.
    if unsafe { g.c_geometry() }.is_null() {
        return Err(GdalError::Unsupported(
            "the WKT gave no geometry".to_string(),
        ));
    }
    if g.is_empty() {
        return Err(GdalError::Unsupported(
            "the WKT geometry is empty".to_string(),
        ));
    }
    Ok(geo::Geometry::<f64>::try_from(&g)?)
}
