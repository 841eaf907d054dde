#!/usr/bin/env bash
# Benchmark smoke to run before merging proxy changes: every row of bench/proxy.sh once, lbha next
# to HAProxy, short runs (about 2.5 minutes in all), printing the ratios. Not a test: one short run
# per row is a warning light, not a measurement (see bench/README.md). On a loaded machine read the
# CPU-per-request column, which load moves far less than req/s.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DURATION=${SMOKE_DURATION:-3s}
OUT=$(mktemp "${TMPDIR:-/tmp}/lbha-smoke.XXXXXX")
trap 'rm -f -- "$OUT"' EXIT

# Extra arguments go to proxy.sh (--lbha PATH, --scenarios LIST, --nbthread LIST, ...).
"$SCRIPT_DIR/proxy.sh" --runs 1 --duration "$DURATION" --cpu-all --no-direct --out "$OUT" "$@" >/dev/null

printf 'lbha / HAProxy, one %s run per row (load average now %s):\n\n' "$DURATION" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%7s %7s %7s  %s\n' "req/s" "p99" "CPU/req" "row"
awk -F'|' '
    # The main table: | label | h rps | l rps | ratio | h p99 | l p99 | ratio p99 | ...
    /^\| scenario \| HAProxy req\/s/ { main = 1; cpu = 0; next }
    /^\| scenario \| HAProxy µs\/req/ { cpu = 1; main = 0; next }
    /^\|---/ { next }
    /^$/ { main = 0; cpu = 0 }
    main && NF > 8 { for (i = 2; i <= NF; i++) gsub(/^ +| +$/, "", $i); rps[$2] = $5; p99[$2] = $8; order[++n] = $2 }
    # CPU table: | label | HAProxy µs | lbha µs | efficiency |; printed as lbha/HAProxy.
    cpu && NF > 4 { for (i = 2; i <= NF; i++) gsub(/^ +| +$/, "", $i); if ($3 + 0 > 0) c[$2] = sprintf("%.2f", $4 / $3) }
    END {
        for (i = 1; i <= n; i++) {
            l = order[i]
            printf "%7s %7s %7s  %s\n", rps[l], p99[l], (l in c ? c[l] : "-"), l
        }
    }' "$OUT"
printf '\nTargets (issue 21): req/s >= 1.0 (>= 1.05 for the small-request rows), p99 <= 1.0, CPU/req <= 1.0.\n'
