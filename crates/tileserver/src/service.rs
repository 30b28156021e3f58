//! The tile use cases the HTTP layer (`src/http/tiles.rs`) calls: the parts of a tile path
//! parsed with a clear 4xx for each malformed one ([`parse_tile_path`], [`Layers`]), a tile
//! served with its `Cache-Control` ([`TileService::serve`]: stored layers from the cache,
//! derived layers cut now and never cached), and the TileJSON and MBTiles-style metadata
//! documents of a layer list ([`TileService::tilejson_doc`],
//! [`TileService::metadata_doc`]). The handler negotiates the encoding, and sets ETags and
//! the 204/304 answers.

use super::derived::{self, MixedSet};
use super::{
    tilejson, Datum, Encoding, LayerSet, LayerSetError, TileBody, TileService, TileServiceError,
    MAX_SEGMENT_BYTES,
};
use lifeline_model::Role;
use lifeline_risk::RiskEngine;
use lifeline_tiles::TileCoord;
use serde_json::Value;
use std::sync::Arc;

/// Why a tile request was refused.
#[derive(Debug, thiserror::Error)]
pub enum TileRequestError {
    /// An unknown layer, extension or resource.
    #[error("{0}")]
    NotFound(String),
    /// A malformed path part, or an option a layer does not offer.
    #[error("{0}")]
    BadRequest(String),
    /// The tile could not be rendered.
    #[error(transparent)]
    Service(#[from] TileServiceError),
}

impl From<LayerSetError> for TileRequestError {
    /// Unknown layers are "not found"; everything else is a malformed request.
    fn from(e: LayerSetError) -> Self {
        if e.is_not_found() {
            TileRequestError::NotFound(e.to_string())
        } else {
            TileRequestError::BadRequest(e.to_string())
        }
    }
}

/// A path segment shortened for an error message.
pub fn short(s: &str) -> String {
    let mut t: String = s.chars().take(24).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

fn coordinate(name: &str, s: &str) -> Result<u32, TileRequestError> {
    s.parse::<u32>().map_err(|_| {
        TileRequestError::BadRequest(format!(
            "tile {name} '{}' is not a non-negative integer",
            short(s)
        ))
    })
}

/// Parses `{layers}/{z}/{x}/{y}.{mvt|pbf}` of stored layers.
pub fn parse_tile_path(
    layers: &str,
    z: &str,
    x: &str,
    file: &str,
) -> Result<(LayerSet, TileCoord), TileRequestError> {
    check_lengths(z, x, file)?;
    let set = LayerSet::parse(layers)?;
    Ok((set, parse_tile_coord(file, z, x)?))
}

fn check_lengths(z: &str, x: &str, file: &str) -> Result<(), TileRequestError> {
    for (name, seg) in [("z", z), ("x", x), ("y", file)] {
        if seg.len() > MAX_SEGMENT_BYTES {
            return Err(TileRequestError::BadRequest(format!(
                "the tile {name} segment is {} bytes long; at most {MAX_SEGMENT_BYTES} are accepted",
                seg.len()
            )));
        }
    }
    Ok(())
}

/// Parses `{z}/{x}/{y}.{mvt|pbf}` (segment lengths checked by the caller).
fn parse_tile_coord(file: &str, z: &str, x: &str) -> Result<TileCoord, TileRequestError> {
    let (y, ext) = file.rsplit_once('.').ok_or_else(|| {
        TileRequestError::NotFound(format!(
            "'{}' has no extension; tiles are {{y}}.mvt or {{y}}.pbf",
            short(file)
        ))
    })?;
    if ext != "mvt" && ext != "pbf" {
        return Err(TileRequestError::NotFound(format!(
            "tiles are served as .mvt or .pbf, not .{}",
            short(ext)
        )));
    }
    TileCoord::new(
        coordinate("z", z)?,
        coordinate("x", x)?,
        coordinate("y", y)?,
    )
    .map_err(|e| TileRequestError::BadRequest(e.to_string()))
}

/// A tile URL's layer list: stored layers only, or naming derived ones too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layers {
    Stored(LayerSet),
    Mixed(MixedSet),
}

impl Layers {
    /// Parses a layer list (derived names first recognised, then the stored ones).
    pub fn parse(segment: &str) -> Result<Layers, TileRequestError> {
        Ok(match MixedSet::parse(segment)? {
            Some(m) => Layers::Mixed(m),
            None => Layers::Stored(LayerSet::parse(segment)?),
        })
    }

