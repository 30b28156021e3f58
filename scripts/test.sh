#!/usr/bin/env bash
# The test job: install what is needed, then formatting, lints, and every test of the
# workspace (unit tests, and integration tests that start the real server against a
# throwaway PostGIS cluster and a real GeoPackage, judged by GDAL's ogrinfo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
