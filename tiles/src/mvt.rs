//! Mapbox Vector Tile 2.1 encoder (hand-written protobuf).
//!
//! Owns the property [`Value`] type, the geometry command stream
//! ([`encode_geometry`], [`command_integer`], [`zigzag_encode`]), the
//! per-layer [`LayerBuilder`] (feature encoding, key/value dictionaries) and
//! the [`TileBuilder`] that concatenates layers into one tile.
//!
//! Wire layout (vector_tile.proto 2.1): `Tile { repeated Layer layers = 3 }`;
//! `Layer { version = 15, name = 1, features = 2, keys = 3, values = 4,
//! extent = 5 }`; `Feature { id = 1, packed tags = 2, type = 3, packed
//! geometry = 4 }`; `Value { string = 1, float = 2, double = 3, int = 4,
//! uint = 5, sint = 6, bool = 7 }`. Because repeated fields concatenate in
//! protobuf, a one-layer tile is just `0x1A len Layer`, and a multi-layer tile
//! is the concatenation of one-layer tiles.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::TileError;
use crate::geometry::{ring_area2, GeomRef, GeomType, TileGeometry, TilePoint};
use crate::pbf::{
    packed_len, varint_len, write_bytes_field, write_packed_field, write_tag, write_varint,
    WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT,
};

/// MVT version written into every layer.
pub const MVT_VERSION: u32 = 2;
/// The conventional tile extent.
pub const DEFAULT_EXTENT: u32 = 4096;
/// Command id of MoveTo.
pub const CMD_MOVE_TO: u32 = 1;
/// Command id of LineTo.
pub const CMD_LINE_TO: u32 = 2;
/// Command id of ClosePath.
pub const CMD_CLOSE_PATH: u32 = 7;
/// Largest command count representable in a CommandInteger (29 bits).
pub const MAX_COMMAND_COUNT: u32 = (1 << 29) - 1;

/// `CommandInteger = (id & 0x7) | (count << 3)` (MVT 2.1 §4.3.1).
#[inline]
pub const fn command_integer(id: u32, count: u32) -> u32 {
    (id & 0x7) | (count << 3)
}

