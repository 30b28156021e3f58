//! `lifeline export`: parses the arguments into export options, runs
//! [`lifeline::io::service::export_layer`] against the configured store and prints what
//! was written.

use super::{open_store, Output};
use anyhow::Result;
use lifeline::config::StoreArgs;
use lifeline::io::export::{ExportOptions, Provenance};
use lifeline::io::gdal::OutFormat;
use lifeline::io::service;
use lifeline::model::audit::{ReadEntry, ReadKind};
use lifeline::model::{Actor, Bbox, Clock, Layer};
use serde_json::json;
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
    let mut opts = ExportOptions {
        layer,
        format,
        crs: a.crs.clone(),
        bbox,
        filter: a.filter.clone(),
        provenance: None,
    };
    // Issue 21: the file names who exported it, when, and how it was cut.
    let who = Actor::cli().name;
    opts.provenance = Some(Provenance::of(&opts, &who, Clock::system().now()));
    let written =
        service::export_layer(store.as_ref(), config.metric_crs.as_deref(), opts, &a.out).await?;
    // Issue 21: an export of full attributes is a read to audit, as the CLI's actor (with
    // the operating-system account that ran it).
    let entry = ReadEntry::new(ReadKind::Export, format!("export/{layer}"))
        .within(bbox)
        .read(&[layer], written as u64)
        .with("format", json!(a.format))
        .with("crs", json!(a.crs))
        .with("filter", json!(a.filter))
        .with("file", json!(a.out.display().to_string()))
        .with("os_user", json!(std::env::var("USER").ok()));
    store
        .append_audit(&Actor::cli(), &entry.into_record(None))
        .await?;
    out.result(&Exported {
        layer,
        written,
        file: &a.out,
        format: &a.format,
        crs: &a.crs,
    })
}
