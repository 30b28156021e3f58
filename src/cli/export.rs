//! `lifeline export`: parses the arguments into export options, runs
//! [`lifeline::io::service::export_layer`] against the configured store and prints what
//! was written.

use super::{open_store, Output};
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::export::ExportOptions;
use lifeline::io::gdal::OutFormat;
use lifeline::io::service;
use lifeline::model::{Bbox, Layer};
use std::path::{Path, PathBuf};

/// Arguments of `lifeline export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Layer to export.
    #[arg(long)]
    layer: String,
    /// gpkg, geojson, fgb, csv or shp.
    #[arg(long)]
    format: String,
    /// Target CRS (EPSG:n).
    #[arg(long, default_value = "EPSG:4490")]
    crs: String,
    /// minLon,minLat,maxLon,maxLat.
    #[arg(long)]
    bbox: Option<String>,
    /// CQL2 filter (text or JSON).
    #[arg(long)]
    filter: Option<String>,
    /// Output file.
    #[arg(long, short)]
    out: PathBuf,
}

/// What `export` prints: how many features of which layer went to which file, in which
/// format and CRS (as given).
#[derive(serde::Serialize)]
struct Exported<'a> {
    layer: Layer,
    written: usize,
    file: &'a Path,
    format: &'a str,
    crs: &'a str,
}

impl std::fmt::Display for Exported<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} {} to {} ({}, {})",
            self.written,
            self.layer,
            self.file.display(),
            self.format,
            self.crs
        )
    }
}

/// Exports the layer and prints the count, the file, the format and the CRS.
pub async fn run(store_args: &StoreArgs, a: &ExportArgs, out: Output) -> Result<()> {
    let layer: Layer = a.layer.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = OutFormat::parse(&a.format)?;
    let bbox = a
        .bbox
        .as_deref()
        .map(Bbox::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (store, config) = open_store(store_args).await?;
    let opts = ExportOptions {
        layer,
        format,
        crs: a.crs.clone(),
        bbox,
        filter: a.filter.clone(),
    };
    let written =
        service::export_layer(store.as_ref(), config.metric_crs.as_deref(), opts, &a.out).await?;
    out.result(&Exported {
        layer,
        written,
        file: &a.out,
        format: &a.format,
        crs: &a.crs,
    })
}
