//! The in-memory tile cache: a moka cache bounded in bytes (a weigher counts each body),
//! keyed by everything that changes a response's bytes — layer set, z/x/y, role class,
//! content encoding and datum — and invalidated exactly for the tiles a write touches.
//!
//! **Exact invalidation.** A record can only appear in the tiles whose buffered bounds meet
//! its bounding box, so a write of a record of layer L with old box A and new box B makes
//! stale exactly the tiles, at every zoom from L's minimum zoom to z22, whose box plus the
//! buffer meets A or B, in every cached layer set that contains L (the budget, clustering
//! and size filters are all per tile, so no other tile changes). Small ranges are
//! invalidated key by key; ranges too large to enumerate (a district boundary at z20)
//! become one moka predicate over the cached keys. GCJ-02 tiles ([`super::datum`]) are
//! covered by the caller adding each box's GCJ-02 image to the boxes.
//!
//! **No stale refill.** A render that read the index before a write could finish after the
//! write's invalidation and put the old tile back. Every render notes the cache generation
//! before it reads the index and inserts only if the generation is unchanged, checked under
//! a shared lock that invalidation takes exclusively (and bumps the generation under).

use super::{Encoding, LayerSet, TileBody};
use lifeline_model::datum::Datum;
use lifeline_model::{Bbox, Layer, Role};
use lifeline_tiles::tilemath::{lonlat_to_mercator, HALF_WORLD_M, MAX_ZOOM};
use moka::sync::Cache;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A cached response body's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileKey {
    pub layers: LayerSet,
    pub z: u8,
    pub x: u32,
    pub y: u32,
    pub class: Role,
    pub encoding: Encoding,
    /// The datum the tile is cut in.
    pub datum: Datum,
}

/// Above this many keys per zoom, invalidation scans the cache with a predicate instead
/// of removing keys one by one.
const DIRECT_LIMIT: u64 = 4096;

/// Per-entry bookkeeping counted on top of the body (key, Arc, moka's node).
const ENTRY_OVERHEAD: u32 = 160;

/// An inclusive rectangle of tiles at one zoom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub z: u8,
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Span {
    fn len(&self) -> u64 {
        u64::from(self.x1 - self.x0 + 1) * u64::from(self.y1 - self.y0 + 1)
    }

    fn contains(&self, z: u8, x: u32, y: u32) -> bool {
        z == self.z && (self.x0..=self.x1).contains(&x) && (self.y0..=self.y1).contains(&y)
    }
}

/// The tiles at zoom `z` whose bounds grown by `buffer_frac` of a tile meet `bbox`.
pub fn buffered_span(bbox: &Bbox, z: u8, buffer_frac: f64) -> Span {
    let n = f64::from(1u32 << z);
    let world = 2.0 * HALF_WORLD_M;
    let unit = |lon: f64, lat: f64| {
        let m = lonlat_to_mercator(lon.clamp(-180.0, 180.0), lat);
        (
            (m.x + HALF_WORLD_M) / world * n,
            (HALF_WORLD_M - m.y) / world * n,
        )
    };
    let (fx0, fy0) = unit(bbox.min_x(), bbox.max_y());
    let (fx1, fy1) = unit(bbox.max_x(), bbox.min_y());
    // A hair of slack so float noise never makes the span too small.
    let slack = buffer_frac + 1e-9;
    let last = (1u32 << z) - 1;
    let lo = |v: f64| ((v - slack).floor().max(0.0) as u32).min(last);
    let hi = |v: f64| ((v + slack).floor().max(0.0) as u32).min(last);
    Span {
        z,
        x0: lo(fx0),
        y0: lo(fy0),
        x1: hi(fx1),
        y1: hi(fy1),
    }
}

/// The cache with its invalidation bookkeeping.
pub struct TileCache {
    cache: Option<Cache<TileKey, Arc<TileBody>>>,
    /// Inserts hold it shared, invalidation exclusively (see the module docs).
    guard: RwLock<()>,
    generation: AtomicU64,
    /// Layer sets that have been cached, so invalidation knows which keys can exist.
    seen: Mutex<Vec<LayerSet>>,
    classes: Vec<Role>,
    buffer_frac: f64,
    minzoom: [u8; crate::SPATIAL_LAYERS],
    /// Tile requests answered from the cache, and those that had to render (metrics).
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What the cache did so far and holds now, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that rendered (or compressed) their tile.
    pub misses: u64,
    /// Tiles held now.
    pub entries: u64,
    /// Bytes held now (the weigher's measure: body plus a per-entry overhead).
    pub bytes: u64,
}

