//! Vector tiles of every spatial layer, cut on request from the in-memory index.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `data/tiles.toml`: zooms, attributes by zoom and role, generalisation, budget, HTTP caching |
//! | [`fields`] | the attributes a tile feature can carry, their types and access roles |
//! | [`render`] | one tile from the index: candidates, filters, importance, encoding |
//! | [`cache`] | the byte-bounded tile cache and its exact invalidation on writes |
//! | [`datum`] | the output datum: CGCS2000, or GCJ-02 for Chinese commercial basemaps |
//! | [`tilejson`] | TileJSON 3.0.0 documents |
//! | [`style`] | the MapLibre styles "network" and "risk" |
//! | [`pmtiles`] | PMTiles v3 export (and a reader for tests) |
//! | [`derived`] | the uncached risk layers `grid_stats` and `alarm_density` |
//! | [`service`] | the use cases the HTTP layer calls: tile paths parsed, tiles served with their `Cache-Control`, TileJSON and metadata documents |
//!
//! [`TileService`] ties them together for the HTTP layer: its tile methods parse nothing
//! (they take a [`LayerSet`], a `TileCoord`, the caller's role and the negotiated
//! [`Encoding`]; [`service`] parses a request's path parts into those), renders on the blocking pool so a big tile never stalls the async
//! workers, compresses per encoding, and gives each representation its own strong ETag
//! (tower-http's `CompressionLayer` would compress the bytes but keep one ETag for every
//! encoding, which a strong validator must not do; so tiles are compressed here and the
//! layer leaves responses that already carry `Content-Encoding` alone).

pub mod cache;
pub mod config;
pub use lifeline_model::datum;
pub mod derived;
pub mod fields;
pub mod pmtiles;
pub mod render;
pub mod service;
pub mod style;
pub mod tilejson;

pub use config::{ConfigError, TilesConfig};
pub use datum::Datum;
pub use render::RenderError;

use bytes::Bytes;
use cache::{TileCache, TileKey};
use lifeline_index::SpatialIndex;
use lifeline_model::{Bbox, Layer, Record, Role};
use lifeline_tiles::TileCoord;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;

/// Environment variable overriding `defaults.cache_bytes` of `tiles.toml`.
pub const CACHE_BYTES_ENV: &str = "LIFELINE_TILE_CACHE_BYTES";

/// Most layers one tile request may name.
pub const MAX_LAYERS: usize = 8;

/// How many spatial layers there are: the most a [`LayerSet`] holds (names are distinct).
pub const SPATIAL_LAYERS: usize = Layer::SPATIAL.len();

/// Longest layer-list path segment accepted, bytes.
pub const MAX_SEGMENT_BYTES: usize = 200;

/// Why a layer list was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LayerSetError {
    #[error("the layer list is {0} bytes long; at most {MAX_SEGMENT_BYTES} are accepted")]
    TooLong(usize),
    #[error("{0} layers requested; at most {MAX_LAYERS} per tile")]
    TooMany(usize),
    #[error("empty layer name in the layer list (expected e.g. pipelines,risk_points)")]
    EmptyName,
    #[error("unknown layer '{0}'; tiles exist for pipelines, risk_points, grid_cells, sensors, grid_stats, alarm_density")]
    Unknown(String),
    #[error("layer '{0}' is listed twice")]
    Duplicate(Layer),
    #[error("layer '{0}' is listed twice")]
    DuplicateName(String),
}

impl LayerSetError {
    /// Unknown layers are "not found"; everything else is a malformed request.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LayerSetError::Unknown(_))
    }
}

/// An ordered list of distinct tile layers (at most the spatial layers), as named in a
/// tile URL. `Copy`, so it can be part of a cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerSet {
    len: u8,
    items: [Layer; SPATIAL_LAYERS],
}

