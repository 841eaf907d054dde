#!/usr/bin/env bash
# Memory per idle client connection: lbha next to HAProxy (if installed), both answering every
# request themselves on loopback. For each proxy (a fresh process each time) it opens N connections
# that send nothing, or N keep-alive connections that each made one request, and prints the
# resident memory (VmRSS) before, while they are open, and after they are closed, as a Markdown
# table. See bench/README.md.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT=$(dirname "$SCRIPT_DIR")
readonly SCRIPT_DIR REPO_ROOT

readonly HOST=127.0.0.1
readonly HAPROXY_PORT=18280
readonly LBHA_PORT=18290
readonly PORT_WAIT_SECS=10
readonly STOP_WAIT_SECS=10
readonly MAX_CONNECTIONS=20000

LBHA="$REPO_ROOT/target/release/lbha"
CONNECTIONS=5000
PIDS=()

usage() {
    cat <<EOF
usage: $BENCH_NAME [--lbha PATH] [--connections N]

  --lbha PATH        lbha binary (default: target/release/lbha)
  --connections N    idle connections per measurement, 1..$MAX_CONNECTIONS (default 5000)
EOF
}

while (($#)); do
    case $1 in
        --lbha) LBHA=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
done
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= MAX_CONNECTIONS)) \
    || usage_error "--connections must be 1..$MAX_CONNECTIONS"
command -v python3 >/dev/null || { log "python3 is missing: apt-get install -y python3"; exit 2; }
[[ -x $LBHA ]] || { log "no lbha binary at $LBHA: run cargo build --release"; exit 2; }
HAPROXY=$(command -v haproxy || true)
[[ -n $HAPROXY ]] || log "haproxy not installed (apt-get install -y haproxy): measuring lbha alone"

# Each side of every connection is a descriptor of this shell's children.
ulimit -n $((CONNECTIONS * 2 + 256)) 2>/dev/null \
    || die "cannot raise the descriptor limit to $((CONNECTIONS * 2 + 256)) (hard limit $(ulimit -Hn))"

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

for p in $LBHA_PORT $HAPROXY_PORT; do
    ! port_open "$p" || die "port $p is already in use"
done

cat >"$WORK/lbha.toml" <<EOF
[global]
maxconn = $((CONNECTIONS + 100))
nbthread = 1
[defaults]
mode = "http"
timeout = { client = "60s", http_request = "60s", http_keep_alive = "60s" }
[[frontend]]
name = "web"
bind = ["$HOST:$LBHA_PORT"]
http_request = [{ return = { status = 200, content_type = "text/plain", body = "ok" } }]
EOF

cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $((CONNECTIONS + 100))
    nbthread 1
    no strict-limits
defaults
    mode http
    timeout client 60s
    timeout http-request 60s
    timeout http-keep-alive 60s
frontend web
    bind $HOST:$HAPROXY_PORT
    http-request return status 200 content-type text/plain string ok
EOF

# measure NAME PID PORT KIND: one Markdown row; KIND is "silent" or "keep-alive".
measure() {
    timeout 300 python3 - "$@" "$CONNECTIONS" <<'EOF'
import socket, sys, time

name, pid, port, mode, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])

def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"{name}: process {pid} is gone")

def request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while not (b"\r\n\r\n" in data and data.endswith(b"ok")):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"{name}: connection closed before the answer")
        data += chunk

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s

for _ in range(20):  # warm-up: what the first requests allocate is reused by every later one
    s = connect(); request(s); s.close()
time.sleep(1)
kind = "sent nothing" if mode == "silent" else "keep-alive, after one request"
base = rss()
conns = []
for _ in range(n):
    s = connect()
    if mode != "silent":
        request(s)
    conns.append(s)
time.sleep(2)
held = rss()
for s in conns:
    s.close()
time.sleep(3)
after = rss()
per = (held - base) * 1024 / n
print(f"| {name} | {kind} | {base / 1024:.1f} | {held / 1024:.1f} | {per / 1024:.2f} | {after / 1024:.1f} |")
EOF
}

start_wait() {
    local port=$1 deadline=$((SECONDS + PORT_WAIT_SECS))
    until port_open "$port"; do
        ((SECONDS < deadline)) || die "nothing listens on $port after ${PORT_WAIT_SECS} s$(log_tail "$WORK/$2.log")"
        sleep 0.1
    done
}

ROWS=()
for kind in silent keep-alive; do
    "$LBHA" run -c "$WORK/lbha.toml" -S "$WORK/ctl.sock" >"$WORK/lbha.log" 2>&1 &
    PIDS+=($!)
    start_wait $LBHA_PORT lbha
    ROWS+=("$(measure lbha "${PIDS[-1]}" $LBHA_PORT $kind)") || die "lbha measurement failed$(log_tail "$WORK/lbha.log")"
    stop_pid "${PIDS[-1]}"
    if [[ -n $HAPROXY ]]; then
        "$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
        PIDS+=($!)
        start_wait $HAPROXY_PORT haproxy
        ROWS+=("$(measure haproxy "${PIDS[-1]}" $HAPROXY_PORT $kind)") \
            || die "haproxy measurement failed$(log_tail "$WORK/haproxy.log")"
        stop_pid "${PIDS[-1]}"
    fi
done

echo "$CONNECTIONS idle connections on $HOST, RSS in MiB (per connection in KiB):"
echo
echo "| proxy | connections | before | while open | per connection | after closing |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
