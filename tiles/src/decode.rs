//! MVT 2.1 decoder and validator.
//!
//! Owns [`decode_tile`], [`decode_geometry`] and the decoded model
//! ([`DecodedTile`], [`DecodedLayer`], [`DecodedFeature`]). It exists for
//! tests — this crate's and the service's — so it is strict: besides wire
//! errors it rejects everything the spec says MUST NOT happen (command
//! streams of the wrong shape, zero-length LineTo, ClosePath repeating the
//! first point, polygons not starting with an exterior ring, zero-area rings,
//! out-of-range or odd tags, repeated keys in a feature, duplicate layer
//! names, features without geometry). Unknown fields are skipped, as protobuf
//! requires; repeated fields are accepted packed or unpacked.

use std::borrow::Cow;

use thiserror::Error;

use crate::geometry::{ring_area2, GeomType, TileGeometry, TilePoint};
use crate::mvt::{zigzag_decode, zigzag_decode64, Value, CMD_CLOSE_PATH, CMD_LINE_TO, CMD_MOVE_TO};
use crate::pbf::{Reader, WireError, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT};

/// Why a tile failed to decode or validate.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("truncated data at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes.
    #[error("varint too long at byte {0}")]
    VarintTooLong(usize),
    /// A wire type that is invalid or not expected for the field.
    #[error("unexpected wire type {wire_type} at byte {at}")]
    WireType {
        /// The wire type found.
        wire_type: u8,
        /// Byte offset.
        at: usize,
    },
    /// A string field that is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    /// A required field is missing.
    #[error("layer {layer:?}: missing required field {field}")]
    MissingField {
        /// Layer name (empty if the name is what is missing).
        layer: String,
        /// The field.
        field: &'static str,
    },
    /// A layer version this decoder does not understand.
    #[error("layer {layer:?}: unsupported version {version}")]
    UnsupportedVersion {
        /// Layer name.
        layer: String,
        /// The version found.
        version: u32,
    },
    /// Two layers with the same name.
    #[error("duplicate layer name {0:?}")]
    DuplicateLayer(String),
    /// A `Value` message with zero or several value fields.
    #[error("layer {layer:?}: value {index} must contain exactly one field")]
    BadValue {
        /// Layer name.
        layer: String,
        /// Index in the values table.
        index: usize,
    },
    /// Odd tag count, out-of-range index or repeated key.
    #[error("layer {layer:?} feature {feature}: bad tags: {reason}")]
    BadTags {
        /// Layer name.
        layer: String,
        /// Feature index in the layer.
        feature: usize,
        /// What is wrong.
        reason: String,
    },
    /// A command stream violating §4.3.
    #[error("layer {layer:?} feature {feature}: invalid geometry: {reason}")]
    BadGeometry {
        /// Layer name.
        layer: String,
        /// Feature index in the layer.
        feature: usize,
        /// What is wrong.
        reason: String,
    },
}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated(at) => DecodeError::Truncated(at),
            WireError::VarintTooLong(at) => DecodeError::VarintTooLong(at),
            WireError::BadWireType(wire_type, at) => DecodeError::WireType { wire_type, at },
        }
    }
}

/// A decoded tile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedTile {
    /// Layers in wire order.
    pub layers: Vec<DecodedLayer>,
}

impl DecodedTile {
    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&DecodedLayer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// A decoded layer, dictionaries included so tests can check dedup.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedLayer {
    /// `version` (1 when absent, per the proto default).
    pub version: u32,
    /// `name`.
    pub name: String,
    /// `extent` (4096 when absent).
    pub extent: u32,
    /// The `keys` table.
    pub keys: Vec<String>,
    /// The `values` table.
    pub values: Vec<Value<'static>>,
    /// Features in wire order.
    pub features: Vec<DecodedFeature>,
}

/// A decoded feature.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFeature {
    /// `id`, if present.
    pub id: Option<u64>,
    /// Geometry type.
    pub geom_type: GeomType,
    /// Raw `tags` (key index, value index pairs).
    pub tags: Vec<u32>,
    /// Raw command stream.
    pub commands: Vec<u32>,
    /// Decoded geometry (empty for `Unknown` type).
    pub geometry: TileGeometry,
    /// Tags resolved against the layer's tables, in tag order.
    pub properties: Vec<(String, Value<'static>)>,
}