/// Zigzag-encode a geometry parameter: `(v << 1) ^ (v >> 31)` (§4.3.2).
#[inline]
pub const fn zigzag_encode(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub const fn zigzag_decode(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

/// 64-bit zigzag, as used by `sint_value`.
#[inline]
pub const fn zigzag_encode64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag_encode64`].
#[inline]
pub const fn zigzag_decode64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A feature property value. The variant is the MVT wire type, so `Int(5)`,
/// `SInt(5)` and `UInt(5)` are distinct values in a layer's dictionary.
///
/// `From` conversions pick: `f64` → `Double`, `f32` → `Float`, signed
/// integers → `SInt` (compact for negatives), unsigned → `UInt`, `&str` /
/// `String` → `String`, `bool` → `Bool`. Strings are `Cow` so callers can
/// pass borrowed row data without allocating per feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `string_value`.
    String(Cow<'a, str>),
    /// `float_value`.
    Float(f32),
    /// `double_value`.
    Double(f64),
    /// `int_value` (int64; negative values take 10 bytes — prefer `SInt`).
    Int(i64),
    /// `uint_value`.
    UInt(u64),
    /// `sint_value` (zigzag).
    SInt(i64),
    /// `bool_value`.
    Bool(bool),
}

impl Value<'_> {
    /// Detach from borrowed data.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Float(v) => Value::Float(v),
            Value::Double(v) => Value::Double(v),
            Value::Int(v) => Value::Int(v),
            Value::UInt(v) => Value::UInt(v),
            Value::SInt(v) => Value::SInt(v),
            Value::Bool(v) => Value::Bool(v),
        }
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any numeric variant as `f64` (lossy for huge integers).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v as f64),
            Value::Double(v) => Some(v),
            Value::Int(v) | Value::SInt(v) => Some(v as f64),
            Value::UInt(v) => Some(v as f64),
            _ => None,
        }
    }

    /// Any integer variant as `i64` (`None` for out-of-range `UInt`).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(v) | Value::SInt(v) => Some(v),
            Value::UInt(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Append the protobuf encoding of the `Value` message body.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::String(s) => write_bytes_field(out, 1, s.as_bytes()),
            Value::Float(v) => {
                write_tag(out, 2, WIRE_I32);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Double(v) => {
                write_tag(out, 3, WIRE_I64);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Int(v) => {
                write_tag(out, 4, WIRE_VARINT);
                write_varint(out, *v as u64);
            }
            Value::UInt(v) => {
                write_tag(out, 5, WIRE_VARINT);
                write_varint(out, *v);
            }
            Value::SInt(v) => {
                write_tag(out, 6, WIRE_VARINT);
                write_varint(out, zigzag_encode64(*v));
            }
            Value::Bool(v) => {
                write_tag(out, 7, WIRE_VARINT);
                write_varint(out, *v as u64);
            }
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write!(f, "{s}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Int(v) | Value::SInt(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::String(Cow::Borrowed(s))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::String(Cow::Owned(s))
    }
}
impl<'a> From<Cow<'a, str>> for Value<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Value::String(s)
    }
}
impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<f32> for Value<'_> {
    fn from(v: f32) -> Self {
        Value::Float(v)
    }
}
impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::SInt(v)
    }
}
impl From<i32> for Value<'_> {
    fn from(v: i32) -> Self {
        Value::SInt(v as i64)
    }
}
impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::UInt(v as u64)
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// FxHash (rustc's hasher): the dictionaries are hit once per property of
/// every feature, and SipHash's DoS resistance buys nothing for a map that
/// lives for one tile.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= 8 {
            self.add(u64::from_le_bytes(bytes[..8].try_into().unwrap()));
            bytes = &bytes[8..];
        }
        if bytes.len() >= 4 {
            self.add(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as u64);
            bytes = &bytes[4..];
        }
        for &b in bytes {
            self.add(b as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// Encode a geometry as an MVT command stream into `out` (cleared first).
///
/// The cursor starts at (0,0) for each feature and carries across parts
/// (§4.3). Consecutive repeated points in lines/rings are skipped (a LineTo
/// of (0,0) is forbidden by §4.3.3.2) and a ring's closing point is implied
/// by ClosePath. Errors on empty geometries, lines with < 2 distinct points,
/// rings with < 3 distinct points or zero area, a first ring that is not an
/// exterior (positive area), and deltas that do not fit 32 bits — so the
/// output always passes [`crate::decode`]'s validation.
pub fn encode_geometry(geom: &TileGeometry, out: &mut Vec<u32>) -> Result<(), TileError> {
    encode_geometry_ref(geom.as_ref(), out)
}

struct Cursor {
    x: i64,
    y: i64,
}

impl Cursor {
    #[inline]
    fn delta(&mut self, p: TilePoint, out: &mut Vec<u32>) -> Result<(), TileError> {
        let (dx, dy) = (p.x as i64 - self.x, p.y as i64 - self.y);
        let (Ok(dx), Ok(dy)) = (i32::try_from(dx), i32::try_from(dy)) else {
            return Err(TileError::DegenerateGeometry(format!(
                "coordinate delta ({dx}, {dy}) does not fit 32 bits"
            )));
        };
        out.push(zigzag_encode(dx));
        out.push(zigzag_encode(dy));
        self.x = p.x as i64;
        self.y = p.y as i64;
        Ok(())
    }

    #[inline]
    fn at(&self, p: TilePoint) -> bool {
        self.x == p.x as i64 && self.y == p.y as i64
    }
}

fn check_count(n: usize) -> Result<u32, TileError> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_COMMAND_COUNT)
        .ok_or_else(|| {
            TileError::DegenerateGeometry(format!("{n} coordinates exceed a command count"))
        })
}

pub(crate) fn encode_geometry_ref(g: GeomRef<'_>, out: &mut Vec<u32>) -> Result<(), TileError> {
    out.clear();
    if g.points.is_empty() {
        return Err(TileError::EmptyGeometry);
    }
    let mut cur = Cursor { x: 0, y: 0 };
    match g.kind {
        GeomType::Point => {
            out.push(command_integer(CMD_MOVE_TO, check_count(g.points.len())?));
            for &p in g.points {
                cur.delta(p, out)?;
            }
        }
        GeomType::LineString => {
            if g.ends.is_empty() {
                return Err(TileError::EmptyGeometry);
            }
            for part in g.parts() {
                let Some((&first, rest)) = part.split_first() else {
                    return Err(TileError::DegenerateGeometry("empty line".into()));
                };
                out.push(command_integer(CMD_MOVE_TO, 1));
                cur.delta(first, out)?;
                let cmd_at = out.len();
                out.push(0);
                let mut n = 0usize;
                for &p in rest {
                    if !cur.at(p) {
                        cur.delta(p, out)?;
                        n += 1;
                    }
                }
                if n == 0 {
                    return Err(TileError::DegenerateGeometry(
                        "line with fewer than 2 distinct points".into(),
                    ));
                }
                out[cmd_at] = command_integer(CMD_LINE_TO, check_count(n)?);
            }
        }
        GeomType::Polygon => {
            if g.ends.is_empty() {
                return Err(TileError::EmptyGeometry);
            }
            for (i, part) in g.parts().enumerate() {
                let mut ring = part;
                while ring.len() > 1 && ring.first() == ring.last() {
                    ring = &ring[..ring.len() - 1];
                }
                let area2 = ring_area2(ring);
                if area2 == 0 {
                    return Err(TileError::DegenerateGeometry(format!(
                        "ring {i} has fewer than 3 distinct points or zero area"
                    )));
                }
                if i == 0 && area2 < 0 {
                    return Err(TileError::DegenerateGeometry(
                        "first polygon ring must be an exterior ring (positive area, clockwise in tile space)"
                            .into(),
                    ));
                }
                out.push(command_integer(CMD_MOVE_TO, 1));
                cur.delta(ring[0], out)?;
                let cmd_at = out.len();
                out.push(0);
                let mut n = 0usize;
                for &p in &ring[1..] {
                    if !cur.at(p) {
                        cur.delta(p, out)?;
                        n += 1;
                    }
                }
                if n < 2 {
                    return Err(TileError::DegenerateGeometry(format!(
                        "ring {i} has fewer than 3 distinct points"
                    )));
                }
                out[cmd_at] = command_integer(CMD_LINE_TO, check_count(n)?);
                out.push(command_integer(CMD_CLOSE_PATH, 1));
            }
        }
        GeomType::Unknown => {
            return Err(TileError::UnsupportedGeometry(
                "GeomType::Unknown cannot be encoded",
            ));
        }
    }
    Ok(())
}

/// Builds one MVT layer: encodes features as they are added and maintains
/// the layer's key and value dictionaries (each distinct key string and each
/// distinct typed value is stored once; features refer to them by index).
///
/// Buffers are kept across [`reset`](Self::reset), so one builder can encode
/// many tiles without reallocating.
pub struct LayerBuilder {
    name: String,
    extent: u32,
    features: Vec<u8>,
    n_features: usize,
    // Encoded `keys` fields and their index.
    keys: Vec<u8>,
    key_index: HashMap<Box<str>, u32, FxBuild>,
    // Encoded `values` fields, indexed by the Value message bytes — the
    // encoding is exactly the "same type and byte-for-byte identical" notion
    // of equality the spec asks dedup to use.
    values: Vec<u8>,
    value_index: HashMap<Box<[u8]>, u32, FxBuild>,
    geom_buf: Vec<u32>,
    tag_buf: Vec<u32>,
    value_buf: Vec<u8>,
    // Memo of interned keys and borrowed string values by address and length, consulted
    // before the dictionaries. Only valid while every string handed in stays alive and
    // unchanged, so it is switched on per layer by the pipeline (whose inputs are
    // borrowed for the whole layer) and off by `reset`.
    memo: Option<Box<[StrMemo; MEMO_SLOTS]>>,
    memo_on: bool,
}

/// Slots of the string memo (direct-mapped by address).
const MEMO_SLOTS: usize = 128;

/// One memo slot: (address, length, whether a key, dictionary index).
type StrMemo = (usize, usize, bool, u32);

impl fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("name", &self.name)
            .field("extent", &self.extent)
            .field("features", &self.n_features)
            .field("keys", &self.key_index.len())
            .field("values", &self.value_index.len())
            .finish()
    }
}

impl LayerBuilder {
    /// A new, empty layer. `extent` is the tile's coordinate range (4096 is
    /// the norm); it must be > 0, which [`TileBuilder::add_layer`] checks.
    pub fn new(name: impl Into<String>, extent: u32) -> Self {
        LayerBuilder {
            name: name.into(),
            extent,
            features: Vec::new(),
            n_features: 0,
            keys: Vec::new(),
            key_index: HashMap::default(),
            values: Vec::new(),
            value_index: HashMap::default(),
            geom_buf: Vec::new(),
            tag_buf: Vec::new(),
            value_buf: Vec::new(),
            memo: None,
            memo_on: false,
        }
    }

    /// Lets the builder remember interned strings by address until the next
    /// [`reset`](Self::reset). The caller promises that every key and borrowed string
    /// value it adds until then stays alive and unchanged (each feature's strings then
    /// cost a memo probe instead of a hash of their bytes).
    pub(crate) fn memoize_strings(&mut self) {
        let memo = self
            .memo
            .get_or_insert_with(|| Box::new([(0, 0, false, 0); MEMO_SLOTS]));
        memo.fill((0, 0, false, 0));
        self.memo_on = true;
    }

    /// The memo slot of a string at `addr`.
    fn memo_slot(addr: usize, len: usize) -> usize {
        ((addr >> 3) ^ len) % MEMO_SLOTS
    }

    fn memo_get(&self, addr: usize, len: usize, key: bool) -> Option<u32> {
        let memo = self.memo.as_ref().filter(|_| self.memo_on)?;
        let (a, l, k, i) = memo[Self::memo_slot(addr, len)];
        (a == addr && l == len && k == key && addr != 0).then_some(i)
    }

    fn memo_put(&mut self, addr: usize, len: usize, key: bool, index: u32) {
        if let Some(memo) = self.memo.as_mut().filter(|_| self.memo_on) {
            memo[Self::memo_slot(addr, len)] = (addr, len, key, index);
        }
    }

    /// Empty the layer for reuse under a new name/extent, keeping allocations.
    pub fn reset(&mut self, name: &str, extent: u32) {
        self.name.clear();
        self.name.push_str(name);
        self.extent = extent;
        self.features.clear();
        self.n_features = 0;
        self.keys.clear();
        self.key_index.clear();
        self.values.clear();
        self.value_index.clear();
        self.memo_on = false;
    }

    /// Layer name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Layer extent.
    pub fn extent(&self) -> u32 {
        self.extent
    }

    /// Number of features added.
    pub fn len(&self) -> usize {
        self.n_features
    }

    /// No features yet.
    pub fn is_empty(&self) -> bool {
        self.n_features == 0
    }

    /// Number of distinct keys.
    pub fn num_keys(&self) -> usize {
        self.key_index.len()
    }

    /// Number of distinct values.
    pub fn num_values(&self) -> usize {
        self.value_index.len()
    }

    /// Encode and append one feature.
    ///
    /// `id` is written only when `Some`. If a key occurs twice in `props` the
    /// first occurrence wins (MVT forbids repeated keys within a feature). On
    /// error (see [`encode_geometry`]) the layer is left unchanged.
    pub fn add_feature(
        &mut self,
        id: Option<u64>,
        geom: &TileGeometry,
        props: &[(&str, Value<'_>)],
    ) -> Result<(), TileError> {
        self.add_feature_ref(id, geom.as_ref(), props, None)
    }

    /// Internal form: geometry view into an arena, plus an optional extra
    /// property that overrides any same-named one in `props` (the
    /// pipeline's cluster `count`).
    pub(crate) fn add_feature_ref(
        &mut self,
        id: Option<u64>,
        geom: GeomRef<'_>,
        props: &[(&str, Value<'_>)],
        extra: Option<(&str, &Value<'_>)>,
    ) -> Result<(), TileError> {
        encode_geometry_ref(geom, &mut self.geom_buf)?;

        self.tag_buf.clear();
        let props = props
            .iter()
            .map(|(k, v)| (*k, v))
            .filter(|(k, _)| extra.is_none_or(|(ek, _)| ek != *k))
            .chain(extra);
        for (k, v) in props {
            let ki = self.intern_key(k);
            // Features carry a handful of properties: a linear scan beats a
            // set here.
            if self.tag_buf.chunks_exact(2).any(|t| t[0] == ki) {
                continue;
            }
            let vi = self.intern_value(v);
            self.tag_buf.push(ki);
            self.tag_buf.push(vi);
        }

        let tags_len = packed_len(&self.tag_buf);
        let geom_len = packed_len(&self.geom_buf);
        let mut body = 2 + 1 + varint_len(geom_len as u64) + geom_len;
        if let Some(id) = id {
            body += 1 + varint_len(id);
        }
        if !self.tag_buf.is_empty() {
            body += 1 + varint_len(tags_len as u64) + tags_len;
        }
        let out = &mut self.features;
        write_tag(out, 2, WIRE_LEN);
        write_varint(out, body as u64);
        if let Some(id) = id {
            write_tag(out, 1, WIRE_VARINT);
            write_varint(out, id);
        }
        write_packed_field(out, 2, &self.tag_buf, tags_len);
        write_tag(out, 3, WIRE_VARINT);
        write_varint(out, geom.kind as u64);
        write_packed_field(out, 4, &self.geom_buf, geom_len);
        self.n_features += 1;
        Ok(())
    }

    fn intern_key(&mut self, k: &str) -> u32 {
        let (addr, len) = (k.as_ptr() as usize, k.len());
        if let Some(i) = self.memo_get(addr, len, true) {
            return i;
        }
        let i = match self.key_index.get(k) {
            Some(&i) => i,
            None => {
                let i = self.key_index.len() as u32;
                self.key_index.insert(k.into(), i);
                write_bytes_field(&mut self.keys, 3, k.as_bytes());
                i
            }
        };
        self.memo_put(addr, len, true, i);
        i
    }

    fn intern_value(&mut self, v: &Value<'_>) -> u32 {
        // Only borrowed strings have a stable address to remember.
        let borrowed = match v {
            Value::String(Cow::Borrowed(s)) => Some((s.as_ptr() as usize, s.len())),
            _ => None,
        };
        if let Some(i) = borrowed.and_then(|(a, l)| self.memo_get(a, l, false)) {
            return i;
        }
        self.value_buf.clear();
        v.encode(&mut self.value_buf);
        let i = match self.value_index.get(&self.value_buf[..]) {
            Some(&i) => i,
            None => {
                let i = self.value_index.len() as u32;
                self.value_index.insert(self.value_buf.as_slice().into(), i);
                write_bytes_field(&mut self.values, 4, &self.value_buf);
                i
            }
        };
        if let Some((a, l)) = borrowed {
            self.memo_put(a, l, false, i);
        }
        i
    }

    fn body_len(&self) -> usize {
        2 + 1
            + varint_len(self.name.len() as u64)
            + self.name.len()
            + self.features.len()
            + self.keys.len()
            + self.values.len()
            + 1
            + varint_len(self.extent as u64)
    }

    /// Append this layer as a `Tile.layers` field (i.e. a complete one-layer
    /// tile) to `out`. Field order: version first, as §4.1 recommends.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.body_len() + 6);
        write_tag(out, 3, WIRE_LEN);
        write_varint(out, self.body_len() as u64);
        write_tag(out, 15, WIRE_VARINT);
        write_varint(out, MVT_VERSION as u64);
        write_bytes_field(out, 1, self.name.as_bytes());
        out.extend_from_slice(&self.features);
        out.extend_from_slice(&self.keys);
        out.extend_from_slice(&self.values);
        write_tag(out, 5, WIRE_VARINT);
        write_varint(out, self.extent as u64);
    }

    /// The layer as a complete one-layer tile.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

/// Concatenates layers into one tile, enforcing MVT's unique, non-empty
/// layer names.
#[derive(Debug, Default, Clone)]
pub struct TileBuilder {
    buf: Vec<u8>,
    names: Vec<String>,
}

impl TileBuilder {
    /// An empty tile.
    pub fn new() -> Self {
        Self::default()
    }

    fn check_name(&self, name: &str) -> Result<(), TileError> {
        if name.is_empty() {
            return Err(TileError::EmptyLayerName);
        }
        if self.names.iter().any(|n| n == name) {
            return Err(TileError::DuplicateLayer(name.to_owned()));
        }
        Ok(())
    }

    /// Append a layer. Fails on an empty or duplicate name, or extent 0.
    pub fn add_layer(&mut self, layer: &LayerBuilder) -> Result<(), TileError> {
        self.check_name(layer.name())?;
        if layer.extent() == 0 {
            return Err(TileError::InvalidOption {
                name: "extent",
                reason: format!("layer {:?} has extent 0", layer.name()),
            });
        }
        layer.write_to(&mut self.buf);
        self.names.push(layer.name().to_owned());
        Ok(())
    }

    /// Append an already-encoded one-layer tile (e.g.
    /// [`crate::pipeline::EncodedLayer::bytes`] or [`LayerBuilder::finish`])
    /// whose layer is called `name`. The bytes are trusted, not parsed.
    pub fn add_encoded(&mut self, name: &str, one_layer_tile: &[u8]) -> Result<(), TileError> {
        self.check_name(name)?;
        self.buf.extend_from_slice(one_layer_tile);
        self.names.push(name.to_owned());
        Ok(())
    }

    /// Layer names added so far, in order.
    pub fn layer_names(&self) -> &[String] {
        &self.names
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// No layers yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded tile.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_edges() {
        for (v, z) in [
            (0, 0u32),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (2, 4),
            (i32::MAX, u32::MAX - 1),
            (i32::MIN, u32::MAX),
        ] {
            assert_eq!(zigzag_encode(v), z, "{v}");
            assert_eq!(zigzag_decode(z), v, "{z}");
        }
        for v in [0i64, -1, 1, i64::MAX, i64::MIN] {
            assert_eq!(zigzag_decode64(zigzag_encode64(v)), v);
        }
        assert_eq!(zigzag_encode64(i64::MIN), u64::MAX);
    }

    #[test]
    fn command_integers_from_spec_table() {
        assert_eq!(command_integer(CMD_MOVE_TO, 1), 9);
        assert_eq!(command_integer(CMD_MOVE_TO, 120), 961);
        assert_eq!(command_integer(CMD_LINE_TO, 1), 10);
        assert_eq!(command_integer(CMD_LINE_TO, 3), 26);
        assert_eq!(command_integer(CMD_CLOSE_PATH, 1), 15);
    }

    #[test]
    fn repeated_points_are_skipped_and_degenerates_rejected() {
        let mut out = Vec::new();
        let g = TileGeometry::line_string([(0, 0), (0, 0), (5, 5)]);
        encode_geometry(&g, &mut out).unwrap();
        assert_eq!(out, [9, 0, 0, 10, 10, 10]);
        let g = TileGeometry::line_string([(1, 1), (1, 1)]);
        assert!(encode_geometry(&g, &mut out).is_err());
        assert_eq!(
            encode_geometry(&TileGeometry::new(GeomType::Point), &mut out),
            Err(TileError::EmptyGeometry)
        );
        // Hand-built ring in the wrong orientation.
        let mut g = TileGeometry::new(GeomType::Polygon);
        g.push_part(&[(0, 0), (0, 10), (10, 10)].map(Into::into));
        assert!(encode_geometry(&g, &mut out).is_err());
    }

    #[test]
    fn value_dedup_is_by_type() {
        let mut l = LayerBuilder::new("t", 4096);
        let g = TileGeometry::point(1, 1);
        l.add_feature(None, &g, &[("a", Value::Int(5)), ("b", Value::SInt(5))])
            .unwrap();
        l.add_feature(None, &g, &[("a", Value::Int(5)), ("b", Value::UInt(5))])
            .unwrap();
        assert_eq!((l.num_keys(), l.num_values()), (2, 3));
    }
}
