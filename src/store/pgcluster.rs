//! Throwaway PostgreSQL cluster (placeholder).
