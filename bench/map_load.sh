#!/usr/bin/env bash
# A big map: the time from start to the first request answered through it, and the resident
# memory it costs, lbha next to HAProxy (if installed). Each proxy starts (a fresh process each
# time, one thread) with a frontend whose `use_backend` looks the Host up in a map of N entries
# (`%[req.hdr(host),lower,map(FILE,be_default)]`), and once with a 1-entry map as the baseline.
# Prints a Markdown table: start-to-first-answer time and VmRSS with the big map, with the small
# one, and their difference, plus CPU time (user+system) the process spent up to the first answer.
# See bench/README.md.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT=$(dirname "$SCRIPT_DIR")
readonly SCRIPT_DIR REPO_ROOT

readonly HOST=127.0.0.1
readonly HAPROXY_PORT=18380
readonly LBHA_PORT=18390
readonly BACKEND_PORT=18391
readonly START_WAIT_SECS=300
readonly STOP_WAIT_SECS=10
readonly MAX_ENTRIES=5000000

LBHA="$REPO_ROOT/target/release/lbha"
ENTRIES=1000000
RUNS=3
PIDS=()

usage() {
    cat <<EOF
usage: $BENCH_NAME [--lbha PATH] [--entries N] [--runs N]

  --lbha PATH    lbha binary (default: target/release/lbha)
  --entries N    map entries, 1..$MAX_ENTRIES (default 1000000)
  --runs N       starts per proxy and map, the median is printed (default 3)
EOF
}

while (($#)); do
    case $1 in
        --lbha) LBHA=${2:?}; shift 2 ;;
        --entries) ENTRIES=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
done
[[ $ENTRIES =~ ^[0-9]+$ ]] && ((ENTRIES >= 1 && ENTRIES <= MAX_ENTRIES)) || usage_error "--entries must be 1..$MAX_ENTRIES"
[[ $RUNS =~ ^[0-9]+$ ]] && ((RUNS >= 1 && RUNS <= 10)) || usage_error "--runs must be 1..10"
command -v python3 >/dev/null || { log "python3 is missing: apt-get install -y python3"; exit 2; }
[[ -x $LBHA ]] || { log "no lbha binary at $LBHA: run cargo build --release"; exit 2; }
HAPROXY=$(command -v haproxy || true)
[[ -n $HAPROXY ]] || log "haproxy not installed (apt-get install -y haproxy): measuring lbha alone"

WORK=$(mktemp -d)
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in $LBHA_PORT $HAPROXY_PORT $BACKEND_PORT; do
    ! port_open "$p" || die "port $p is already in use"
done

# The looked-up host is the last line, so a proxy that scans the map linearly pays for all of it.
awk -v n="$ENTRIES" 'BEGIN { for (i = 1; i < n; i++) printf "host%d.example.com be_other\n", i; print "target.example.com be_target" }' \
    >"$WORK/big.map"
printf 'target.example.com be_target\n' >"$WORK/small.map"

# One backend answering 200 for both proxies: lbha itself, with a `return`.
cat >"$WORK/backend.toml" <<EOF
[defaults]
mode = "http"
[[frontend]]
name = "origin"
bind = ["$HOST:$BACKEND_PORT"]
http_request = [{ return = { status = 200, content_type = "text/plain", body = "ok" } }]
EOF
"$LBHA" run -c "$WORK/backend.toml" -S "$WORK/backend.sock" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)

lbha_cfg() {
    cat <<EOF
[global]
nbthread = 1
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }
[[frontend]]
name = "web"
bind = ["$HOST:$LBHA_PORT"]
use_backend = [{ backend = "%[req.hdr(host),lower,map($WORK/$1.map,be_default)]" }]
default_backend = "be_default"
[[backend]]
name = "be_target"
servers = [{ name = "s", addr = "$HOST:$BACKEND_PORT" }]
[[backend]]
name = "be_other"
servers = [{ name = "s", addr = "$HOST:1" }]
[[backend]]
name = "be_default"
servers = [{ name = "s", addr = "$HOST:1" }]
EOF
}