impl DecodedFeature {
    /// Property by key.
    pub fn get(&self, key: &str) -> Option<&Value<'static>> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Decode and validate a whole tile.
pub fn decode_tile(bytes: &[u8]) -> Result<DecodedTile, DecodeError> {
    let mut r = Reader::new(bytes, 0);
    let mut tile = DecodedTile::default();
    while !r.at_end() {
        let (field, wire) = r.tag()?;
        if field == 3 && wire == WIRE_LEN {
            let (b, at) = r.bytes()?;
            let layer = decode_layer(b, at)?;
            if tile.layers.iter().any(|l| l.name == layer.name) {
                return Err(DecodeError::DuplicateLayer(layer.name));
            }
            tile.layers.push(layer);
        } else {
            r.skip(wire)?;
        }
    }
    Ok(tile)
}

struct RawFeature {
    id: Option<u64>,
    geom_type: GeomType,
    tags: Vec<u32>,
    commands: Vec<u32>,
    has_geometry: bool,
}

fn decode_layer(buf: &[u8], base: usize) -> Result<DecodedLayer, DecodeError> {
    let mut r = Reader::new(buf, base);
    let (mut version, mut name, mut extent) = (1u32, None, 4096u32);
    let (mut keys, mut values, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    while !r.at_end() {
        let (field, wire) = r.tag()?;
        match (field, wire) {
            (15, WIRE_VARINT) => version = r.varint()? as u32,
            (1, WIRE_LEN) => name = Some(utf8(r.bytes()?.0, "layer name")?),
            (2, WIRE_LEN) => {
                let (b, at) = r.bytes()?;
                raw.push(decode_raw_feature(b, at)?);
            }
            (3, WIRE_LEN) => keys.push(utf8(r.bytes()?.0, "key")?),
            (4, WIRE_LEN) => {
                let (b, at) = r.bytes()?;
                values.push(decode_value(b, at)?);
            }
            (5, WIRE_VARINT) => extent = r.varint()? as u32,
            (_, w) => r.skip(w)?,
        }
    }
    let name = name.ok_or(DecodeError::MissingField {
        layer: String::new(),
        field: "name",
    })?;
    if !(1..=2).contains(&version) {
        return Err(DecodeError::UnsupportedVersion {
            layer: name,
            version,
        });
    }
    let mut values_checked = Vec::with_capacity(values.len());
    for (index, v) in values.into_iter().enumerate() {
        values_checked.push(v.ok_or_else(|| DecodeError::BadValue {
            layer: name.clone(),
            index,
        })?);
    }
    let values = values_checked;

    let mut features = Vec::with_capacity(raw.len());
    for (i, f) in raw.into_iter().enumerate() {
        let bad_tags = |reason: String| DecodeError::BadTags {
            layer: name.clone(),
            feature: i,
            reason,
        };
        if f.tags.len() % 2 != 0 {
            return Err(bad_tags(format!("odd number of tags ({})", f.tags.len())));
        }
        let mut properties = Vec::with_capacity(f.tags.len() / 2);
        for (j, kv) in f.tags.chunks_exact(2).enumerate() {
            let (k, v) = (kv[0] as usize, kv[1] as usize);
            let key = keys
                .get(k)
                .ok_or_else(|| bad_tags(format!("key index {k} >= {}", keys.len())))?;
            let val = values
                .get(v)
                .ok_or_else(|| bad_tags(format!("value index {v} >= {}", values.len())))?;
            if f.tags[..2 * j].chunks_exact(2).any(|p| p[0] == kv[0]) {
                return Err(bad_tags(format!("key {key:?} repeated")));
            }
            properties.push((key.clone(), val.clone()));
        }
        let bad_geom = |reason: String| DecodeError::BadGeometry {
            layer: name.clone(),
            feature: i,
            reason,
        };
        if !f.has_geometry {
            return Err(bad_geom("feature has no geometry field".into()));
        }
        let geometry = decode_geometry(f.geom_type, &f.commands).map_err(bad_geom)?;
        features.push(DecodedFeature {
            id: f.id,
            geom_type: f.geom_type,
            tags: f.tags,
            commands: f.commands,
            geometry,
            properties,
        });
    }
    Ok(DecodedLayer {
        version,
        name,
        extent,
        keys,
        values,
        features,
    })
}

fn utf8(b: &[u8], what: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Utf8(what))
}

// `None` when the message holds zero or several value fields (checked by
// the caller, which knows the layer name and index).
fn decode_value(buf: &[u8], base: usize) -> Result<Option<Value<'static>>, DecodeError> {
    let mut r = Reader::new(buf, base);
    let mut out = None;
    let mut n = 0;
    while !r.at_end() {
        let (field, wire) = r.tag()?;
        let v = match (field, wire) {
            (1, WIRE_LEN) => Value::String(Cow::Owned(utf8(r.bytes()?.0, "string value")?)),
            (2, WIRE_I32) => Value::Float(f32::from_bits(r.fixed32()?)),
            (3, WIRE_I64) => Value::Double(f64::from_bits(r.fixed64()?)),
            (4, WIRE_VARINT) => Value::Int(r.varint()? as i64),
            (5, WIRE_VARINT) => Value::UInt(r.varint()?),
            (6, WIRE_VARINT) => Value::SInt(zigzag_decode64(r.varint()?)),
            (7, WIRE_VARINT) => Value::Bool(r.varint()? != 0),
            (_, w) => {
                r.skip(w)?;
                continue;
            }
        };
        n += 1;
        out = Some(v);
    }
    Ok(if n == 1 { out } else { None })
}

