//! `lifeline export`: writes one layer — optionally cut by a lon/lat box and a CQL2 filter —
//! to GeoPackage, GeoJSON, FlatGeobuf, CSV (WKT geometry) or Shapefile, in any CRS PROJ
//! knows. Selection is the OGC API's ([`lifeline_ogc::select`]) at full (admin) rights, so
//! the command line and the API agree on what a filter means.

use super::gdal::{write_features, OutFeature, OutFormat};
use lifeline_index::SpatialIndex;
use lifeline_model::{Bbox, Layer, Role};
use lifeline_ogc::{self as ogc, cql, queryables::queryables};
use std::path::Path;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Query(#[from] ogc::OgcError),
    #[error(transparent)]
    Gdal(#[from] super::gdal::GdalError),
    #[error(transparent)]
    Crs(#[from] lifeline_model::crs::CrsError),
    /// The provenance could not be written into the file.
    #[error("cannot write the export's provenance into {path}: {source}")]
    Provenance {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who exported what, when, and with which filter (issue 21): written into the file
/// ([`stamp`]) so a copy found elsewhere still names its source.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Provenance {
    /// The exporting key's name (or OIDC subject, or `cli`).
    pub exported_by: String,
    pub exported_at: chrono::DateTime<chrono::Utc>,
    pub layer: Layer,
    /// The box, the CQL2 filter and the CRS the export was cut with.
    pub filter: serde_json::Value,
}

impl Provenance {
    /// The provenance of an export made with `opts` by `who` at `at`.
    pub fn of(opts: &ExportOptions, who: &str, at: chrono::DateTime<chrono::Utc>) -> Provenance {
        Provenance {
            exported_by: who.to_string(),
            exported_at: at,
            layer: opts.layer,
            filter: serde_json::json!({
                "bbox": opts.bbox.map(<[f64; 4]>::from),
                "cql2": opts.filter,
                "crs": opts.crs,
            }),
        }
    }

    /// One line of text: for the CSV header comment.
    pub fn line(&self) -> String {
        format!(
            "lifeline export of {} by {} at {}; filter {}",
            self.layer,
            self.exported_by,
            self.exported_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.filter
        )
    }
}

/// The GeoJSON top-level member that holds the provenance.
pub const PROVENANCE_KEY: &str = "lifeline:provenance";

/// The GeoPackage metadata item that holds it (GDAL reads a ':' in a metadata name as the
/// separator of name and value, hence the underscore).
pub const PROVENANCE_ITEM: &str = "lifeline_provenance";

/// Writes the provenance into an exported file: a GeoPackage metadata item (in
/// `gpkg_metadata`, as GDAL writes dataset metadata), a GeoJSON top-level member, a CSV
/// header comment line. FlatGeobuf and Shapefile carry none: GDAL 3.6 writes no
/// FlatGeobuf description and a Shapefile has no place for one.
pub fn stamp(path: &Path, format: OutFormat, p: &Provenance) -> Result<(), ExportError> {
    let json = serde_json::to_string(p).unwrap_or_default();
    let io = |source| ExportError::Provenance {
        path: path.display().to_string(),
        source,
    };
    match format {
        OutFormat::GeoPackage => Ok(super::gdal::set_dataset_metadata(
            path,
            PROVENANCE_ITEM,
            &json,
        )?),
        OutFormat::GeoJson => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            let Some(open) = text.find('{') else {
                return Ok(());
            };
            let member = format!("\n\"{PROVENANCE_KEY}\": {json},");
            let mut out = String::with_capacity(text.len() + member.len());
            out.push_str(&text[..=open]);
            out.push_str(&member);
            out.push_str(&text[open + 1..]);
            std::fs::write(path, out).map_err(io)
        }
        OutFormat::Csv => {
            let text = std::fs::read(path).map_err(io)?;
            let mut out = format!("# {}\n", p.line().replace(['\n', '\r'], " ")).into_bytes();
            out.extend_from_slice(&text);
            std::fs::write(path, out).map_err(io)
        }
        OutFormat::FlatGeobuf | OutFormat::Shapefile => Ok(()),
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub layer: Layer,
    pub format: OutFormat,
    /// Target CRS as `EPSG:n`.
    pub crs: String,
    pub bbox: Option<Bbox>,
    /// A cql2-text or cql2-json filter.
    pub filter: Option<String>,
    /// Written into the file when given ([`stamp`]).
    pub provenance: Option<Provenance>,
}

/// Selects and writes; returns the number of features written.
pub fn export(
    index: &SpatialIndex,
    opts: &ExportOptions,
    path: &Path,
) -> Result<usize, ExportError> {
    let filter = match &opts.filter {
        Some(f) => {
            let lang = if f.trim_start().starts_with('{') {
                cql::FilterLang::Json
            } else {
                cql::FilterLang::Text
            };
            let e = cql::parse(f, lang)?;
            let qs = queryables(opts.layer, Role::Admin);
            Some(cql::Compiler::new(opts.layer, &qs, None, index).compile(&e)?)
        }
        None => None,
    };
    let selected = ogc::select(
        index,
        opts.layer,
        Role::Admin,
        opts.bbox.as_ref(),
        None,
        filter.as_ref(),
        &[],
    )?;
    let mut out = Vec::with_capacity(selected.len());
    for s in selected {
        let geometry = match s.record.geometry() {
            Some(g) if opts.crs != lifeline_model::crs::CANONICAL => Some(
                lifeline_model::crs::transform(&g, lifeline_model::crs::CANONICAL, &opts.crs)?,
            ),
            other => other,
        };
        out.push(OutFeature {
            id: s.record.id(),
            props: s.feature["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            geometry,
        });
    }
    let written = write_features(path, opts.layer, &out, &opts.crs, opts.format)?;
    if let Some(p) = &opts.provenance {
        stamp(path, opts.format, p)?;
    }
    Ok(written)
}
