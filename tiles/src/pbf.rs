//! Minimal protobuf wire-format primitives (varints, tags, length-delimited
//! fields), shared by the MVT encoder and decoder.
//!
//! Hand-written because vector_tile.proto needs only four wire types and a
//! handful of fields; a protobuf crate would add a build step or generated
//! code for ~150 lines of logic, and writing directly into reused byte
//! buffers is what keeps encoding allocation-free.

/// Protobuf wire types used by vector_tile.proto.
pub(crate) const WIRE_VARINT: u8 = 0;
pub(crate) const WIRE_I64: u8 = 1;
pub(crate) const WIRE_LEN: u8 = 2;
pub(crate) const WIRE_I32: u8 = 5;

/// Append a base-128 varint.
#[inline]
pub(crate) fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded size of a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 byte per started 7 bits; `| 1` makes 0 take one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Append a field key (`field << 3 | wire_type`).
#[inline]
pub(crate) fn write_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    write_varint(out, ((field as u64) << 3) | wire as u64);
}

/// Append a length-delimited bytes/string field.
#[inline]
pub(crate) fn write_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    write_tag(out, field, WIRE_LEN);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Payload size of a packed repeated uint32 field.
#[inline]
pub(crate) fn packed_len(vals: &[u32]) -> usize {
    vals.iter().map(|&v| varint_len(v as u64)).sum()
}

/// Append a packed repeated uint32 field (nothing when empty, as protobuf
/// encoders do).
pub(crate) fn write_packed_field(out: &mut Vec<u8>, field: u32, vals: &[u32], len: usize) {
    if vals.is_empty() {
        return;
    }
    write_tag(out, field, WIRE_LEN);
    write_varint(out, len as u64);
    for &v in vals {
        write_varint(out, v as u64);
    }
}

/// Wire-level read failure, converted to [`crate::decode::DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireError {
    Truncated(usize),
    VarintTooLong(usize),
    BadWireType(u8, usize),
}

/// A cursor over a protobuf message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    // Absolute offset of `buf[0]` in the whole tile, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.offset();
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(WireError::Truncated(start))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(WireError::VarintTooLong(start))
    }

    /// Next field key as `(field, wire_type)`.
    pub(crate) fn tag(&mut self) -> Result<(u32, u8), WireError> {
        let k = self.varint()?;
        Ok(((k >> 3) as u32, (k & 7) as u8))
    }

    pub(crate) fn bytes(&mut self) -> Result<(&'a [u8], usize), WireError> {
        let start = self.offset();
        let len = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(WireError::Truncated(start))?;
        if end > self.buf.len() {
            return Err(WireError::Truncated(start));
        }
        let at = self.offset();
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok((s, at))
    }

    pub(crate) fn fixed32(&mut self) -> Result<u32, WireError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes(s.try_into().unwrap()))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let s = self.take(8)?;
        Ok(u64::from_le_bytes(s.try_into().unwrap()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() - self.pos < n {
            return Err(WireError::Truncated(self.offset()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skip a field of an unknown number (forward compatibility).
    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            WIRE_VARINT => self.varint().map(|_| ()),
            WIRE_I64 => self.take(8).map(|_| ()),
            WIRE_LEN => self.bytes().map(|_| ()),
            WIRE_I32 => self.take(4).map(|_| ()),
            w => Err(WireError::BadWireType(w, self.offset())),
        }
    }

    /// Read a repeated uint32 field that may be packed (wire type 2) or not
    /// (wire type 0) — decoders must accept both.
    pub(crate) fn repeated_u32(&mut self, wire: u8, out: &mut Vec<u32>) -> Result<(), WireError> {
        match wire {
            WIRE_VARINT => {
                out.push(self.varint()? as u32);
                Ok(())
            }
            WIRE_LEN => {
                let (s, at) = self.bytes()?;
                let mut r = Reader::new(s, at);
                while !r.at_end() {
                    out.push(r.varint()? as u32);
                }
                Ok(())
            }
            w => Err(WireError::BadWireType(w, self.offset())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_len() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            write_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
            let mut r = Reader::new(&b, 0);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.at_end());
        }
        let mut b = Vec::new();
        write_varint(&mut b, 300);
        assert_eq!(b, [0xAC, 0x02]);
    }

    #[test]
    fn truncated_and_overlong() {
        assert_eq!(
            Reader::new(&[0x80], 0).varint(),
            Err(WireError::Truncated(0))
        );
        assert_eq!(
            Reader::new(&[0xff; 11], 0).varint(),
            Err(WireError::VarintTooLong(0))
        );
        assert_eq!(
            Reader::new(&[0x05, 1], 0).bytes(),
            Err(WireError::Truncated(0))
        );
    }
}
