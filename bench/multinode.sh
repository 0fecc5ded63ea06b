#!/usr/bin/env bash
# Multi-node benchmark (issue 6): bookings/s and slot searches/s on SQLite (one node), and on
# PostgreSQL with one and with two nodes — the same wrk script (bench/book.lua) and the same
# total of 16 connections in every run (two nodes: one wrk of 8 connections against each, at
# once, their rates summed). Bookings are spread over 16 businesses of one host each: bookings
# of one person are serialised by design (on PostgreSQL, by a lock held to the commit), so a
# single host would measure one lock, not the system. One run each; fails on any error
# response or socket error.
#   bench/multinode.sh           10 s per run
#   bench/multinode.sh --short   3 s per run (what CI runs)
# PostgreSQL: KAIROS_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# a fresh database is created for the run and dropped after.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10s
if [[ "${1:-}" == "--short" ]]; then duration=3s; fi
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql is needed: apt-get install -y postgresql-client" >&2; exit 1; }
server_url=${KAIROS_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cargo build --release -q -p kairos --bin kairos --example bench_seed
work=$(mktemp -d)
dbname="kairos_bench_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql -q "$server_url" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_node() { # database URL → sets node to the base URL; the node's pid goes to pids
  local port; port=$(free_port)
  KAIROS_DATABASE_URL=$1 KAIROS_BIND="127.0.0.1:$port" KAIROS_LOG=warn \
    KAIROS_SECRET_KEY=bench-secret-key-0123456789-abcdefghij target/release/kairos serve >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  node="http://127.0.0.1:$port"
}

wrk_rps() { # connections, then wrk arguments; prints req/s, fails on errors
  local conns=$1; shift
  local out; out=$(wrk -t2 -c"$conns" -d"$duration" "$@")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$out" >&2; echo "FAIL: errors in a run" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

measure() { # label, base URLs…: slot searches then bookings, 16 connections split over the nodes
  local label=$1; shift
  local per=$((16 / $#)) i=0 files=() runs=()
  for base in "$@"; do
    wrk_rps "$per" -H "Authorization: Bearer $KEY" \
      "$base/v1/availability/slots?business_id=$SLOTS_BUSINESS&from=$FROM&to=$TO&duration=30" >"$work/s$i" &
    runs+=($!); files+=("$work/s$i"); i=$((i + 1))
  done
  for r in "${runs[@]}"; do wait "$r"; done
  local slots; slots=$(cat "${files[@]}" | awk '{s += $1} END {print s}')
  i=0; files=(); runs=()
  for base in "$@"; do
    INSTANCE=$i KEY=$KEY BUSINESS=$BOOKING_BUSINESS BUSINESSES=$BOOKING_BUSINESSES \
      wrk_rps "$per" -s bench/book.lua "$base" >"$work/b$i" &
    runs+=($!); files+=("$work/b$i"); i=$((i + 1))
  done
  for r in "${runs[@]}"; do wait "$r"; done
  local book; book=$(cat "${files[@]}" | awk '{s += $1} END {print s}')
  printf '%-22s %12.0f %14.0f\n' "$label" "$slots" "$book"
}

printf '%-22s %12s %14s\n' "" "slots/s" "bookings/s"

# SQLite, one node.
export KAIROS_DATABASE_URL="sqlite://$work/bench.db"
eval "$(target/release/examples/bench_seed)"
start_node "$KAIROS_DATABASE_URL"
measure "SQLite, 1 node" "$node"
kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true; pids=()

# PostgreSQL, one node, then two.
psql -q "$server_url" -c "CREATE DATABASE $dbname" >/dev/null
pg_url="${server_url%/*}/$dbname"
export KAIROS_DATABASE_URL="$pg_url"
eval "$(target/release/examples/bench_seed)"
# Planner statistics and the visibility map for the seeded rows, as autovacuum would soon have.
psql -q "$pg_url" -c "VACUUM ANALYZE" >/dev/null
start_node "$pg_url"; first=$node
measure "PostgreSQL, 1 node" "$first"
start_node "$pg_url"; second=$node
measure "PostgreSQL, 2 nodes" "$first" "$second"
