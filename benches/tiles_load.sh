#!/usr/bin/env bash
# Load benchmark of vector tiles: Lifeline against Martin (the Rust PostGIS tile server) on
# the same PostGIS tables, driven with the same random list of tiles (z12–z16 over the
# central part of the data), first uncached on both sides, then cached on both sides.
# A second run per server asks z14 tiles only, one connection at a time, uncached: the
# latency of one tile with nothing queued in front of it (the p99 goal is for that).
# Martin serves the same `pipelines` table with the attributes an anonymous viewer gets from
# Lifeline (kind, sub_kind, status), extent 4096 and buffer 64, as Lifeline does. Below z14
# the two do not cut the same tiles: Lifeline leaves small pipes out by tier (data/tiles.toml)
# and Martin sends every row, so compare z14 for like with like.
# Prints tiles/s and latency percentiles per server and mode; copy them into BENCHMARKS.md
# with the machine and date.
#
#   bash benches/tiles_load.sh
#
# Settings (environment):
#   LIFELINE_BENCH_PRESET  generator preset loaded into an empty database (default jiulongpo;
#                          the issue's goal is stated for `city`)
#   DATABASE_URL           use this PostGIS database instead of a throwaway cluster
#   TILES                  distinct tiles in the list (default 5000)
#   REQUESTS               requests per run (default 20000)
#   CONCURRENCY            concurrent connections (default 32)
#   LAYERS                 Lifeline layer set (default pipelines; Martin serves the same table)
#   LIFELINE_BIN           a built lifeline binary to use instead of building one here
#
# Tools: the load generator is `oha` (cargo install oha --locked; it compiles for a few
# minutes) or, failing that, `wrk` (apt-get install wrk). Martin is used when `martin` is on
# PATH; it is not installed by default because it builds for about 30 minutes:
#   cargo install martin@1.14.0 --locked --no-default-features --features \
#     fonts,lambda,mbtiles,metrics,passthrough,pmtiles,postgres,sprites,styles,webui,geojson,mlt
# (newer Martin needs a newer rustc; its default `rendering` feature downloads from the
# internet and fails). Without Martin, only Lifeline is measured.
#
# "Uncached" means Lifeline runs with LIFELINE_TILE_CACHE_BYTES=0 and Martin with
# cache_size_mb: 0, so every request is cut from the data. "Cached" runs with the caches on,
# after one pass over the whole tile list to warm them. Every server started here is
# stopped by its PID on exit; a throwaway PostgreSQL cluster is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

PRESET=${LIFELINE_BENCH_PRESET:-jiulongpo}
TILES=${TILES:-5000}
REQUESTS=${REQUESTS:-20000}
CONCURRENCY=${CONCURRENCY:-32}
LAYERS=${LAYERS:-pipelines}
WORK=$(mktemp -d -t lifeline-tiles-load.XXXXXX)
PIDS=()
PG_DATA=""
PG_CTL=""

cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if [ -n "$PG_DATA" ]; then
        runuser -u postgres -- "$PG_CTL" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds
    for _ in $(seq 1 "$(( $2 * 10 ))"); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    return 1
}

# --- load generator -----------------------------------------------------------------
if command -v oha >/dev/null; then
    LOADGEN=oha
elif command -v wrk >/dev/null; then
    LOADGEN=wrk
else
    echo "Neither oha nor wrk is installed. Install one of:" >&2
    echo "  cargo install oha --locked      (a few minutes of compiling)" >&2
    echo "  apt-get install -y wrk" >&2
    exit 1
fi
echo "load generator: $LOADGEN; $REQUESTS requests, $CONCURRENCY connections, $TILES distinct tiles"

