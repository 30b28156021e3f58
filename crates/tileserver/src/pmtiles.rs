//! PMTiles v3 export, for field crews working offline: every tile of a layer set over a
//! zoom range, cut from the index, gzip-compressed, in one archive that the `pmtiles`
//! tools open and MapLibre serves through the pmtiles protocol.
//!
//! Layout (spec v3): the 127-byte header, the root directory, the JSON metadata, the leaf
//! directories, then the tile data in tile-id order. Tile ids run along a Hilbert curve per
//! zoom. Identical tiles (open country, the inside of a big grid cell) are stored once, and
//! consecutive ids with the same content become one run-length entry. Directories and
//! metadata are gzip-compressed too (header: internal and tile compression both gzip).
//! Empty tiles are left out, as the spec allows.
//!
//! [`Reader`] reads such archives back (used by the tests; small and strict).

use super::config::TilesConfig;
use super::{cache, render, tilejson, LayerSet, RenderError};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use lifeline_index::SpatialIndex;
use lifeline_model::Role;
use lifeline_tiles::TileCoord;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 127;
/// The header plus the root directory must fit in the first 16 KiB (spec §4).
pub const ROOT_LIMIT: usize = 16_384;
/// `Compression` value for gzip.
pub const COMPRESSION_GZIP: u8 = 2;
/// `TileType` value for Mapbox Vector Tiles.
pub const TILE_TYPE_MVT: u8 = 1;

