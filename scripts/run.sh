#!/usr/bin/env bash
# The main job: install what is needed, build, load the demo city into the embedded
# GeoPackage store (data/lifeline.gpkg) if it is empty, and serve the API and the web client
# on http://127.0.0.1:8080 (override with LIFELINE_LISTEN). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --bin lifeline
export LIFELINE_GPKG="${LIFELINE_GPKG:-data/lifeline.gpkg}"
./target/release/lifeline generate --preset "${LIFELINE_PRESET:-demo}" --if-empty
exec ./target/release/lifeline serve "$@"
