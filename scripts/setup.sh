#!/usr/bin/env bash
# Installs what Lifeline needs on a Debian bookworm machine (idempotent): the C libraries
# its crates link (GDAL, PROJ, SQLite, libclang for bindgen), PostgreSQL 15 with PostGIS 3
# (the tests start throwaway clusters), and GDAL's command-line tools (tests judge output
# with ogrinfo). The Rust toolchain is expected to be installed already (rustup).
set -euo pipefail

PKGS=(pkg-config libclang-dev libsqlite3-dev libgdal-dev libproj-dev gdal-bin proj-bin
      postgresql-15 postgresql-15-postgis-3)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
# The PMTiles export test reads archives back with the reference Python reader.
python3 -c "import pmtiles" 2>/dev/null || pip install -q pmtiles >/dev/null 2>&1 || echo "setup: pip install pmtiles failed; that check will be skipped" >&2

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
