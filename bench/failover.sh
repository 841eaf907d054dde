#!/bin/sh
# Client-observed failover outage: an lbha pair vs a keepalived + HAProxy pair on the same
# network-namespace test bed (netns-tests/bench.rs). Needs root, keepalived and haproxy.
# A client sends a new HTTP request every 10 ms (50 ms timeout) to the VIP; the outage is the
# longest gap between successful answers after the event. Prints a Markdown table (median of RUNS).
set -eu
cd "$(dirname "$0")/.."
export RUNS="${RUNS:-3}"
exec cargo test --release --test netns -- --ignored --nocapture --test-threads 1 bench_failover
