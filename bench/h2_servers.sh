#!/usr/bin/env bash
# HTTP/2 to servers: h2load (h2c, prior knowledge) in front of lbha and HAProxy 2.6, each at one
# thread with `proto h2` servers: two nginx h2c ports (one worker). One loaded run per proxy
# unless --runs says more; prints req/s and the lbha/HAProxy ratio. 127.0.0.1 only; every
# process started here is stopped on exit and the temporary directory removed.
set -euo pipefail

LBHA=$(cd "$(dirname "$0")/.." && pwd)/target/release/lbha
REQS=200000
CLIENTS=32
STREAMS=10
RUNS=1
PERF=0
usage() { echo "usage: $0 [--lbha PATH] [--requests N] [--clients N] [--streams N] [--runs N] [--perf]"; }
while (($#)); do
    case $1 in
        --lbha) LBHA=$2; shift 2 ;;
        --requests) REQS=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --streams) STREAMS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        # Also one more run per proxy under `perf stat -p` (counts per request that do not
        # depend on how loaded the machine is: CPU time, syscalls by kind).
        --perf) PERF=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
for t in haproxy nginx h2load; do
    command -v $t >/dev/null || { echo "needs $t (apt-get install haproxy nginx-light nghttp2-client)" >&2; exit 2; }
done
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
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2; exit 1
}

mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<CFG
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-tmp;
    proxy_temp_path $WORK/nginx-tmp;
    fastcgi_temp_path $WORK/nginx-tmp;
    uwsgi_temp_path $WORK/nginx-tmp;
    scgi_temp_path $WORK/nginx-tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18781 http2;
        listen 127.0.0.1:18782 http2;
        location / { return 200 "ok\n"; }
    }
}
CFG
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
PIDS+=($!)
wait_port 18781

cat >"$WORK/h.cfg" <<CFG
global
  nbthread 1
  maxconn 10000
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:18780 proto h2
  default_backend be
backend be
  balance roundrobin
  server a 127.0.0.1:18781 proto h2
  server b 127.0.0.1:18782 proto h2
CFG
cat >"$WORK/l.toml" <<CFG
[global]
nbthread = 1
maxconn = 10000
state_dir = "$WORK/state"
control_socket = { path = "$WORK/l.sock" }

[[frontend]]
name = "fe"
mode = "http"
bind = ["127.0.0.1:18790 proto h2"]
default_backend = "be"
timeout = { client = "30s" }

[[backend]]
name = "be"
mode = "http"
balance = "roundrobin"
timeout = { connect = "5s", server = "30s" }
servers = [{ name = "a", addr = "127.0.0.1:18781", proto = "h2" }, { name = "b", addr = "127.0.0.1:18782", proto = "h2" }]
CFG

run() { # PORT -> req/s
    h2load -n "$REQS" -c "$CLIENTS" -m "$STREAMS" -t 1 "http://127.0.0.1:$1/" >"$WORK/h2load.out" 2>&1
    if ! grep -q ' 0 failed, 0 errored, 0 timeout' "$WORK/h2load.out" || ! grep -q ' 0 4xx, 0 5xx' "$WORK/h2load.out"; then
        grep '^requests:\|^status codes:' "$WORK/h2load.out" >&2
    fi
    awk '/^finished in/ {gsub(",", "", $4); print $4}' "$WORK/h2load.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# perf_run NAME PID PORT: per-request CPU time and syscalls of one more run, into $WORK/NAME.per.
perf_run() {
    local name=$1 pid=$2 port=$3 events perf_pid
    : >"$WORK/$name.per"
    for events in task-clock,context-switches 'syscalls:sys_enter_*'; do
        perf stat -x, -p "$pid" -o "$WORK/$name.stat" -e "$events" 2>/dev/null &
        perf_pid=$!
        sleep 0.5
        run "$port" >/dev/null
        kill -INT "$perf_pid"
        wait "$perf_pid" 2>/dev/null || true
        awk -F, -v n="$REQS" '$1 ~ /^[0-9.]+$/ && $1 > 0 {
            ev = $3; v = $1 / n
            if (ev == "task-clock") { ev = "CPU time (us)"; v *= 1000 }
            sub(/^syscalls:sys_enter_/, "syscall ", ev)
            if (ev ~ /^syscall /) total += v
            printf "%s,%.3f\n", ev, v
        } END { if (total) printf "syscalls (all),%.3f\n", total }' "$WORK/$name.stat" >>"$WORK/$name.per"
    done
}

haproxy -f "$WORK/h.cfg" -db >"$WORK/h.log" 2>&1 &
HPID=$!
PIDS+=($!)
wait_port 18780
"$LBHA" run -c "$WORK/l.toml" >"$WORK/l.log" 2>&1 &
LPID=$!
PIDS+=($!)
wait_port 18790
run 18780 >/dev/null # warm-up
run 18790 >/dev/null
h=$(for _ in $(seq "$RUNS"); do run 18780; done | median)
l=$(for _ in $(seq "$RUNS"); do run 18790; done | median)
printf 'h2load -n %s -c %s -m %s, h2c to the proxy, proto h2 to two nginx h2c servers; load average %s\n' \
    "$REQS" "$CLIENTS" "$STREAMS" "$(cut -d' ' -f1 /proc/loadavg)"
printf '| proxy | req/s |\n|---|---|\n| HAProxy %s | %s |\n| lbha | %s |\n' "$(haproxy -v | awk 'NR==1 {print $3}')" "$h" "$l"
awk -v l="$l" -v h="$h" 'BEGIN { printf "lbha/HAProxy: %.2f\n", l / h }'
if ((PERF)); then
    command -v perf >/dev/null || { echo "--perf needs perf (apt-get install linux-perf)" >&2; exit 2; }
    perf_run haproxy "$HPID" 18780
    perf_run lbha "$LPID" 18790
    printf '\nper request (perf stat -p over one %s-request run each):\n\n| event | HAProxy | lbha | lbha/HAProxy |\n|---|---:|---:|---:|\n' "$REQS"
    awk -F, 'FNR == NR { h[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 }; next }
        { l[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
        END { for (i = 1; i <= k; i++) { e = order[i]; printf "| %s | %.3f | %.3f | %s |\n", e, h[e], l[e], (h[e] > 0 ? sprintf("%.2f", l[e] / h[e]) : "-") } }' \
        "$WORK/haproxy.per" "$WORK/lbha.per"
fi
