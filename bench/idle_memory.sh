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
readonly MAX_CONNECTIONS=60000
# One client address reaches one server port through ~28,000 ephemeral ports; the client spreads
# its connections over 127.0.0.1, 127.0.0.2, ... so that no address comes near that.
readonly PER_SOURCE=10000

LBHA="$REPO_ROOT/target/release/lbha"
CONNECTIONS=5000   # a comma-separated list: one measurement per count
PIDS=()

usage() {
    cat <<EOF
usage: $BENCH_NAME [--lbha PATH] [--connections N]

  --lbha PATH        lbha binary (default: target/release/lbha)
  --connections LIST idle connections per measurement, each 1..$MAX_CONNECTIONS, e.g. 10000,50000
                     (default 5000)
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
[[ $CONNECTIONS =~ ^[0-9]+(,[0-9]+)*$ ]] || usage_error "--connections must be a list of counts such as 10000,50000"
IFS=',' read -r -a COUNTS <<<"$CONNECTIONS"
MOST=0
for n in "${COUNTS[@]}"; do
    ((n >= 1 && n <= MAX_CONNECTIONS)) || usage_error "--connections: each count must be 1..$MAX_CONNECTIONS (got $n)"
    ((n > MOST)) && MOST=$n
done
command -v python3 >/dev/null || { log "python3 is missing: apt-get install -y python3"; exit 2; }
[[ -x $LBHA ]] || { log "no lbha binary at $LBHA: run cargo build --release"; exit 2; }
HAPROXY=$(command -v haproxy || true)
[[ -n $HAPROXY ]] || log "haproxy not installed (apt-get install -y haproxy): measuring lbha alone"

# Each side of every connection is a descriptor of one of this shell's children (the proxy holds one
# end, the client the other, each process under its own limit). Root may raise the hard limit of
# this shell (and so of what it starts) where the container allows it (CAP_SYS_RESOURCE); nothing
# outside it changes. Where it cannot, each count above what fits is measured at the largest count
# that fits instead, and the table says so.
readonly FD_HEADROOM=256
NEED_FDS=$((MOST + FD_HEADROOM))
if (($(ulimit -Hn) < NEED_FDS)) && ((EUID == 0)); then
    ulimit -Hn "$NEED_FDS" 2>/dev/null || prlimit --pid $$ --nofile="$NEED_FDS:$NEED_FDS" 2>/dev/null || true
fi
HARD_FDS=$(ulimit -Hn)
[[ $HARD_FDS == unlimited ]] && HARD_FDS=$NEED_FDS
ulimit -n "$((HARD_FDS < NEED_FDS ? HARD_FDS : NEED_FDS))" \
    || die "cannot raise the descriptor limit (hard limit $HARD_FDS)"
FIT=$((HARD_FDS - FD_HEADROOM))
((FIT >= 1)) || die "the descriptor hard limit ($HARD_FDS) leaves no room for connections"
NOTES=()
for i in "${!COUNTS[@]}"; do
    if ((COUNTS[i] > FIT)); then
        NOTES+=("${COUNTS[i]} connections asked for: the descriptor hard limit is $HARD_FDS and could not be raised (nr_open $(cat /proc/sys/fs/nr_open 2>/dev/null || echo '?'); raising it needs root with CAP_SYS_RESOURCE), so $FIT were measured instead.")
        log "${NOTES[-1]}"
        COUNTS[i]=$FIT
    fi
done
((MOST <= FIT)) || MOST=$FIT

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
maxconn = $((MOST + 100))
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
    maxconn $((MOST + 100))
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

# measure NAME PID PORT KIND N: one Markdown row; KIND is "silent" or "keep-alive".
measure() {
    timeout 600 python3 - "$@" "$PER_SOURCE" <<'EOF'
import socket, struct, sys, time

name, pid, port, mode, n, per_source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])

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

# The source port is chosen at connect(), by the whole address pair (IP_BIND_ADDRESS_NO_PORT):
# a bind() to port 0 takes a port no other socket of that address holds, TIME_WAIT ones
# included, and searches the range for it, so the opening slowed to ~30 a second once the
# range was mostly taken (a 19,744-connection run never finished).
IP_BIND_ADDRESS_NO_PORT = 24
LINGER_RESET = struct.pack("ii", 1, 0)

def connect(i=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    # Closed with a reset: no TIME_WAIT left to hold ports for the next rows.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    s.bind((f"127.0.0.{1 + i // per_source}", 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s

for _ in range(20):  # warm-up: what the first requests allocate is reused by every later one
    s = connect(); request(s); s.close()
time.sleep(1)
kind = "sent nothing" if mode == "silent" else "keep-alive, after one request"
base = rss()
conns = []
for i in range(n):
    try:
        s = connect(i)
        if mode != "silent":
            request(s)
    except OSError as e:
        raise SystemExit(f"{name}: connection {i + 1} of {n} ({kind}): {e}")
    conns.append(s)
time.sleep(2)
held = rss()
for s in conns:
    s.close()
time.sleep(3)
after = rss()
per = (held - base) * 1024 / n
print(f"| {name} | {n} | {kind} | {base / 1024:.1f} | {held / 1024:.1f} | {per / 1024:.2f} | {after / 1024:.1f} |")
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
for count in "${COUNTS[@]}"; do
for kind in silent keep-alive; do
    "$LBHA" run -c "$WORK/lbha.toml" -S "$WORK/ctl.sock" >"$WORK/lbha.log" 2>&1 &
    PIDS+=($!)
    start_wait $LBHA_PORT lbha
    ROWS+=("$(measure lbha "${PIDS[-1]}" $LBHA_PORT $kind "$count")") || die "lbha measurement failed$(log_tail "$WORK/lbha.log")"
    stop_pid "${PIDS[-1]}"
    if [[ -n $HAPROXY ]]; then
        "$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
        PIDS+=($!)
        start_wait $HAPROXY_PORT haproxy
        ROWS+=("$(measure haproxy "${PIDS[-1]}" $HAPROXY_PORT $kind "$count")") \
            || die "haproxy measurement failed$(log_tail "$WORK/haproxy.log")"
        stop_pid "${PIDS[-1]}"
    fi
done
done

echo "Idle connections on $HOST, RSS in MiB (per connection in KiB):"
echo
echo "| proxy | count | connections | before | while open | per connection | after closing |"
echo "|---|---:|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
if ((${#NOTES[@]})); then
    echo
    printf '%s\n' "${NOTES[@]}"
fi
