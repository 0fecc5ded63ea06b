#!/usr/bin/env bash
# Webhook delivery benchmark (issue 4): the real server and worker on SQLite with a local
# receiver, one process, this machine. Prints the commit → first-attempt lag at a paced
# 1,000 events/s (RATE=… to change) and the sustained delivery rate under a burst.
#   bench/webhooks.sh           10 s per phase; fails when p99 ≥ 1 s or < 1,000 deliveries/s
#   bench/webhooks.sh --short   3 s per phase (what CI runs); reports only
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p kairos --example bench_webhooks
KAIROS_LOG=warn target/release/examples/bench_webhooks "$@"