fn decode_raw_feature(buf: &[u8], base: usize) -> Result<RawFeature, DecodeError> {
    let mut r = Reader::new(buf, base);
    let mut f = RawFeature {
        id: None,
        geom_type: GeomType::Unknown,
        tags: Vec::new(),
        commands: Vec::new(),
        has_geometry: false,
    };
    while !r.at_end() {
        let (field, wire) = r.tag()?;
        match (field, wire) {
            (1, WIRE_VARINT) => f.id = Some(r.varint()?),
            (2, WIRE_LEN | WIRE_VARINT) => r.repeated_u32(wire, &mut f.tags)?,
            (3, WIRE_VARINT) => f.geom_type = GeomType::from_wire(r.varint()?),
            (4, WIRE_LEN | WIRE_VARINT) => {
                f.has_geometry = true;
                r.repeated_u32(wire, &mut f.commands)?
            }
            (_, w) => r.skip(w)?,
        }
    }
    Ok(f)
}

/// Decode and validate one command stream for a geometry type (§4.3).
/// `Unknown` geometries are not interpreted and decode to an empty geometry.
/// The error is a human-readable reason.
pub fn decode_geometry(kind: GeomType, cmds: &[u32]) -> Result<TileGeometry, String> {
    let mut g = TileGeometry::new(kind);
    if kind == GeomType::Unknown {
        return Ok(g);
    }
    if cmds.is_empty() {
        return Err("empty command stream".into());
    }
    let (mut cx, mut cy) = (0i64, 0i64);
    let mut i = 0usize;
    // Read `count` coordinate pairs, moving the cursor; returns the points.
    let mut read_pairs = |i: &mut usize, count: usize, out: &mut Vec<TilePoint>, line_to: bool| {
        if cmds.len() - *i < 2 * count {
            return Err(format!(
                "command at {} wants {count} pairs, stream too short",
                *i - 1
            ));
        }
        for _ in 0..count {
            let (dx, dy) = (
                zigzag_decode(cmds[*i]) as i64,
                zigzag_decode(cmds[*i + 1]) as i64,
            );
            *i += 2;
            if line_to && dx == 0 && dy == 0 {
                return Err(format!("zero-length LineTo at {}", *i - 2));
            }
            cx += dx;
            cy += dy;
            let (Ok(x), Ok(y)) = (i32::try_from(cx), i32::try_from(cy)) else {
                return Err(format!("cursor ({cx}, {cy}) leaves the 32-bit range"));
            };
            out.push(TilePoint { x, y });
        }
        Ok(())
    };
    let next_cmd = |i: &mut usize| -> Option<(u32, usize)> {
        let c = *cmds.get(*i)?;
        *i += 1;
        Some((c & 7, (c >> 3) as usize))
    };
    let mut pts: Vec<TilePoint> = Vec::new();
    match kind {
        GeomType::Point => {
            let (id, count) = next_cmd(&mut i).unwrap();
            if id != CMD_MOVE_TO || count == 0 {
                return Err(format!(
                    "point geometry must be one MoveTo with count > 0, got id {id} count {count}"
                ));
            }
            read_pairs(&mut i, count, &mut pts, false)?;
            if i != cmds.len() {
                return Err(format!(
                    "{} trailing integers after point MoveTo",
                    cmds.len() - i
                ));
            }
            for p in pts {
                g.push_point(p);
            }
        }
        GeomType::LineString | GeomType::Polygon => {
            let polygon = kind == GeomType::Polygon;
            let mut ring_no = 0usize;
            while i < cmds.len() {
                pts.clear();
                let (id, count) = next_cmd(&mut i).unwrap();
                if id != CMD_MOVE_TO || count != 1 {
                    return Err(format!(
                        "expected MoveTo(1) at {}, got id {id} count {count}",
                        i - 1
                    ));
                }
                read_pairs(&mut i, 1, &mut pts, false)?;
                let Some((id, count)) = next_cmd(&mut i) else {
                    return Err("MoveTo not followed by LineTo".into());
                };
                let min = if polygon { 2 } else { 1 };
                if id != CMD_LINE_TO || count < min {
                    return Err(format!(
                        "expected LineTo with count >= {min} at {}, got id {id} count {count}",
                        i - 1
                    ));
                }
                read_pairs(&mut i, count, &mut pts, true)?;
                if polygon {
                    match next_cmd(&mut i) {
                        Some((CMD_CLOSE_PATH, 1)) => {}
                        other => {
                            return Err(format!(
                                "ring {ring_no} not ended by ClosePath(1): {other:?}"
                            ))
                        }
                    }
                    if pts.first() == pts.last() {
                        return Err(format!(
                            "ring {ring_no} repeats its first point before ClosePath"
                        ));
                    }
                    let a = ring_area2(&pts);
                    if a == 0 {
                        return Err(format!("ring {ring_no} has zero area"));
                    }
                    if ring_no == 0 && a < 0 {
                        return Err("first ring is not an exterior ring (negative area)".into());
                    }
                    ring_no += 1;
                }
                g.push_part(&pts);
            }
        }
        GeomType::Unknown => unreachable!(),
    }
    Ok(g)
}
