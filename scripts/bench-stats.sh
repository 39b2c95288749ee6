#!/usr/bin/env bash
# Benchmark of `jono stats` (and, once it exists, `jono projections rebuild`) over a generated
# history of about a million events in a SQLite store. Not a test: it prints figures for
# BENCHMARKS.md.
#
#   scripts/bench-stats.sh [DATA_DIR] [EVENTS]
#
# DATA_DIR defaults to a fresh temporary directory; an existing one with bench-ids.txt is reused
# (no generation). EVENTS defaults to 1000000.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-$(mktemp -d -t jono-bench.XXXXXX)}"
events="${2:-1000000}"

cargo build --release -p projections --bin jono-bench
cargo build --release -p gateway --bin jono
bench=target/release/jono-bench
jono=target/release/jono

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
if [ ! -f "$data/bench-ids.txt" ]; then
  echo "generating $events events into $data"
  "$bench" generate --data "$data" --events "$events"
fi
queue=$(awk '/^queue / {print $2}' "$data/bench-ids.txt")
org=$(awk '/^org / {print $2}' "$data/bench-ids.txt")
echo "log: $(du -h "$data/jono.db" | cut -f1) in $data/jono.db"

echo "--- stats_from_log, in process"
"$bench" stats --data "$data"

echo "--- jono stats, the whole binary (open, read, fold, print), best of 3"
for args in "--queue $queue" "--org $org" "--queue $queue --by day --format json" "--org $org --by hour --format csv"; do
  best=""
  for _ in 1 2 3; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$jono" --data "$data" stats $args > /dev/null
    end=$(date +%s.%N)
    took=$(echo "$end - $start" | bc)
    if [ -z "$best" ] || [ "$(echo "$took < $best" | bc)" = 1 ]; then best=$took; fi
  done
  printf 'jono stats %-60s %6.2f s\n' "$args" "$best"
done

echo "--- jono projections rebuild (all projections, one pass), on a copy of the store, best of 3"
copy=$(mktemp -d -t jono-rebuild.XXXXXX)
head=$(sqlite3 "$data/jono.db" 'SELECT MAX(position) FROM events')
best=""
for _ in 1 2 3; do
  rm -rf "$copy" && mkdir -p "$copy" && cp "$data"/jono.db* "$copy"/
  start=$(date +%s.%N)
  "$jono" --data "$copy" projections rebuild > /dev/null
  end=$(date +%s.%N)
  took=$(echo "$end - $start" | bc)
  echo "rebuild: $took s"
  if [ -z "$best" ] || [ "$(echo "$took < $best" | bc)" = 1 ]; then best=$took; fi
done
rm -rf "$copy"
printf 'rebuild of %s events: best %.2f s, %.0f events/s\n' "$head" "$best" "$(echo "$head / $best" | bc -l)"
