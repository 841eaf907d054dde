#!/usr/bin/env bash
# `add server` of N servers at runtime on the control socket, lbha next to HAProxy 2.6 (stats
# socket, `balance roundrobin` backend), both at one thread: wall time for the N commands in one
# session and over one connection each, and RSS before and after. Everything on 127.0.0.1 and in
# a temporary directory; every process started here is stopped on exit.
set -euo pipefail

N=1000
LBHA=$(cd "$(dirname "$0")/.." && pwd)/target/release/lbha
usage() { echo "usage: $0 [--servers N] [--lbha PATH]"; }
while (($#)); do
    case $1 in
        --servers) N=$2; shift 2 ;;
        --lbha) LBHA=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
command -v haproxy >/dev/null || { echo "needs haproxy (apt-get install haproxy)" >&2; exit 2; }
[[ -x $LBHA ]] || { echo "no lbha binary at $LBHA (cargo build --release)" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) the process has used: steadier than wall time on a loaded machine.
TICKS=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICKS" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
wait_sock() {
    for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done
    echo "socket $1 never appeared" >&2; exit 1
}

# Sends the N commands and prints: seconds for one session, seconds for one connection each,
# and how many answers said the server was added.
drive() { # SOCK STYLE(haproxy|lbha) BACKEND PREFIX
    python3 - "$@" "$N" <<'PY'
import socket, sys, time
path, style, be, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def session(lines):
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    if style == "haproxy":
        s.sendall(b"prompt\n" + b"".join(l + b"\n" for l in lines) + b"quit\n")
    else:
        s.sendall(b"".join(l + b"\n" for l in lines)); s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
    return out
cmd = lambda i, tag: ("add server %s/%s%s%d 127.0.0.1:%d" % (be, prefix, tag, i, 20000 + i % 1000)).encode()
t = time.monotonic(); out = session([cmd(i, "a") for i in range(n)]); one = time.monotonic() - t
ok = out.count(b"New server registered.")
t = time.monotonic()
for i in range(n):
    ok += session([cmd(i, "b")]).count(b"New server registered.")
each = time.monotonic() - t
print("%.3f %.3f %d" % (one, each, ok))
PY
}

# HAProxy 2.6, one thread.
cat >"$WORK/h.cfg" <<CFG
global
  stats socket $WORK/h.sock mode 600 level admin
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:18580
  default_backend dyn
backend dyn
  balance roundrobin
  server s0 127.0.0.1:18581
CFG
haproxy -f "$WORK/h.cfg" -db >"$WORK/h.log" 2>&1 &
PIDS+=($!)
HPID=$!
wait_sock "$WORK/h.sock"
h_before=$(rss_kib $HPID)
h_cpu0=$(cpu_s $HPID)
read -r h_one h_each h_ok < <(drive "$WORK/h.sock" haproxy dyn s)
h_after=$(rss_kib $HPID)
h_cpu=$(awk -v a="$h_cpu0" -v b="$(cpu_s $HPID)" 'BEGIN {printf "%.2f", b - a}')

# lbha, one thread, state kept in the temporary directory.
cat >"$WORK/l.toml" <<CFG
[global]
nbthread = 1
state_dir = "$WORK/state"
control_socket = { path = "$WORK/l.sock", mode = "600", level = "admin" }

[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:18590"]
default_backend = "dyn"

[[backend]]
name = "dyn"
mode = "http"
balance = "roundrobin"
servers = [{ name = "s0", addr = "127.0.0.1:18581" }]
CFG
"$LBHA" run -c "$WORK/l.toml" >"$WORK/l.log" 2>&1 &
PIDS+=($!)
LPID=$!
wait_sock "$WORK/l.sock"
sleep 0.5
l_before=$(rss_kib $LPID)
l_cpu0=$(cpu_s $LPID)
read -r l_one l_each l_ok < <(drive "$WORK/l.sock" lbha dyn s)
l_after=$(rss_kib $LPID)
l_cpu=$(awk -v a="$l_cpu0" -v b="$(cpu_s $LPID)" 'BEGIN {printf "%.2f", b - a}')

printf '%s servers added twice (one session, then one connection per command)\n' "$N"
printf '| proxy | one session | one connection each | added | CPU (both) | RSS before | RSS after |\n|---|---|---|---|---|---|---|\n'
printf '| HAProxy %s | %s s | %s s | %s | %s s | %s KiB | %s KiB |\n' "$(haproxy -v | awk 'NR==1 {print $3}')" "$h_one" "$h_each" "$h_ok" "$h_cpu" "$h_before" "$h_after"
printf '| lbha | %s s | %s s | %s | %s s | %s KiB | %s KiB |\n' "$l_one" "$l_each" "$l_ok" "$l_cpu" "$l_before" "$l_after"
