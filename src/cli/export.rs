//! `lifeline export`: parses the arguments into export options, runs
//! [`lifeline::io::service::export_layer`] against the configured store and prints what
//! was written.

use super::open_store;
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::export::ExportOptions;
use lifeline::io::gdal::OutFormat;
use lifeline::io::service;
use lifeline::model::{Bbox, Layer};
use std::path::PathBuf;

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

/// Exports the layer and prints the count, the file, the format and the CRS.
pub async fn run(store_args: &StoreArgs, a: &ExportArgs) -> Result<()> {
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
    let n =
        service::export_layer(store.as_ref(), config.metric_crs.as_deref(), opts, &a.out).await?;
    println!(
        "wrote {n} {layer} to {} ({}, {})",
        a.out.display(),
        a.format,
        a.crs
    );
    Ok(())
}
