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
    Ok(write_features(
        path,
        opts.layer,
        &out,
        &opts.crs,
        opts.format,
    )?)
}