haproxy_cfg() {
    cat <<EOF
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind $HOST:$HAPROXY_PORT
    use_backend %[req.hdr(host),lower,map($WORK/$1.map,be_default)]
    default_backend be_default
backend be_target
    server s $HOST:$BACKEND_PORT
backend be_other
    server s $HOST:1
backend be_default
    server s $HOST:1
EOF
}

# time_to_answer PID PORT: "seconds cpu_seconds rss_kib" from now until GET / (Host:
# target.example.com) answers 200 through the map, polling every 10 ms.
time_to_answer() {
    timeout "$START_WAIT_SECS" python3 - "$@" <<'EOF'
import os, socket, sys, time

pid, port = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic()
hz = os.sysconf("SC_CLK_TCK")

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

while True:
    if not alive():
        raise SystemExit(f"process {pid} exited before answering")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: target.example.com\r\nConnection: close\r\n\r\n")
        head = s.recv(64)
        s.close()
        if head.startswith(b"HTTP/1.1 200"):
            break
        raise SystemExit(f"the first answer was not 200 through the map: {head!r}")
    except (ConnectionRefusedError, ConnectionResetError):
        time.sleep(0.01)
took = time.monotonic() - t0
with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / hz
time.sleep(1)  # what start-up freed is given back
with open(f"/proc/{pid}/status") as f:
    rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
print(f"{took:.3f} {cpu:.2f} {rss}")
EOF
}

median() {
    # shellcheck disable=SC2086 # the values are a space-separated list on purpose
    printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure NAME MAP: medians over RUNS of "seconds cpu_seconds rss_kib".
measure() {
    local name=$1 map=$2 run t=() c=() r=() out port
    for ((run = 1; run <= RUNS; run++)); do
        if [[ $name == lbha ]]; then
            lbha_cfg "$map" >"$WORK/lbha.toml"
            port=$LBHA_PORT
            "$LBHA" run -c "$WORK/lbha.toml" -S "$WORK/lbha.sock" >"$WORK/$name.log" 2>&1 &
        else
            haproxy_cfg "$map" >"$WORK/haproxy.cfg"
            port=$HAPROXY_PORT
            "$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/$name.log" 2>&1 &
        fi
        PIDS+=($!)
        # This runs in a subshell (the caller's $(...)), whose EXIT trap is not the script's:
        # stop the proxy here before failing.
        out=$(time_to_answer "${PIDS[-1]}" "$port") || {
            stop_pid "${PIDS[-1]}"
            die "$name with the $map map: no answer$(log_tail "$WORK/$name.log")"
        }
        read -r -a f <<<"$out"
        t+=("${f[0]}") c+=("${f[1]}") r+=("${f[2]}")
        stop_pid "${PIDS[-1]}"
    done
    echo "$(median "${t[*]}") $(median "${c[*]}") $(median "${r[*]}")"
}

ROWS=()
for name in lbha haproxy; do
    [[ $name == haproxy && -z $HAPROXY ]] && continue
    # A failed measurement (die in the subshell) stops the script here.
    big=$(measure "$name" big) || exit 1
    small=$(measure "$name" small) || exit 1
    read -r bt bc br <<<"$big"
    read -r st sc sr <<<"$small"
    ROWS+=("$(awk -v n="$name" -v bt="$bt" -v bc="$bc" -v br="$br" -v st="$st" -v sc="$sc" -v sr="$sr" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.1f | %.2f | %.1f | %.1f |", n, bt, bc, br / 1024, st, sr / 1024, (br - sr) / 1024 }')")
done

echo "A $ENTRIES-entry map (map_str, use_backend by Host) on $HOST, one thread, medians of $RUNS starts:"
echo
echo "| proxy | start to first answer (s) | CPU to first answer (s) | RSS (MiB) | 1-entry map: start (s) | 1-entry map: RSS (MiB) | the map's RSS (MiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