impl LayerSet {
    /// Parses `a,b,c` (the checks run cheapest first: length, count, then names).
    pub fn parse(segment: &str) -> Result<LayerSet, LayerSetError> {
        if segment.len() > MAX_SEGMENT_BYTES {
            return Err(LayerSetError::TooLong(segment.len()));
        }
        let n = segment.split(',').count();
        if n > MAX_LAYERS {
            return Err(LayerSetError::TooMany(n));
        }
        let mut set = LayerSet {
            len: 0,
            items: [Layer::Pipelines; SPATIAL_LAYERS],
        };
        for name in segment.split(',') {
            if name.is_empty() {
                return Err(LayerSetError::EmptyName);
            }
            let layer: Layer = name
                .parse()
                .ok()
                .filter(|l: &Layer| l.spatial_index().is_some())
                .ok_or_else(|| LayerSetError::Unknown(name.chars().take(64).collect()))?;
            if set.contains(layer) {
                return Err(LayerSetError::Duplicate(layer));
            }
            set.items[set.len as usize] = layer;
            set.len += 1;
        }
        Ok(set)
    }

    /// A set from layers (duplicates and owners are skipped).
    pub fn of(layers: &[Layer]) -> LayerSet {
        let mut set = LayerSet {
            len: 0,
            items: [Layer::Pipelines; SPATIAL_LAYERS],
        };
        for &l in layers {
            if l.spatial_index().is_some() && !set.contains(l) {
                set.items[set.len as usize] = l;
                set.len += 1;
            }
        }
        set
    }

    /// The layers, in request order.
    pub fn layers(&self) -> &[Layer] {
        &self.items[..self.len as usize]
    }

    /// Whether the set names `layer`.
    pub fn contains(&self, layer: Layer) -> bool {
        self.layers().contains(&layer)
    }

    /// The URL form, `a,b`.
    pub fn to_path(&self) -> String {
        self.layers()
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A response content coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Brotli];

    /// The `Content-Encoding` token (`None` for identity).
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The best encoding an `Accept-Encoding` header allows: brotli, then gzip, then
    /// identity (q-values honoured; `q=0` refuses).
    pub fn negotiate(accept: Option<&str>) -> Encoding {
        let Some(accept) = accept else {
            return Encoding::Identity;
        };
        let (mut br, mut gzip, mut star) = (None, None, None);
        for part in accept.split(',') {
            let mut it = part.split(';');
            let token = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match token.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
        let ok = |v: Option<f32>| v.or(star).is_some_and(|q| q > 0.0);
        if ok(br) {
            Encoding::Brotli
        } else if ok(gzip) {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

/// A tile representation ready to send: empty `bytes` means "no feature" (204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileBody {
    pub bytes: Bytes,
    pub encoding: Encoding,
    /// Strong ETag (quoted), `None` for an empty tile.
    pub etag: Option<String>,
}

impl TileBody {
    fn new(bytes: Vec<u8>, encoding: Encoding) -> TileBody {
        let etag = (!bytes.is_empty()).then(|| format!("\"{}\"", digest(&bytes)));
        TileBody {
            bytes: Bytes::from(bytes),
            encoding,
            etag,
        }
    }

    /// Whether the tile has no feature.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The first 128 bits of SHA-256 of the bytes sent, hex: the strong ETag of a
/// representation. Each encoding's bytes get their own validator, and equal content gives
/// equal ETags across restarts and instances.
fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// Compresses a tile body (gzip level 1, brotli quality 5). Gzip level 1 because dense
/// city tiles are large: on a 270 KB z14 pipelines tile level 6 takes ~11 ms and level 1
/// ~3.6 ms for 5 % more bytes (134 KB against 127 KB), and the compression was most of the
/// tile's p99.
pub fn compress(bytes: &[u8], encoding: Encoding) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Identity => Ok(bytes.to_vec()),
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(bytes.len() / 2),
                flate2::Compression::new(1),
            );
            e.write_all(bytes)?;
            e.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::with_capacity(bytes.len() / 2);
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(bytes)?;
                w.flush()?;
            }
            Ok(out)
        }
    }
}

/// Why a tile could not be served.
#[derive(Debug, thiserror::Error)]
pub enum TileServiceError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("compression failed: {0}")]
    Compress(#[from] std::io::Error),
    #[error("render task failed: {0}")]
    Join(String),
    #[error("risk statistics failed: {0}")]
    Derived(String),
}

/// A served tile: the body and the role class it was cut for.
#[derive(Debug, Clone)]
pub struct ServedTile {
    pub body: Arc<TileBody>,
    pub class: Role,
    /// Whether the tile may carry attributes above the lowest role (so shared caches must
    /// not keep it).
    pub private: bool,
}

