#!/usr/bin/env bash
# Old against new, on the same machine in one run: builds two (or more) revisions' release
# benches in git worktrees that share one target directory (dependencies are built once),
# then runs the benches that guard a change meant to cost no speed, alternating the
# revisions, ROUNDS times. Logs go to OUT (`<bench>-<side>-<round>.log`, sides named old,
# new, new2, …); the worktrees and the shared target are removed at the end (they take
# several GB).
#
#   bash scripts/bench_compare.sh OLD_REV [NEW_REV [MORE_REV…]]   (NEW_REV defaults to HEAD)
#
# Environment: ROUNDS (2), OUT (target/bench-compare), LIFELINE_BENCH_PRESET (jiulongpo).
# Run it on a quiet machine: nothing else building or testing.
set -euo pipefail
cd "$(dirname "$0")/.."
old_rev=$(git rev-parse "${1:?usage: bench_compare.sh OLD_REV [NEW_REV [MORE_REV…]]}")
new_rev=$(git rev-parse "${2:-HEAD}")
sides=(old new)
declare -A rev=([old]=$old_rev [new]=$new_rev)
n=2
for more in "${@:3}"; do
  sides+=("new$n")
  rev[new$n]=$(git rev-parse "$more")
  n=$((n + 1))
done
rounds=${ROUNDS:-2}
out=$(realpath -m "${OUT:-target/bench-compare}")
work=$(mktemp -d "${TMPDIR:-/tmp}/lifeline-bench.XXXXXX")
cleanup() {
  for side in "${sides[@]}"; do
    git worktree remove --force "$work/$side" >/dev/null 2>&1 || true
  done
  git worktree prune
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"
for side in "${sides[@]}"; do
  git worktree add --detach "$work/$side" "${rev[$side]}" >/dev/null
done
export CARGO_TARGET_DIR="$work/target"
benches=(excavation_check tiles_encode import risk)
for side in "${sides[@]}"; do
  echo "bench_compare: building $side ($(git -C "$work/$side" rev-parse --short HEAD))" >&2
  (cd "$work/$side" && cargo bench --no-run "${benches[@]/#/--bench=}") >"$out/build-$side.log" 2>&1
  # Keep this side's binaries apart: the next build writes to the same directory.
  mkdir -p "$work/bin-$side"
  for b in "${benches[@]}"; do
    f=$(ls -t "$CARGO_TARGET_DIR"/release/deps/"$b"-* | grep -v '\.d$' | head -1)
    cp "$f" "$work/bin-$side/$b"
  done
done
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/summary.txt"
for round in $(seq "$rounds"); do
  for side in "${sides[@]}"; do
    bin="$work/bin-$side"
    cd "$work/$side"
    LIFELINE_BENCH_RUNS=300 "$bin/excavation_check" --bench >"$out/check-$side-$round.log" 2>&1
    LIFELINE_BENCH_ZOOMS=14 "$bin/tiles_encode" --bench >"$out/tiles-$side-$round.log" 2>&1
    LIFELINE_BENCH_END_TO_END_ONLY=1 "$bin/import" gpkg --bench >"$out/import-$side-$round.log" 2>&1
    "$bin/risk" ingest postgis 30 --bench >"$out/ingest-$side-$round.log" 2>&1
    cd - >/dev/null
    echo "round $round $side done $(date +%T)" | tee -a "$out/summary.txt"
  done
done
echo "bench_compare: logs in $out ($(for side in "${sides[@]}"; do printf '%s %s ' "$side" "${rev[$side]}"; done))" >&2
