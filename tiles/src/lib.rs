//! Tile math, MVT encoding and generalisation (no I/O).
//!
//! Pure computation for Lifeline's vector tiles: the service hands in
//! lon/lat `geo` geometries with ids, properties and an importance score,
//! and gets back Mapbox Vector Tile 2.1 bytes for MapLibre GL, QGIS or GDAL.
//!
//! | module | owns |
//! |---|---|
//! | [`tilemath`] | `TileCoord`, lon/lat ↔ EPSG:3857, tile bounds, coverage, parent/children |
//! | [`clip`] | clipping points/lines/polygons to the buffered tile |
//! | [`quantize`] | lon/lat → tile units, rounding, degenerate removal, ring orientation |
//! | [`geometry`] | integer tile geometry (`TileGeometry`) shared by encoder and decoder |
//! | [`mvt`] | protobuf MVT encoder: `Value`, `LayerBuilder`, `TileBuilder` |
//! | [`decode`] | strict MVT decoder/validator (for tests) |
//! | [`generalize`] | simplification, size thresholds, clustering, feature budget |
//! | [`pipeline`] | the per-request path: features → one encoded layer |
//!
//! ```
//! use geo::{Geometry, LineString};
//! use lifeline_tiles::{decode_tile, encode_layer, LayerOptions, SourceFeature, TileCoord, Value};
//!
//! let tile = TileCoord::new(14, 13279, 6795)?;
//! let b = tile.bounds_lonlat();
//! let pipe = Geometry::LineString(LineString::from(vec![
//!     (b.min().x, b.min().y),
//!     (b.max().x, b.max().y),
//! ]));
//! let props = [("kind", Value::from("water")), ("diameter_mm", Value::from(300i64))];
//! let features = [SourceFeature { id: Some(7), geometry: (&pipe).into(), properties: &props, importance: 300.0 }];
//! let layer = encode_layer("pipes", tile, &features, &LayerOptions::default())?;
//! let decoded = decode_tile(&layer.bytes).unwrap();
//! assert_eq!(decoded.layer("pipes").unwrap().features.len(), 1);
//! # Ok::<(), lifeline_tiles::TileError>(())
//! ```

#![warn(missing_docs)]

pub mod clip;
pub mod decode;
pub mod error;
pub mod generalize;
pub mod geometry;
pub mod mvt;
mod pbf;
pub mod pipeline;
pub mod quantize;
pub mod tilemath;

pub use decode::{decode_tile, DecodeError, DecodedFeature, DecodedLayer, DecodedTile};
pub use error::TileError;
pub use geometry::{GeomType, TileGeometry, TilePoint};
pub use mvt::{LayerBuilder, TileBuilder, Value};
pub use pipeline::{
    encode_layer, EncodedLayer, LayerEncoder, LayerOptions, LayerStats, SourceFeature,
    SourceGeometry,
};
pub use tilemath::{tiles_covering, TileCoord, TileRange};