struct Inner {
    index: Arc<SpatialIndex>,
    config: Arc<TilesConfig>,
    cache: TileCache,
}

/// The tile service: a cheap `Clone` handle for [`crate::state::AppState`].
#[derive(Clone)]
pub struct TileService {
    inner: Arc<Inner>,
}

impl TileService {
    /// A service over `index` with the built-in `data/tiles.toml`. The environment
    /// variable [`CACHE_BYTES_ENV`] overrides the cache size (0 turns the cache off, as the
    /// uncached load benchmark needs); an unparsable value is logged and ignored.
    pub fn new(index: Arc<SpatialIndex>) -> TileService {
        let mut config = TilesConfig::builtin().clone();
        if let Ok(v) = std::env::var(CACHE_BYTES_ENV) {
            match v.trim().parse::<u64>() {
                Ok(n) => config.defaults.cache_bytes = n,
                Err(_) => {
                    tracing::warn!(value = %v, "{CACHE_BYTES_ENV} is not a byte count; ignored")
                }
            }
        }
        Self::with_config(index, Arc::new(config))
    }

    /// A service with an explicit configuration (tests, benches, exports).
    pub fn with_config(index: Arc<SpatialIndex>, config: Arc<TilesConfig>) -> TileService {
        let d = &config.defaults;
        let mut minzoom = [0u8; SPATIAL_LAYERS];
        for lc in config.layers() {
            if let Some(i) = lc.layer.spatial_index() {
                minzoom[i] = lc.minzoom;
            }
        }
        let cache = TileCache::new(
            d.cache_bytes,
            config.classes().to_vec(),
            f64::from(d.buffer) / f64::from(d.extent),
            minzoom,
        );
        TileService {
            inner: Arc::new(Inner {
                index,
                config,
                cache,
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &TilesConfig {
        &self.inner.config
    }

    /// The index tiles are cut from.
    pub fn index(&self) -> &Arc<SpatialIndex> {
        &self.inner.index
    }

    /// The cache (for metrics and tests).
    pub fn cache(&self) -> &TileCache {
        &self.inner.cache
    }

    /// Renders a tile now, on the calling thread, bypassing the cache.
    pub fn render(
        &self,
        layers: &LayerSet,
        tile: TileCoord,
        class: Role,
    ) -> Result<Vec<u8>, RenderError> {
        self.render_in(layers, tile, class, Datum::Cgcs2000)
    }

    /// [`TileService::render`] in `datum`.
    pub fn render_in(
        &self,
        layers: &LayerSet,
        tile: TileCoord,
        class: Role,
        datum: Datum,
    ) -> Result<Vec<u8>, RenderError> {
        render::render_tile_in(
            &self.inner.index,
            &self.inner.config,
            layers.layers(),
            tile,
            class,
            datum,
        )
    }

    /// The tile `layers`/`tile` for a caller of `role`, in `encoding`: from the cache, or
    /// rendered on the blocking pool and cached.
    pub async fn tile(
        &self,
        layers: LayerSet,
        tile: TileCoord,
        role: Role,
        encoding: Encoding,
    ) -> Result<ServedTile, TileServiceError> {
        self.tile_in(layers, tile, role, encoding, Datum::Cgcs2000)
            .await
    }

    /// [`TileService::tile`] cut in `datum` (cached under its own key).
    pub async fn tile_in(
        &self,
        layers: LayerSet,
        tile: TileCoord,
        role: Role,
        encoding: Encoding,
        datum: Datum,
    ) -> Result<ServedTile, TileServiceError> {
        let class = self.inner.config.class_for(layers.layers(), role);
        let served = |body| ServedTile {
            body,
            class,
            private: class > Role::Viewer,
        };
        let key = TileKey {
            layers,
            z: tile.z(),
            x: tile.x(),
            y: tile.y(),
            class,
            encoding,
            datum,
        };
        let cache = &self.inner.cache;
        if let Some(body) = cache.get(&key) {
            cache.count(true);
            return Ok(served(body));
        }
        cache.count(false);
        // Noted before the index is read: see `cache` on stale refills.
        let generation = cache.generation();
        let identity_key = TileKey {
            encoding: Encoding::Identity,
            ..key
        };
        let cached_identity = if encoding == Encoding::Identity {
            None
        } else {
            cache.get(&identity_key)
        };
        let this = self.clone();
        let body =
            tokio::task::spawn_blocking(move || -> Result<Arc<TileBody>, TileServiceError> {
                let cache = &this.inner.cache;
                let identity = match cached_identity {
                    Some(b) => b,
                    None => {
                        let raw = this.render_in(&layers, tile, class, datum)?;
                        let b = Arc::new(TileBody::new(raw, Encoding::Identity));
                        cache.insert(identity_key, b.clone(), generation);
                        b
                    }
                };
                if encoding == Encoding::Identity {
                    return Ok(identity);
                }
                let body = if identity.is_empty() {
                    Arc::new(TileBody {
                        encoding,
                        ..(*identity).clone()
                    })
                } else {
                    Arc::new(TileBody::new(
                        compress(&identity.bytes, encoding)?,
                        encoding,
                    ))
                };
                cache.insert(key, body.clone(), generation);
                Ok(body)
            })
            .await
            .map_err(|e| TileServiceError::Join(e.to_string()))??;
        Ok(served(body))
    }

    /// Invalidates every cached tile a change of one record touches: call after the index
    /// applied it, with the record as it was (`old`) and as it is now (`new`).
    pub fn record_changed(&self, old: Option<&Record>, new: Option<&Record>) {
        let Some(layer) = new.or(old).map(Record::layer) else {
            return;
        };
        if layer.spatial_index().is_none() {
            return;
        }
        let mut boxes: Vec<Bbox> = [old, new]
            .into_iter()
            .flatten()
            .filter_map(|r| r.geometry().and_then(|g| Bbox::of(&g)))
            .collect();
        // GCJ-02 tiles hold the record at its offset position.
        let offset: Vec<Bbox> = boxes.iter().map(|b| Datum::Gcj02.display_bbox(b)).collect();
        boxes.extend(offset);
        self.inner.cache.invalidate(layer, &boxes);
    }

    /// Drops every cached tile (after a reload of the whole index).
    pub fn clear(&self) {
        self.inner.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sets_parse_with_clear_errors() {
        let s = LayerSet::parse("pipelines,risk_points").unwrap();
        assert_eq!(s.layers(), &[Layer::Pipelines, Layer::RiskPoints]);
        assert_eq!(s.to_path(), "pipelines,risk_points");
        assert_eq!(
            LayerSet::parse("pipes").unwrap_err(),
            LayerSetError::Unknown("pipes".into())
        );
        assert!(LayerSet::parse("pipes").unwrap_err().is_not_found());
        assert!(LayerSet::parse("owners").unwrap_err().is_not_found());
        assert_eq!(
            LayerSet::parse("sensors,sensors").unwrap_err(),
            LayerSetError::Duplicate(Layer::Sensors)
        );
        assert_eq!(
            LayerSet::parse("a,b,c,d,e,f,g,h,i").unwrap_err(),
            LayerSetError::TooMany(9)
        );
        let long = vec!["pipelines"; 10_000].join(",");
        assert_eq!(
            LayerSet::parse(&long).unwrap_err(),
            LayerSetError::TooLong(long.len())
        );
        assert_eq!(
            LayerSet::parse("pipelines,").unwrap_err(),
            LayerSetError::EmptyName
        );
    }

    #[test]
    fn encoding_negotiation() {
        assert_eq!(Encoding::negotiate(None), Encoding::Identity);
        assert_eq!(
            Encoding::negotiate(Some("gzip, deflate, br")),
            Encoding::Brotli
        );
        assert_eq!(Encoding::negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(
            Encoding::negotiate(Some("br;q=0, gzip;q=0.5")),
            Encoding::Gzip
        );
        assert_eq!(Encoding::negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("*")), Encoding::Brotli);
        assert_eq!(Encoding::negotiate(Some("*;q=0")), Encoding::Identity);
    }

    #[test]
    fn compression_round_trips() {
        use std::io::Read;
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let gz = compress(&data, Encoding::Gzip).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let br = compress(&data, Encoding::Brotli).unwrap();
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(gz.len() < data.len() && br.len() < data.len());
    }
}