    /// The stored layers of the list.
    pub fn stored(&self) -> &LayerSet {
        match self {
            Layers::Stored(s) => s,
            Layers::Mixed(m) => &m.stored,
        }
    }
}

/// The layer list of a TileJSON document's file name, `{layers}.json`.
pub fn tilejson_layers(file: &str) -> Result<Layers, TileRequestError> {
    let layers = file.strip_suffix(".json").ok_or_else(|| {
        TileRequestError::NotFound(format!(
            "no resource /tiles/{}; TileJSON is at /tiles/{{layers}}.json",
            short(file)
        ))
    })?;
    Layers::parse(layers)
}

/// The parts of a tile path as given: `/tiles/{layers}/{z}/{x}/{file}`.
#[derive(Debug, Clone, Copy)]
pub struct TilePath<'a> {
    pub layers: &'a str,
    pub z: &'a str,
    pub x: &'a str,
    pub file: &'a str,
}

/// A tile and how long HTTP caches may keep it.
#[derive(Debug, Clone)]
pub struct TileAnswer {
    pub body: Arc<TileBody>,
    /// `Cache-Control`: the stored layers' (shared or private by the role class), or the
    /// derived layers' (which change with alarms).
    pub cache_control: String,
    /// What the tile let its caller read, when it was cut for a role above the lowest (its
    /// attributes are restricted): the stored layers and the tile, for the read audit.
    pub read: Option<TileRead>,
}

/// A tile of restricted attributes as served: its stored layers and coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct TileRead {
    pub layers: Vec<lifeline_model::Layer>,
    pub coord: TileCoord,
}

impl TileService {
    /// Serves the tile of `path` for a caller of `role` in `encoding`. Derived layers
    /// (`grid_stats`, `alarm_density`) are cut now from `risk`, in CGCS2000 only; stored
    /// layers come from the cache, in `datum`.
    pub async fn serve(
        &self,
        risk: Arc<RiskEngine>,
        path: TilePath<'_>,
        datum: Datum,
        role: Role,
        encoding: Encoding,
    ) -> Result<TileAnswer, TileRequestError> {
        let TilePath { layers, z, x, file } = path;
        let config = self.config();
        if let Some(set) = MixedSet::parse(layers)? {
            if datum != Datum::Cgcs2000 {
                return Err(TileRequestError::BadRequest(format!(
                    "datum={datum} is not available for the derived layers grid_stats and alarm_density"
                )));
            }
            check_lengths(z, x, file)?;
            let coord = parse_tile_coord(file, z, x)?;
            let served = self.mixed_tile(risk, set, coord, role, encoding).await?;
            let cc = &config.derived.cache_control;
            let cache_control = match served.private {
                true => format!("private, {cc}"),
                false => cc.clone(),
            };
            return Ok(TileAnswer {
                body: served.body,
                cache_control,
                read: None,
            });
        }
        let (set, coord) = parse_tile_path(layers, z, x, file)?;
        let read_layers = set.layers().to_vec();
        let served = self.tile_in(set, coord, role, encoding, datum).await?;
        let d = &config.defaults;
        let cache_control = match served.private {
            true => d.private_cache_control.clone(),
            false => d.cache_control.clone(),
        };
        Ok(TileAnswer {
            body: served.body,
            cache_control,
            read: served.private.then_some(TileRead {
                layers: read_layers,
                coord,
            }),
        })
    }

    /// The role class whose attributes a document of `layers` lists for `role`.
    fn class(&self, layers: &Layers, role: Role) -> Role {
        self.config().class_for(layers.stored().layers(), role)
    }

    /// The TileJSON 3.0.0 document of a layer list as `role` sees it, with tile URLs under
    /// `base`, and whether it is private (lists attributes above the lowest role).
    pub fn tilejson_doc(&self, layers: &Layers, role: Role, base: &str) -> (Value, bool) {
        let (cfg, index, class) = (self.config(), self.index(), self.class(layers, role));
        let doc = match layers {
            Layers::Mixed(m) => derived::tilejson(cfg, index, m, class, base),
            Layers::Stored(s) => tilejson::tilejson(cfg, index, s, class, base),
        };
        (doc, class > Role::Viewer)
    }

    /// A file beside the tiles of the layer list `segment`: only `metadata.json`
    /// (MBTiles-style, what GDAL's MVT driver reads), as `role` sees it, and whether it is
    /// private.
    pub fn metadata_doc(
        &self,
        segment: &str,
        file: &str,
        role: Role,
    ) -> Result<(Value, bool), TileRequestError> {
        let layers = Layers::parse(segment)?;
        if file != "metadata.json" {
            return Err(TileRequestError::NotFound(format!(
                "no resource /tiles/{}/{}; tiles are /tiles/{{layers}}/{{z}}/{{x}}/{{y}}.mvt",
                short(segment),
                short(file)
            )));
        }
        let (cfg, index, class) = (self.config(), self.index(), self.class(&layers, role));
        let doc = match &layers {
            Layers::Mixed(m) => derived::mbtiles_metadata(cfg, index, m, class),
            Layers::Stored(s) => tilejson::mbtiles_metadata(cfg, index, s, class),
        };
        Ok((doc, class > Role::Viewer))
    }
}
