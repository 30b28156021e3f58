//! generate (being written)
