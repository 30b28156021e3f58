//! The crate's error type for everything except decoding.
//!
//! Owns [`TileError`]: bad tile addresses, bad options, geometries the MVT
//! encoder cannot represent. Decoding has its own error
//! ([`crate::decode::DecodeError`]) because its failures describe bytes,
//! not caller input.

use thiserror::Error;

/// Errors from tile math, clipping/quantisation helpers, the MVT encoder and
/// the high-level layer pipeline.
///
/// Every variant carries the offending value so that a message surfaced to an
/// HTTP client (e.g. "tile x 9000 is out of range at zoom 13") is actionable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TileError {
    /// Zoom level above [`crate::tilemath::MAX_ZOOM`].
    #[error("zoom {z} is out of range (must be 0..={max})")]
    ZoomOutOfRange {
        /// The rejected zoom.
        z: u32,
        /// The highest supported zoom.
        max: u8,
    },
    /// Tile column not below `2^z`.
    #[error("tile x {x} is out of range at zoom {z} (must be < {limit})")]
    XOutOfRange {
        /// Zoom of the tile.
        z: u8,
        /// The rejected column.
        x: u32,
        /// `2^z`.
        limit: u64,
    },
    /// Tile row not below `2^z`.
    #[error("tile y {y} is out of range at zoom {z} (must be < {limit})")]
    YOutOfRange {
        /// Zoom of the tile.
        z: u8,
        /// The rejected row.
        y: u32,
        /// `2^z`.
        limit: u64,
    },
    /// A longitude/latitude (or other coordinate) that is NaN or infinite.
    #[error("coordinate ({x}, {y}) is not finite")]
    NonFiniteCoordinate {
        /// X / longitude.
        x: f64,
        /// Y / latitude.
        y: f64,
    },
    /// A layer/tile option outside its allowed range.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// Option name, e.g. `extent`.
        name: &'static str,
        /// Why the value was rejected, including the value.
        reason: String,
    },
    /// A geometry with no parts/points was given to the encoder.
    #[error("geometry is empty")]
    EmptyGeometry,
    /// A geometry the MVT encoding cannot represent (too few distinct points
    /// in a line or ring, coordinate deltas beyond 32 bits, ...).
    #[error("degenerate geometry: {0}")]
    DegenerateGeometry(String),
    /// A geometry kind MVT has no encoding for (geometry collections).
    #[error("unsupported geometry: {0}")]
    UnsupportedGeometry(&'static str),
    /// Two layers with the same name in one tile (forbidden by MVT 2.1 §4.1).
    #[error("duplicate layer name {0:?} in tile")]
    DuplicateLayer(String),
    /// Layer names are required by MVT 2.1 §4.1.
    #[error("layer name must not be empty")]
    EmptyLayerName,
}
