//! Tile math, MVT encoding and generalisation (no I/O).