# --- PostGIS ------------------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
    PG_BIN=${LIFELINE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
    [ -n "$PG_BIN" ] || PG_BIN=$(dirname "$(command -v pg_ctl)")
    PG_CTL="$PG_BIN/pg_ctl"
    PG_PORT=$(free_port)
    PG_DATA="$WORK/pg"
    mkdir -p "$PG_DATA"
    chown postgres "$WORK" "$PG_DATA"
    # PostgreSQL refuses to run as root.
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$PG_CTL" -D "$PG_DATA" -l "$PG_DATA/log" -w \
        -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE lifeline_bench" >/dev/null
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d lifeline_bench -qc "CREATE EXTENSION postgis" >/dev/null
    export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/lifeline_bench"
    echo "throwaway PostGIS cluster on port $PG_PORT"
fi

# --- Lifeline: build, load data -------------------------------------------------------
if [ -n "${LIFELINE_BIN:-}" ]; then
    BIN=$LIFELINE_BIN
else
    cargo build --release --quiet
    BIN=target/release/lifeline
fi
"$BIN" migrate >/dev/null
"$BIN" generate --preset "$PRESET" --if-empty

start_lifeline() { # cache bytes -> sets LL_PID, LL_URL
    local port
    port=$(free_port)
    LIFELINE_TILE_CACHE_BYTES=$1 RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" >"$WORK/lifeline.log" 2>&1 &
    LL_PID=$!
    PIDS+=("$LL_PID")
    LL_URL="http://127.0.0.1:$port"
    wait_http "$LL_URL/ready" 600
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }

# --- the tile list --------------------------------------------------------------------
start_lifeline 0
curl -fsS "$LL_URL/layers" >"$WORK/layers.json"
make_tiles() { # zmin zmax out
python3 - "$WORK/layers.json" "$TILES" "$1" "$2" >"$3" <<'PY'
import json, math, random, sys
layers = json.load(open(sys.argv[1]))["layers"]
zmin, zmax = int(sys.argv[3]), int(sys.argv[4])
b = next(l["bbox"] for l in layers if l["id"] == "pipelines")
# The central half of the data's extent ("central city"), z12–z16, seed 42.
cx, cy, w, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) / 2, (b[3] - b[1]) / 2
rng = random.Random(42)
def tile(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y
seen, out = set(), []
for _ in range(int(sys.argv[2]) * 50):
    if len(out) == int(sys.argv[2]):
        break
    t = tile(rng.uniform(cx - w / 2, cx + w / 2), rng.uniform(cy - h / 2, cy + h / 2), rng.randint(zmin, zmax))
    if t not in seen:
        seen.add(t)
        out.append(t)
for z, x, y in out:
    print(f"{z}/{x}/{y}")
PY
}
make_tiles 12 16 "$WORK/tiles.txt"
make_tiles 14 14 "$WORK/tiles14.txt"
echo "$(wc -l <"$WORK/tiles.txt") distinct tiles z12-z16, $(wc -l <"$WORK/tiles14.txt") at z14"
stop "$LL_PID"

urls() { # base, suffix [, tile list] -> url file
    local list=${3:-$WORK/tiles.txt}
    sed "s#^#$1/#; s#\$#$2#" "$list" >"$WORK/urls-$(basename "$list")"
    echo "$WORK/urls-$(basename "$list")"
}

run_load() { # label, url file [, concurrency]
    local label=$1 file=$2 conc=${3:-$CONCURRENCY}
    if [ "$LOADGEN" = oha ]; then
        oha --no-tui -n "$REQUESTS" -c "$conc" -H "Accept-Encoding: gzip" \
            --output-format json --urls-from-file "$file" >"$WORK/out.json" 2>"$WORK/oha.err" ||
            oha --no-tui -n "$REQUESTS" -c "$conc" -H "Accept-Encoding: gzip" \
                -j --urls-from-file "$file" >"$WORK/out.json"
        python3 - "$label" "$WORK/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
s, p = r["summary"], r.get("latencyPercentiles", {})
codes = r.get("statusCodeDistribution", {})
print(f"{sys.argv[1]:<34} {s['requestsPerSec']:>10.0f} tiles/s   p50 {p.get('p50', 0)*1e3:7.2f} ms"
      f"   p99 {p.get('p99', 0)*1e3:7.2f} ms   success {s.get('successRate', 0)*100:.1f} %   status {codes}")
PY
    else
        cat >"$WORK/paths.lua" <<LUA
local paths, i = {}, 0
for line in io.lines("$file") do paths[#paths + 1] = line:gsub("^https?://[^/]+", "") end
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})
end
done = function(summary, latency, requests)
    io.write(string.format("%-34s %10.0f tiles/s   p50 %7.2f ms   p99 %7.2f ms   errors %d\n", "$label",
        summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
        latency:percentile(99) / 1e3, summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
LUA
        local host
        host=$(head -1 "$file" | sed -E 's#^(https?://[^/]+).*#\1#')
        # wrk runs for a time, not a count: about REQUESTS at a few thousand per second.
        wrk -t"$(( conc < 2 ? 1 : 2 ))" -c "$conc" -d "${WRK_SECONDS:-20}s" -s "$WORK/paths.lua" "$host" | tail -1
    fi
}

warm() { # url file: every tile once
    # One curl per URL: with several URLs, `-o` would cover only the first.
    xargs -P 8 -I{} curl -fsS -o /dev/null -H "Accept-Encoding: gzip" {} <"$1" || true
}

echo
printf '%-34s %s\n' "server / mode" "result"
# --- Lifeline ------------------------------------------------------------------------
start_lifeline 0
run_load "lifeline uncached" "$(urls "$LL_URL/tiles/$LAYERS" .mvt)"
run_load "lifeline uncached z14, 1 conn" "$(urls "$LL_URL/tiles/$LAYERS" .mvt "$WORK/tiles14.txt")" 1
stop "$LL_PID"
start_lifeline 1073741824
f=$(urls "$LL_URL/tiles/$LAYERS" .mvt)
warm "$f"
run_load "lifeline cached" "$f"
stop "$LL_PID"

# --- Martin --------------------------------------------------------------------------
if command -v martin >/dev/null; then
    start_martin() { # cache MB -> sets M_PID, M_URL
        local port
        port=$(free_port)
        cat >"$WORK/martin.yaml" <<YAML
listen_addresses: '127.0.0.1:$port'
cache_size_mb: $1
postgres:
  connection_string: '$DATABASE_URL'
  pool_size: 20
  auto_publish: false
  tables:
    # The same table and the attributes an anonymous viewer gets from Lifeline, same
    # extent and buffer.
    pipelines:
      schema: public
      table: pipelines
      srid: 4490
      geometry_column: geom
      geometry_type: LINESTRING
      id_column: id
      extent: 4096
      buffer: 64
      properties:
        kind: text
        sub_kind: text
        status: text
YAML
        martin --config "$WORK/martin.yaml" >"$WORK/martin.log" 2>&1 &
        M_PID=$!
        PIDS+=("$M_PID")
        M_URL="http://127.0.0.1:$port"
        wait_http "$M_URL/health" 120
    }
    # Martin publishes each table under its name; it serves one table per source.
    MARTIN_SOURCE=${LAYERS%%,*}
    start_martin 0
    run_load "martin uncached ($MARTIN_SOURCE)" "$(urls "$M_URL/$MARTIN_SOURCE" "")"
    run_load "martin uncached z14, 1 conn" "$(urls "$M_URL/$MARTIN_SOURCE" "" "$WORK/tiles14.txt")" 1
    stop "$M_PID"
    start_martin 1024
    f=$(urls "$M_URL/$MARTIN_SOURCE" "")
    warm "$f"
    run_load "martin cached ($MARTIN_SOURCE)" "$f"
    stop "$M_PID"
else
    echo "martin not installed: only Lifeline measured (see the header of this script to install it)"
fi
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%d); preset $PRESET"
