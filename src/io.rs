//! io (being written)