/// Why an export or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum PmtilesError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("zoom range {minzoom}..={maxzoom} is not within 0..=22 in order")]
    Zoom { minzoom: u8, maxzoom: u8 },
    #[error("not a PMTiles v3 archive: {0}")]
    Format(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PmtilesError + '_ {
    move |source| PmtilesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The Hilbert tile id of z/x/y: all tiles of lower zooms first, then the position along
/// the zoom's Hilbert curve.
pub fn zxy_to_tileid(z: u8, x: u32, y: u32) -> u64 {
    let base = ((1u64 << (2 * u32::from(z))) - 1) / 3;
    let n = 1u64 << z;
    let (mut x, mut y) = (u64::from(x), u64::from(y));
    let mut d = 0u64;
    let mut s = n / 2;
    while s > 0 {
        let rx = u64::from(x & s > 0);
        let ry = u64::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant (over the whole curve's side, as in the reference algorithm).
        if ry == 0 {
            if rx == 1 {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    base + d
}

/// The inverse of [`zxy_to_tileid`].
pub fn tileid_to_zxy(id: u64) -> (u8, u32, u32) {
    let mut z = 0u8;
    let mut base = 0u64;
    loop {
        let count = 1u64 << (2 * u32::from(z));
        if id < base + count {
            break;
        }
        base += count;
        z += 1;
    }
    let n = 1u64 << z;
    let mut t = id - base;
    let (mut x, mut y) = (0u64, 0u64);
    let mut s = 1u64;
    while s < n {
        let rx = 1 & (t / 2);
        let ry = 1 & (t ^ rx);
        if ry == 0 {
            if rx == 1 {
                x = s - 1 - x;
                y = s - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        x += s * rx;
        y += s * ry;
        t /= 4;
        s *= 2;
    }
    (z, x as u32, y as u32)
}

/// One directory entry: a run of `run_length` tiles from `tile_id` sharing one content at
/// `offset`/`length` in the tile data (or, with `run_length` 0, a leaf directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tile_id: u64,
    pub offset: u64,
    pub length: u32,
    pub run_length: u32,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, PmtilesError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| PmtilesError::Format("directory ends inside a varint".into()))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(PmtilesError::Format("varint longer than 64 bits".into()))
}

/// A directory as the spec lays it out (uncompressed): count, then ids (deltas), run
/// lengths, lengths, offsets (0 = right after the previous entry, else offset + 1).
pub fn serialize_directory(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 6 + 8);
    put_varint(&mut out, entries.len() as u64);
    let mut last = 0;
    for e in entries {
        put_varint(&mut out, e.tile_id - last);
        last = e.tile_id;
    }
    for e in entries {
        put_varint(&mut out, u64::from(e.run_length));
    }
    for e in entries {
        put_varint(&mut out, u64::from(e.length));
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 && e.offset == entries[i - 1].offset + u64::from(entries[i - 1].length) {
            put_varint(&mut out, 0);
        } else {
            put_varint(&mut out, e.offset + 1);
        }
    }
    out
}

/// Parses an uncompressed directory.
pub fn deserialize_directory(buf: &[u8]) -> Result<Vec<Entry>, PmtilesError> {
    let mut pos = 0;
    let n = get_varint(buf, &mut pos)? as usize;
    if n > buf.len() {
        return Err(PmtilesError::Format(format!(
            "directory claims {n} entries"
        )));
    }
    let mut entries = vec![
        Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0
        };
        n
    ];
    let mut last = 0u64;
    for e in entries.iter_mut() {
        last += get_varint(buf, &mut pos)?;
        e.tile_id = last;
    }
    for e in entries.iter_mut() {
        e.run_length = get_varint(buf, &mut pos)? as u32;
    }
    for e in entries.iter_mut() {
        e.length = get_varint(buf, &mut pos)? as u32;
    }
    for i in 0..n {
        let v = get_varint(buf, &mut pos)?;
        entries[i].offset = if v == 0 && i > 0 {
            entries[i - 1].offset + u64::from(entries[i - 1].length)
        } else if v == 0 {
            return Err(PmtilesError::Format("first offset is 0 (relative)".into()));
        } else {
            v - 1
        };
    }
    Ok(entries)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    e.write_all(bytes).expect("write to Vec");
    e.finish().expect("finish to Vec")
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, PmtilesError> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| PmtilesError::Format(format!("bad gzip data: {e}")))?;
    Ok(out)
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Header {
    pub root_offset: u64,
    pub root_length: u64,
    pub metadata_offset: u64,
    pub metadata_length: u64,
    pub leaf_offset: u64,
    pub leaf_length: u64,
    pub data_offset: u64,
    pub data_length: u64,
    pub addressed_tiles: u64,
    pub tile_entries: u64,
    pub tile_contents: u64,
    pub clustered: bool,
    pub internal_compression: u8,
    pub tile_compression: u8,
    pub tile_type: u8,
    pub min_zoom: u8,
    pub max_zoom: u8,
    /// West, south, east, north, degrees.
    pub bounds: [f64; 4],
    pub center_zoom: u8,
    pub center: [f64; 2],
}

fn e7(v: f64) -> i32 {
    (v * 1e7).round() as i32
}

impl Header {
    /// The 127 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.extend_from_slice(b"PMTiles");
        b.push(3);
        for v in [
            self.root_offset,
            self.root_length,
            self.metadata_offset,
            self.metadata_length,
            self.leaf_offset,
            self.leaf_length,
            self.data_offset,
            self.data_length,
            self.addressed_tiles,
            self.tile_entries,
            self.tile_contents,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(u8::from(self.clustered));
        b.push(self.internal_compression);
        b.push(self.tile_compression);
        b.push(self.tile_type);
        b.push(self.min_zoom);
        b.push(self.max_zoom);
        for v in self.bounds {
            b.extend_from_slice(&e7(v).to_le_bytes());
        }
        b.push(self.center_zoom);
        for v in self.center {
            b.extend_from_slice(&e7(v).to_le_bytes());
        }
        b.try_into().expect("header is 127 bytes")
    }

    /// Parses the 127 header bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Header, PmtilesError> {
        if b.len() < HEADER_LEN || &b[..7] != b"PMTiles" || b[7] != 3 {
            return Err(PmtilesError::Format("bad magic or version".into()));
        }
        let u =
            |i: usize| u64::from_le_bytes(b[8 + i * 8..16 + i * 8].try_into().expect("8 bytes"));
        let i = |at: usize| {
            f64::from(i32::from_le_bytes(
                b[at..at + 4].try_into().expect("4 bytes"),
            )) / 1e7
        };
        Ok(Header {
            root_offset: u(0),
            root_length: u(1),
            metadata_offset: u(2),
            metadata_length: u(3),
            leaf_offset: u(4),
            leaf_length: u(5),
            data_offset: u(6),
            data_length: u(7),
            addressed_tiles: u(8),
            tile_entries: u(9),
            tile_contents: u(10),
            clustered: b[96] == 1,
            internal_compression: b[97],
            tile_compression: b[98],
            tile_type: b[99],
            min_zoom: b[100],
            max_zoom: b[101],
            bounds: [i(102), i(106), i(110), i(114)],
            center_zoom: b[118],
            center: [i(119), i(123)],
        })
    }
}

/// Splits entries into a root directory and leaf directories so that header and root fit
/// in [`ROOT_LIMIT`] (leaf size grows by 20 % until they do, as the reference writer does).
fn build_directories(entries: &[Entry]) -> (Vec<u8>, Vec<u8>) {
    let root = gzip(&serialize_directory(entries));
    if root.len() <= ROOT_LIMIT - HEADER_LEN {
        return (root, Vec::new());
    }
    let mut leaf_size = (entries.len() / 3500).max(4096);
    loop {
        let mut leaves = Vec::new();
        let mut root_entries = Vec::new();
        for chunk in entries.chunks(leaf_size) {
            let leaf = gzip(&serialize_directory(chunk));
            root_entries.push(Entry {
                tile_id: chunk[0].tile_id,
                offset: leaves.len() as u64,
                length: leaf.len() as u32,
                run_length: 0,
            });
            leaves.extend_from_slice(&leaf);
        }
        let root = gzip(&serialize_directory(&root_entries));
        if root.len() <= ROOT_LIMIT - HEADER_LEN {
            return (root, leaves);
        }
        leaf_size += leaf_size / 5;
    }
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    pub path: PathBuf,
    /// Tiles considered (every tile over the data's extent at each zoom).
    pub tiles_considered: u64,
    /// Tiles with at least one feature, all addressed by the archive.
    pub tiles_written: u64,
    /// Tiles with no feature, left out.
    pub tiles_empty: u64,
    /// Distinct tile contents stored (identical tiles are stored once).
    pub unique_contents: u64,
    /// Directory entries (runs of identical consecutive tiles count once).
    pub entries: u64,
    /// Compressed tile bytes stored.
    pub tile_bytes: u64,
    /// Size of the archive.
    pub file_bytes: u64,
    pub minzoom: u8,
    pub maxzoom: u8,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl std::fmt::Display for ExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: z{}–{}, {} tiles considered, {} written ({} distinct contents, {} entries), {} empty left out; {} tile bytes, {} bytes in all, {:.1} s",
            self.path.display(),
            self.minzoom,
            self.maxzoom,
            self.tiles_considered,
            self.tiles_written,
            self.unique_contents,
            self.entries,
            self.tiles_empty,
            self.tile_bytes,
            self.file_bytes,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Exports `layers` at zooms `minzoom..=maxzoom` from `index` to a PMTiles archive at
/// `path`, with the built-in tile settings, as a viewer sees them (an archive leaves the
/// building: it carries no attribute that needs a role). `progress` shows a bar on stderr.
pub fn export(
    index: &SpatialIndex,
    layers: &LayerSet,
    minzoom: u8,
    maxzoom: u8,
    path: &Path,
    progress: bool,
) -> Result<ExportReport, PmtilesError> {
    export_with(
        index,
        TilesConfig::builtin(),
        layers,
        Role::Viewer,
        minzoom,
        maxzoom,
        path,
        progress,
    )
}

/// [`export`] with explicit settings and role.
#[allow(clippy::too_many_arguments)]
pub fn export_with(
    index: &SpatialIndex,
    config: &TilesConfig,
    layers: &LayerSet,
    role: Role,
    minzoom: u8,
    maxzoom: u8,
    path: &Path,
    progress: bool,
) -> Result<ExportReport, PmtilesError> {
    let started = Instant::now();
    if minzoom > maxzoom || maxzoom > lifeline_tiles::tilemath::MAX_ZOOM {
        return Err(PmtilesError::Zoom { minzoom, maxzoom });
    }
    let class = config.class_for(layers.layers(), role);
    let bounds = tilejson::bounds(index, layers);
    let has_data = index
        .stats()
        .iter()
        .any(|s| layers.contains(s.layer) && s.count > 0);
    let d = &config.defaults;
    let buffer_frac = f64::from(d.buffer) / f64::from(d.extent);

    // Every tile whose buffered bounds meet the data, zoom by zoom, in tile-id order.
    let mut spans = Vec::new();
    if has_data {
        let bbox = lifeline_model::Bbox::new(bounds[0], bounds[1], bounds[2], bounds[3])
            .map_err(|e| PmtilesError::Format(e.to_string()))?;
        for z in minzoom..=maxzoom {
            spans.push(cache::buffered_span(&bbox, z, buffer_frac));
        }
    }
    let total: u64 = spans
        .iter()
        .map(|s| u64::from(s.x1 - s.x0 + 1) * u64::from(s.y1 - s.y0 + 1))
        .sum();
    let bar = if progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} z{msg} [{bar:40}] {pos}/{len} tiles ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );

    let data_path = sibling(path, "data.tmp");
    let data_file = File::create(&data_path).map_err(io(&data_path))?;
    let mut data = BufWriter::new(data_file);
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: HashMap<[u8; 16], (u64, u32)> = HashMap::new();
    let mut report = ExportReport {
        path: path.to_path_buf(),
        tiles_considered: total,
        tiles_written: 0,
        tiles_empty: 0,
        unique_contents: 0,
        entries: 0,
        tile_bytes: 0,
        file_bytes: 0,
        minzoom,
        maxzoom,
        elapsed: Duration::ZERO,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let result = (|| -> Result<(), PmtilesError> {
        for span in &spans {
            bar.set_message(span.z.to_string());
            let mut ids: Vec<(u64, TileCoord)> = Vec::new();
            for x in span.x0..=span.x1 {
                for y in span.y0..=span.y1 {
                    let t =
                        TileCoord::new(u32::from(span.z), x, y).expect("span tiles are in range");
                    ids.push((zxy_to_tileid(span.z, x, y), t));
                }
            }
            ids.sort_unstable_by_key(|(id, _)| *id);
            for batch in ids.chunks(256 * threads) {
                let per = batch.len().div_ceil(threads);
                let rendered: Vec<Result<Vec<Vec<u8>>, RenderError>> = std::thread::scope(|s| {
                    let handles: Vec<_> = batch
                        .chunks(per)
                        .map(|part| {
                            s.spawn(move || {
                                part.iter()
                                    .map(|(_, t)| {
                                        let raw = render::render_tile(
                                            index,
                                            config,
                                            layers.layers(),
                                            *t,
                                            class,
                                        )?;
                                        Ok(if raw.is_empty() { raw } else { gzip(&raw) })
                                    })
                                    .collect()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                });
                let mut i = 0;
                for part in rendered {
                    for bytes in part? {
                        let id = batch[i].0;
                        i += 1;
                        bar.inc(1);
                        if bytes.is_empty() {
                            report.tiles_empty += 1;
                            continue;
                        }
                        report.tiles_written += 1;
                        let h: [u8; 16] = Sha256::digest(&bytes)[..16].try_into().expect("16");
                        let (offset, length) = match seen.get(&h) {
                            Some(&v) => v,
                            None => {
                                let v = (report.tile_bytes, bytes.len() as u32);
                                data.write_all(&bytes).map_err(io(&data_path))?;
                                report.tile_bytes += bytes.len() as u64;
                                report.unique_contents += 1;
                                seen.insert(h, v);
                                v
                            }
                        };
                        match entries.last_mut() {
                            Some(last)
                                if last.offset == offset
                                    && last.length == length
                                    && last.tile_id + u64::from(last.run_length) == id =>
                            {
                                last.run_length += 1;
                            }
                            _ => entries.push(Entry {
                                tile_id: id,
                                offset,
                                length,
                                run_length: 1,
                            }),
                        }
                    }
                }
            }
        }
        data.flush().map_err(io(&data_path))?;
        Ok(())
    })();
    drop(data);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&data_path);
        return Err(e);
    }
    bar.finish_and_clear();
    report.entries = entries.len() as u64;

    let (root, leaves) = build_directories(&entries);
    let metadata = gzip(
        serde_json::json!({
            "name": format!("Lifeline {}", layers.to_path()),
            "description": "Chongqing underground lifelines, exported for offline use",
            "attribution": "Lifeline",
            "type": "overlay",
            "format": "pbf",
            "vector_layers": tilejson::vector_layers(config, layers, class),
        })
        .to_string()
        .as_bytes(),
    );
    let center_zoom = d.center_zoom.clamp(minzoom, maxzoom);
    let header = Header {
        root_offset: HEADER_LEN as u64,
        root_length: root.len() as u64,
        metadata_offset: (HEADER_LEN + root.len()) as u64,
        metadata_length: metadata.len() as u64,
        leaf_offset: (HEADER_LEN + root.len() + metadata.len()) as u64,
        leaf_length: leaves.len() as u64,
        data_offset: (HEADER_LEN + root.len() + metadata.len() + leaves.len()) as u64,
        data_length: report.tile_bytes,
        addressed_tiles: report.tiles_written,
        tile_entries: report.entries,
        tile_contents: report.unique_contents,
        clustered: true,
        internal_compression: COMPRESSION_GZIP,
        tile_compression: COMPRESSION_GZIP,
        tile_type: TILE_TYPE_MVT,
        min_zoom: minzoom,
        max_zoom: maxzoom,
        bounds,
        center_zoom,
        center: [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0],
    };
    // Write next to the target and rename, so a failed export never leaves half a file
    // under the final name.
    let tmp = sibling(path, "tmp");
    let write = || -> Result<u64, PmtilesError> {
        let mut out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        out.write_all(&header.to_bytes()).map_err(io(&tmp))?;
        out.write_all(&root).map_err(io(&tmp))?;
        out.write_all(&metadata).map_err(io(&tmp))?;
        out.write_all(&leaves).map_err(io(&tmp))?;
        let mut src = File::open(&data_path).map_err(io(&data_path))?;
        std::io::copy(&mut src, &mut out).map_err(io(&tmp))?;
        let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        Ok(file.metadata().map_err(io(&tmp))?.len())
    };
    let written = write();
    let _ = std::fs::remove_file(&data_path);
    match written {
        Ok(n) => report.file_bytes = n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// A small strict PMTiles v3 reader over a file (tests and checks).
pub struct Reader {
    file: File,
    path: PathBuf,
    pub header: Header,
    root: Vec<Entry>,
}

impl Reader {
    /// Opens an archive and reads its header and root directory.
    pub fn open(path: &Path) -> Result<Reader, PmtilesError> {
        let mut file = File::open(path).map_err(io(path))?;
        let mut head = [0u8; HEADER_LEN];
        file.read_exact(&mut head).map_err(io(path))?;
        let header = Header::from_bytes(&head)?;
        if header.internal_compression != COMPRESSION_GZIP {
            return Err(PmtilesError::Format(format!(
                "internal compression {} is not gzip",
                header.internal_compression
            )));
        }
        let mut r = Reader {
            file,
            path: path.to_path_buf(),
            header,
            root: Vec::new(),
        };
        let raw = r.read_at(header.root_offset, header.root_length)?;
        r.root = deserialize_directory(&gunzip(&raw)?)?;
        Ok(r)
    }

    fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, PmtilesError> {
        let mut buf =
            vec![0u8; usize::try_from(len).map_err(|_| PmtilesError::Format("length".into()))?];
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(io(&self.path))?;
        self.file.read_exact(&mut buf).map_err(io(&self.path))?;
        Ok(buf)
    }

    /// The decompressed JSON metadata.
    pub fn metadata(&mut self) -> Result<serde_json::Value, PmtilesError> {
        let raw = self.read_at(self.header.metadata_offset, self.header.metadata_length)?;
        serde_json::from_slice(&gunzip(&raw)?).map_err(|e| PmtilesError::Format(e.to_string()))
    }

    /// Every tile-data entry (leaf directories expanded), in tile-id order.
    pub fn entries(&mut self) -> Result<Vec<Entry>, PmtilesError> {
        let mut out = Vec::new();
        for e in self.root.clone() {
            if e.run_length == 0 {
                let raw = self.read_at(self.header.leaf_offset + e.offset, u64::from(e.length))?;
                let leaf = deserialize_directory(&gunzip(&raw)?)?;
                if leaf.iter().any(|l| l.run_length == 0) {
                    return Err(PmtilesError::Format("nested leaf directories".into()));
                }
                out.extend(leaf);
            } else {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The decompressed MVT bytes of z/x/y, `None` if the archive has no such tile.
    pub fn tile(&mut self, z: u8, x: u32, y: u32) -> Result<Option<Vec<u8>>, PmtilesError> {
        let id = zxy_to_tileid(z, x, y);
        let mut dir = self.root.clone();
        for _ in 0..4 {
            let i = dir.partition_point(|e| e.tile_id <= id);
            if i == 0 {
                return Ok(None);
            }
            let e = dir[i - 1];
            if e.run_length == 0 {
                let raw = self.read_at(self.header.leaf_offset + e.offset, u64::from(e.length))?;
                dir = deserialize_directory(&gunzip(&raw)?)?;
                continue;
            }
            if id >= e.tile_id + u64::from(e.run_length) {
                return Ok(None);
            }
            let raw = self.read_at(self.header.data_offset + e.offset, u64::from(e.length))?;
            return Ok(Some(gunzip(&raw)?));
        }
        Err(PmtilesError::Format("directories nested too deep".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeline_model::crs::MetricCrs;
    use lifeline_model::*;
    use std::process::Command;

    #[test]
    fn tile_ids_follow_the_spec_vectors_and_round_trip() {
        // From the PMTiles v3 spec's examples.
        assert_eq!(zxy_to_tileid(0, 0, 0), 0);
        assert_eq!(zxy_to_tileid(1, 0, 0), 1);
        assert_eq!(zxy_to_tileid(1, 0, 1), 2);
        assert_eq!(zxy_to_tileid(1, 1, 1), 3);
        assert_eq!(zxy_to_tileid(1, 1, 0), 4);
        assert_eq!(zxy_to_tileid(2, 0, 0), 5);
        for (z, x, y) in [
            (3, 5, 2),
            (14, 13279, 6795),
            (20, 1000, 999_999),
            (22, 4_194_303, 0),
        ] {
            assert_eq!(tileid_to_zxy(zxy_to_tileid(z, x, y)), (z, x, y));
        }
        // Ids of one zoom are contiguous and above every lower zoom's.
        let mut ids: Vec<u64> = (0..8)
            .flat_map(|x| (0..8).map(move |y| zxy_to_tileid(3, x, y)))
            .collect();
        ids.sort();
        assert_eq!(ids, (21..85).collect::<Vec<u64>>());
    }

    #[test]
    fn directories_round_trip_and_split_into_leaves() {
        let entries: Vec<Entry> = (0..60_000u64)
            .map(|i| Entry {
                tile_id: i * 3,
                offset: if i % 7 == 0 { 5 } else { i * 100 },
                length: 100,
                run_length: 1 + (i % 3) as u32,
            })
            .collect();
        let raw = serialize_directory(&entries);
        assert_eq!(deserialize_directory(&raw).unwrap(), entries);
        let (root, leaves) = build_directories(&entries);
        assert!(root.len() + HEADER_LEN <= ROOT_LIMIT);
        assert!(!leaves.is_empty());
        let root = deserialize_directory(&gunzip(&root).unwrap()).unwrap();
        let mut back = Vec::new();
        for r in root {
            assert_eq!(r.run_length, 0);
            let leaf = &leaves[r.offset as usize..(r.offset + u64::from(r.length)) as usize];
            back.extend(deserialize_directory(&gunzip(leaf).unwrap()).unwrap());
        }
        assert_eq!(back, entries);
        let h = Header {
            bounds: [106.1, 29.2, 106.9, 29.9],
            center: [106.5, 29.55],
            min_zoom: 3,
            max_zoom: 9,
            clustered: true,
            ..Default::default()
        };
        let b = h.to_bytes();
        assert_eq!(Header::from_bytes(&b).unwrap(), h);
    }

    fn index() -> SpatialIndex {
        let square = |x: f64, y: f64, d: f64| {
            geo::Polygon::new(
                geo::LineString::from(vec![(x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y)]),
                vec![],
            )
        };
        let pipes = (0..40)
            .map(|i| Pipeline {
                diameter_mm: Some(600.0),
                ..Pipeline::new(
                    i + 1,
                    PipeKind::ALL[i as usize % PipeKind::ALL.len()],
                    1,
                    geo::LineString::from(vec![
                        (106.45 + i as f64 * 0.002, 29.50),
                        (106.45 + i as f64 * 0.002, 29.52),
                    ]),
                )
            })
            .collect();
        let idx = SpatialIndex::new(MetricCrs::new("EPSG:4545").unwrap());
        idx.load(Dataset {
            grid_cells: vec![GridCell {
                id: 1,
                level: GridLevel::District,
                parent_id: None,
                name: "九龙坡区".into(),
                code: "500107".into(),
                geometry: geo::MultiPolygon(vec![square(106.40, 29.45, 0.15)]),
            }],
            pipelines: pipes,
            ..Default::default()
        })
        .unwrap();
        idx
    }

    fn python_pmtiles() -> Result<(), String> {
        let out = Command::new("python3")
            .args(["-c", "import pmtiles.reader"])
            .output()
            .map_err(|e| format!("python3 not runnable: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err("the `pmtiles` Python package is not installed (pip install pmtiles)".into())
        }
    }

    #[test]
    fn export_reads_back_with_our_reader_and_the_pmtiles_package() {
        let idx = index();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pmtiles");
        let layers = LayerSet::of(&[Layer::GridCells, Layer::Pipelines]);
        let cfg = TilesConfig::builtin();
        let report = export(&idx, &layers, 6, 14, &path, false).unwrap();
        assert_eq!(
            report.tiles_written + report.tiles_empty,
            report.tiles_considered
        );
        assert!(report.tiles_written > 100, "{report}");
        assert!(
            report.unique_contents < report.tiles_written,
            "inside the district tiles repeat: {report}"
        );
        assert!(
            report.entries < report.tiles_written,
            "repeats form runs: {report}"
        );
        assert!(!dir.path().join("out.pmtiles.tmp").exists());
        assert!(!dir.path().join("out.pmtiles.data.tmp").exists());

        let mut r = Reader::open(&path).unwrap();
        let h = r.header;
        assert_eq!((h.min_zoom, h.max_zoom), (6, 14));
        assert_eq!(
            (h.tile_compression, h.internal_compression, h.tile_type),
            (2, 2, 1)
        );
        assert_eq!(h.addressed_tiles, report.tiles_written);
        assert_eq!(h.tile_contents, report.unique_contents);
        assert_eq!(h.data_offset + h.data_length, report.file_bytes);
        assert!((h.bounds[0] - 106.40).abs() < 1e-6 && (h.bounds[3] - 29.60).abs() < 1e-6);
        let meta = r.metadata().unwrap();
        assert_eq!(meta["vector_layers"][1]["id"], "pipelines");
        assert!(
            meta["vector_layers"][1]["fields"]
                .get("diameter_mm")
                .is_none(),
            "viewer fields only"
        );
        let entries = r.entries().unwrap();
        let addressed: u64 = entries.iter().map(|e| u64::from(e.run_length)).sum();
        assert_eq!(addressed, report.tiles_written);
        // Every addressed tile is the tile the server would send, and decodes.
        let mut checked = 0;
        for e in entries.iter().step_by(7) {
            for id in e.tile_id..e.tile_id + u64::from(e.run_length) {
                let (z, x, y) = tileid_to_zxy(id);
                let got = r.tile(z, x, y).unwrap().expect("addressed tile");
                let t = TileCoord::new(u32::from(z), x, y).unwrap();
                let want =
                    render::render_tile(&idx, cfg, layers.layers(), t, Role::Viewer).unwrap();
                assert_eq!(got, want, "{z}/{x}/{y}");
                lifeline_tiles::decode_tile(&got).unwrap();
                checked += 1;
            }
        }
        assert!(checked > 10);
        // Far away: not in the archive.
        assert_eq!(r.tile(14, 0, 0).unwrap(), None);

        // The reference reader (PyPI `pmtiles`): same header, same tiles.
        if let Err(why) = python_pmtiles() {
            eprintln!("skipping the pmtiles-package check: {why}");
            return;
        }
        let script = r#"
import gzip, hashlib, json, sys
from pmtiles.reader import Reader, MmapSource, all_tiles
with open(sys.argv[1], "r+b") as f:
    src = MmapSource(f)
    r = Reader(src)
    h = r.header()
    tiles = {}
    for (z, x, y), data in all_tiles(src):
        tiles["%d/%d/%d" % (z, x, y)] = hashlib.sha256(gzip.decompress(data)).hexdigest()
    print(json.dumps({"min_zoom": h["min_zoom"], "max_zoom": h["max_zoom"],
        "addressed": h["addressed_tiles_count"], "contents": h["tile_contents_count"],
        "meta": r.metadata(), "tiles": tiles}))
"#;
        let out = Command::new("python3")
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["min_zoom"], 6);
        assert_eq!(v["max_zoom"], 14);
        assert_eq!(v["addressed"], report.tiles_written);
        assert_eq!(v["contents"], report.unique_contents);
        assert_eq!(v["meta"]["vector_layers"], meta["vector_layers"]);
        let tiles = v["tiles"].as_object().unwrap();
        assert_eq!(tiles.len() as u64, report.tiles_written);
        for e in entries.iter().step_by(5) {
            let (z, x, y) = tileid_to_zxy(e.tile_id);
            let mine = r.tile(z, x, y).unwrap().unwrap();
            let hex = hex::encode(Sha256::digest(&mine));
            assert_eq!(tiles[&format!("{z}/{x}/{y}")], hex.as_str());
        }
    }

    #[test]
    fn bad_zoom_ranges_and_empty_layers() {
        let idx = index();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pmtiles");
        let layers = LayerSet::of(&[Layer::Sensors]);
        assert!(matches!(
            export(&idx, &layers, 9, 3, &path, false),
            Err(PmtilesError::Zoom { .. })
        ));
        // A layer with zero features: a valid, empty archive.
        let report = export(&idx, &layers, 0, 5, &path, false).unwrap();
        assert_eq!(report.tiles_written, 0);
        let mut r = Reader::open(&path).unwrap();
        assert!(r.entries().unwrap().is_empty());
    }
}