impl TileCache {
    /// A cache of at most `max_bytes` (0: no caching at all); `classes` are the role
    /// classes keys can carry, `buffer_frac` the tile buffer as a fraction of a tile, and
    /// `minzoom` each spatial layer's minimum zoom.
    pub fn new(
        max_bytes: u64,
        classes: Vec<Role>,
        buffer_frac: f64,
        minzoom: [u8; crate::SPATIAL_LAYERS],
    ) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_k: &TileKey, v: &Arc<TileBody>| {
                    u32::try_from(v.bytes.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(ENTRY_OVERHEAD)
                })
                .support_invalidation_closures()
                .build()
        });
        TileCache {
            cache,
            guard: RwLock::new(()),
            generation: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
            classes,
            buffer_frac,
            minzoom,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Counts one tile request as answered from the cache (`hit`) or not.
    pub fn count(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Hits, misses and what the cache holds now.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = self.cache.as_ref().map_or((0, 0), |c| {
            // moka applies pending inserts lazily; settle them so the sizes are current.
            c.run_pending_tasks();
            (c.entry_count(), c.weighted_size())
        });
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }

    /// Whether caching is on.
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The generation to note before reading the index for a render.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A cached body.
    pub fn get(&self, key: &TileKey) -> Option<Arc<TileBody>> {
        self.cache.as_ref()?.get(key)
    }

    /// Caches a body rendered from the index as it was at `generation`; refused (false)
    /// if a write has invalidated tiles since.
    pub fn insert(&self, key: TileKey, body: Arc<TileBody>, generation: u64) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        let _shared = self.guard.read();
        if self.generation.load(Ordering::SeqCst) != generation {
            return false;
        }
        {
            let mut seen = self.seen.lock();
            if !seen.contains(&key.layers) {
                seen.push(key.layers);
            }
        }
        cache.insert(key, body);
        true
    }

    /// Drops every tile of `layer` that a record with these bounding boxes (old and new)
    /// can appear in.
    pub fn invalidate(&self, layer: Layer, boxes: &[Bbox]) {
        let _exclusive = self.guard.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let Some(cache) = &self.cache else { return };
        let Some(slot) = layer.spatial_index() else {
            return;
        };
        if boxes.is_empty() {
            return;
        }
        let sets: Vec<LayerSet> = self
            .seen
            .lock()
            .iter()
            .filter(|s| s.contains(layer))
            .copied()
            .collect();
        if sets.is_empty() {
            return;
        }
        let per_tile =
            (sets.len() * self.classes.len() * Encoding::ALL.len() * Datum::ALL.len()) as u64;
        let mut scan: Vec<Span> = Vec::new();
        for z in self.minzoom[slot]..=MAX_ZOOM {
            let spans: Vec<Span> = boxes
                .iter()
                .map(|b| buffered_span(b, z, self.buffer_frac))
                .collect();
            let tiles: u64 = spans.iter().map(Span::len).sum();
            if tiles.saturating_mul(per_tile) > DIRECT_LIMIT {
                scan.extend(spans);
                continue;
            }
            for s in &spans {
                for x in s.x0..=s.x1 {
                    for y in s.y0..=s.y1 {
                        for &layers in &sets {
                            for &class in &self.classes {
                                for &encoding in &Encoding::ALL {
                                    for &datum in &Datum::ALL {
                                        cache.invalidate(&TileKey {
                                            layers,
                                            z,
                                            x,
                                            y,
                                            class,
                                            encoding,
                                            datum,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if !scan.is_empty() {
            // moka checks pending predicates on every read, so the entries are gone for
            // readers at once; the scan that removes them runs during maintenance.
            let predicate = move |k: &TileKey, _: &Arc<TileBody>| {
                k.layers.contains(layer) && scan.iter().any(|s| s.contains(k.z, k.x, k.y))
            };
            if cache.invalidate_entries_if(predicate).is_err() {
                // Closures are enabled at build time, so this cannot happen; be safe anyway.
                cache.invalidate_all();
            }
        }
    }

    /// Drops everything (after a bulk load replaced the index).
    pub fn clear(&self) {
        let _exclusive = self.guard.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }

    /// Entries and weighted bytes (approximate until moka's pending work runs).
    pub fn usage(&self) -> (u64, u64) {
        match &self.cache {
            Some(c) => {
                c.run_pending_tasks();
                (c.entry_count(), c.weighted_size())
            }
            None => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_tiles::TileCoord;

    #[test]
    fn buffered_span_covers_the_tile_and_its_buffer_neighbours() {
        let t = TileCoord::new(14, 13279, 6795).unwrap();
        let b = t.bounds_lonlat();
        let (w, h) = (b.width(), b.height());
        // A box well inside the tile: just that tile.
        let inner = Bbox::new(
            b.min().x + w * 0.4,
            b.min().y + h * 0.4,
            b.min().x + w * 0.6,
            b.min().y + h * 0.6,
        )
        .unwrap();
        let s = buffered_span(&inner, 14, 64.0 / 4096.0);
        assert_eq!((s.x0, s.x1, s.y0, s.y1), (13279, 13279, 6795, 6795));
        // A point just east of the tile's east edge, inside the buffer: both tiles.
        let east = b.max().x + w * 0.01;
        let p = Bbox::new(east, b.min().y + h / 2.0, east, b.min().y + h / 2.0).unwrap();
        let s = buffered_span(&p, 14, 64.0 / 4096.0);
        assert_eq!((s.x0, s.x1), (13279, 13280));
        // Beyond the buffer: only the neighbour.
        let far = b.max().x + w * 0.1;
        let p = Bbox::new(far, b.min().y + h / 2.0, far, b.min().y + h / 2.0).unwrap();
        let s = buffered_span(&p, 14, 64.0 / 4096.0);
        assert_eq!((s.x0, s.x1), (13280, 13280));
    }
}
