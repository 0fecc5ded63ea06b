#!/usr/bin/env bash
# HTTP benchmark (issue 2): one release server on SQLite, wrk with 16 connections, one run.
#   /healthz                                   the baseline
#   GET /v1/availability/slots                 a business of 10 hosts × 500 busy blocks, 14 days
#   POST /v1/bookings                          each request on a distinct slot
# Prints requests/s and each endpoint's cost relative to /healthz; fails on any error response
# or socket error. Targets: slots ≤ 3× and bookings ≤ 5× the cost of /healthz.
#   bench/http.sh           10 s per endpoint, and the targets are enforced
#   bench/http.sh --short   3 s per endpoint (what CI runs), targets reported only
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10s; enforce=1
if [[ "${1:-}" == "--short" ]]; then duration=3s; enforce=0; fi
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

cargo build --release -q -p kairos --bin kairos --example bench_seed
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KAIROS_DATABASE_URL="sqlite://$work/bench.db" KAIROS_BIND="127.0.0.1:$port" KAIROS_LOG=warn
eval "$(target/release/examples/bench_seed)"
target/release/kairos serve &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

base="http://127.0.0.1:$port"
slots="$base/v1/availability/slots?business_id=$SLOTS_BUSINESS&from=$FROM&to=$TO&duration=30"
probe=$(curl -sf -H "Authorization: Bearer $KEY" "$slots" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["slots"]))')
echo "slots fixture: 10 hosts x 500 busy blocks over 14 days -> $probe slots per search"

run() { # name, then wrk arguments; prints "name rps" and checks for errors
  local name=$1; shift
  local out; out=$(wrk -t2 -c16 -d"$duration" --latency "$@")
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local p99; p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$out" >&2; echo "FAIL: $name had errors" >&2; exit 1; fi
  printf '%-10s %10.0f req/s   p99 %s\n' "$name" "$rps" "$p99" >&2
  echo "$rps"
}
health=$(run healthz "$base/healthz")
slot_rps=$(run slots -H "Authorization: Bearer $KEY" "$slots")
book_rps=$(KEY=$KEY BUSINESS=$BOOKING_BUSINESS run bookings -s bench/book.lua "$base")
python3 - "$health" "$slot_rps" "$book_rps" "$enforce" <<'PY'
import sys
health, slots, book, enforce = map(float, sys.argv[1:])
rs, rb = health / slots, health / book
print(f"cost vs /healthz: slots {rs:.2f}x (target <= 3), bookings {rb:.2f}x (target <= 5)")
if enforce and (rs > 3 or rb > 5):
    sys.exit("FAIL: a target was missed")
PY
