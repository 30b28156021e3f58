#!/usr/bin/env bash
# Installs what Lifeline needs on a Debian bookworm machine (idempotent): the C libraries
# its crates link (GDAL, PROJ, SQLite, libclang for bindgen), PostgreSQL 15 with PostGIS 3
# (the tests start throwaway clusters), and GDAL's command-line tools (tests judge output
# with ogrinfo). The Rust toolchain is expected to be installed already (rustup).
#
#   bash scripts/setup.sh          what the service and its web client need (scripts/run.sh)
#   bash scripts/setup.sh --tests  that, plus what only the tests use: Debian's chromium for
#                                  the browser test, playwright-core, pgRouting, and the
#                                  Python clients that judge our output (pmtiles, OWSLib,
#                                  ogctests, wntr), and Citus built from vendor/citus/
set -euo pipefail
TESTS=0
[ "${1:-}" = "--tests" ] && TESTS=1

PKGS=(pkg-config libclang-dev libsqlite3-dev libgdal-dev libproj-dev gdal-bin proj-bin
      postgresql-15 postgresql-15-postgis-3)
# pgRouting's connected components judge the network traces (issue 15); only tests use it.
((TESTS)) && PKGS+=(postgresql-15-pgrouting)
# Citus (issue 16) is built from vendor/citus/ for the tests' three-node cluster: the server
# headers and the libraries its build links.
((TESTS)) && PKGS+=(postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev)

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
if ((TESTS)); then
  # Outside clients that judge our output: the reference PMTiles reader, OWSLib's OGC API
  # client, the `ogctests` conformance suite (which needs geopandas), and (issue 22)
  # openapi-spec-validator and openapi-python-client for both OpenAPI documents, and
  # (issue 15) WNTR, whose valve segments judge the network traces. The validator is pinned
  # below 0.8: ogctests needs openapi-schema-validator < 0.7.
  python3 -c "import pmtiles, owslib, ogctests, geopandas, openapi_spec_validator, wntr" 2>/dev/null \
    && command -v openapi-python-client >/dev/null \
    || pip install -q pmtiles OWSLib ogctests geopandas "openapi-spec-validator>=0.7,<0.8" \
         "openapi-schema-validator>=0.6.2,<0.7" openapi-python-client wntr six >/dev/null 2>&1 \
    || echo "setup: pip install of the Python test clients failed" >&2
fi

# --- Citus 13.2.2 (issue 16) ------------------------------------------------------------------
# Debian has no Citus package; its upstream source and a one-line patch for PostgreSQL 15.20's
# headers are vendored in vendor/citus/ (see its README). Built and installed once (about five
# minutes on two cores); skipped when the extension is already installed. Citus runs as a
# PostgreSQL extension in its own server processes: Lifeline links none of it.
if ((TESTS)); then
  PGLIB="$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)"
  if [ ! -f "$PGLIB/citus.so" ]; then
    echo "setup: building Citus 13.2.2 from vendor/citus (once)" >&2
    CITUS_BUILD="$(mktemp -d)"
    VENDOR="$(cd "$(dirname "$0")/.." && pwd)/vendor/citus"
    (
      cd "$CITUS_BUILD"
      tar xzf "$VENDOR/citus-13.2.2-src.tar.gz"
      cd citus-13.2.2
      patch -p1 -s < "$VENDOR/citus-13.2.2-pg15-minor.patch"
      ./configure -q PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
      make -s -j"$(nproc)" >/dev/null 2>&1 || make -j1
      SUDO=""
      [ "$(id -u)" = 0 ] || SUDO="sudo"
      $SUDO make -s install >/dev/null
    )
    rm -rf "$CITUS_BUILD"
    [ -f "$PGLIB/citus.so" ] || { echo "setup: Citus build failed" >&2; exit 1; }
  fi
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }

# --- web client (issue 7) ------------------------------------------------------------------
# Debian's chromium (the end-to-end test drives it with playwright-core; no browser
# download) and a CJK font; node/npm from Debian when the machine has none. MapLibre GL JS and
# deck.gl (the 3D view, issue 18) come from npm, pinned in web/package-lock.json, and
# `npm run build` copies them into web/vendor/ (gitignored), which the service serves: the
# web client needs nothing else.
web_missing=()
web_pkgs=()
((TESTS)) && web_pkgs=(chromium fonts-noto-cjk)
# promtool (Debian's prometheus package) judges the /metrics output (issue 17).
((TESTS)) && web_pkgs+=(prometheus)
for p in "${web_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || web_missing+=("$p")
done
command -v npm >/dev/null 2>&1 || web_missing+=(nodejs npm)
if ((${#web_missing[@]})); then
  echo "setup: installing ${web_missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${web_missing[@]}" >/dev/null
fi
(
  cd "$(dirname "$0")/.."
  if [ ! -f web/vendor/maplibre-gl/VERSION ] || [ ! -f web/vendor/deck.gl/VERSION ] || [ web/package-lock.json -nt web/vendor/maplibre-gl/VERSION ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)
  fi
  if ((TESTS)); then
    [ -f tests/web/node_modules/playwright-core/package.json ] \
      || (cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
  fi
)
