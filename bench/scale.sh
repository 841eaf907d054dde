#!/usr/bin/env bash
# Scale check for health checks and stick tables (issue "Health checks and session persistence").
#
#  1. 1,000 servers checked every second on loopback, all pointing at one test listener that
#     accepts (and, for HTTP checks, answers) everything. lbha's CPU time is read from
#     /proc/PID/stat over a 30 s window after a warm-up; the target is < 5% of one core.
#     TCP checks, like HAProxy's, reset the connection in answer to the SYN-ACK, so the listener
#     never accepts them: their rate is read from the kernel's TcpExt EmbryonicRsts counter
#     (resets of half-open connections, for the whole network namespace).
#  2. A stick table of 1 million entries: `cargo bench --bench stick_table_memory` prints the
#     resident-set growth for string and ip keys.
#
# Usage: bench/scale.sh [--lbha PATH] [--servers N] [--window SECONDS] [--check tcp|http]
#                       [--nbthread N] [--no-table]
# Needs: python3 (the test listener). Builds nothing itself except through the cargo bench step.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
lbha="$target/release/lbha"
servers=1000
window=30
check=tcp
table=1
nbthread=
while [ $# -gt 0 ]; do
    case "$1" in
        --lbha) lbha=$2; shift 2 ;;
        --servers) servers=$2; shift 2 ;;
        --window) window=$2; shift 2 ;;
        --check) check=$2; shift 2 ;;
        --nbthread) nbthread=$2; shift 2 ;;
        --no-table) table=0; shift ;;
        *) echo "usage: $0 [--lbha PATH] [--servers N] [--window SECONDS] [--check tcp|http] [--nbthread N] [--no-table]" >&2; exit 2 ;;
    esac
done
case "$check" in tcp|http) ;; *) echo "--check takes tcp or http" >&2; exit 2 ;; esac
if [ ! -x "$lbha" ]; then
    echo "no lbha binary at $lbha: run 'cargo build --release' first (or pass --lbha)" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "python3 is needed for the test listener" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The test listener: accepts every check; answers HTTP checks with 200; counts connections.
lport=$(free_port)
cat > "$work/listener.py" <<'PY'
import socket, sys, threading, time
port, mode, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(4096)
count = 0
def report():
    while True:
        time.sleep(1)
        with open(out, "w") as f: f.write(str(count))
threading.Thread(target=report, daemon=True).start()
while True:
    c, _ = s.accept()
    count += 1
    if mode == "http":
        c.settimeout(2)
        try:
            c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
    c.close()
PY
python3 "$work/listener.py" "$lport" "$check" "$work/count" &
pids+=($!)

fport=$(free_port)
{
    [ -n "$nbthread" ] && printf '[global]\nnbthread = %s\n' "$nbthread"
    echo '[defaults]'
    echo 'mode = "http"'
    echo 'timeout = { connect = "1s", client = "5s", server = "5s", check = "1s" }'
    echo '[[listen]]'
    echo 'name = "many"'
    echo "bind = [\"127.0.0.1:$fport\"]"
    [ "$check" = http ] && echo 'check = { http = "GET /health" }'
    echo 'servers = ['
    for i in $(seq 1 "$servers"); do
        echo "  { name = \"s$i\", addr = \"127.0.0.1:$lport\", check = true, inter = \"1s\" },"
    done
    echo ']'
} > "$work/lbha.toml"

"$lbha" check -c "$work/lbha.toml" >/dev/null
"$lbha" run -c "$work/lbha.toml" -S "$work/ctl.sock" 2>"$work/lbha.log" &
lpid=$!
pids+=("$lpid")

ticks() { awk '{print $14 + $15}' "/proc/$lpid/stat"; }
seen() {
    if [ "$check" = http ]; then
        cat "$work/count" 2>/dev/null || echo 0
    else
        awk '/^TcpExt:/ { if (!n) { for (i = 2; i <= NF; i++) if ($i == "EmbryonicRsts") n = i }
                          else print $n }' /proc/net/netstat
    fi
}
hz=$(getconf CLK_TCK)
sleep 5   # warm-up: every checker has started (first checks are spread over one interval)
kill -0 "$lpid" 2>/dev/null || { echo "lbha exited:"; tail -20 "$work/lbha.log"; exit 1; }
c0=$(seen); t0=$(ticks); s0=$(date +%s.%N)
sleep "$window"
c1=$(seen); t1=$(ticks); s1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$lpid/status")
downs=$(grep -c "is DOWN" "$work/lbha.log" || true)
python3 - "$t0" "$t1" "$s0" "$s1" "$hz" "$c0" "$c1" "$servers" "$check" "$rss" "$downs" "${nbthread:-default}" <<'PY'
import sys
t0, t1, s0, s1, hz, c0, c1 = map(float, sys.argv[1:8])
servers, check, rss, downs, threads = sys.argv[8], sys.argv[9], sys.argv[10], sys.argv[11], sys.argv[12]
wall = s1 - s0
cpu = (t1 - t0) / hz
pct = 100 * cpu / wall
rate = (c1 - c0) / wall
print(f"health checks: {servers} servers, {check} checks every 1 s, {wall:.1f} s window, threads: {threads}")
seen = "by the listener" if check == "http" else "as SYN-ACKs reset (TcpExt EmbryonicRsts)"
print(f"  checks/s seen {seen}: {rate:.0f}")
print(f"  lbha CPU: {cpu:.2f} s = {pct:.2f}% of one core (target < 5%)  RSS {int(rss)/1024:.1f} MiB  servers marked DOWN: {downs}")
print("  PASS" if pct < 5 else "  FAIL: over 5% of one core")
PY
if [ "$downs" -gt 0 ]; then
    echo "  DOWN reasons:"
    grep "is DOWN" "$work/lbha.log" | sed 's/.*reason: //; s/, check duration.*//' | sort | uniq -c | sed 's/^/   /'
fi

if [ "$table" = 1 ]; then
    echo
    echo "stick table memory (cargo bench --bench stick_table_memory):"
    (cd "$root" && cargo bench --quiet --bench stick_table_memory 2>/dev/null | grep entries)
fi
