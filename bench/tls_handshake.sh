#!/usr/bin/env bash
# TLS handshakes per second and CPU per handshake, lbha against HAProxy 2.6 (OpenSSL 3), one
# thread each: every request on a new TLS connection (wrk with `Connection: close`), answered by
# the proxy itself (`http-request return`), so the row measures accepting, the handshake, one
# small request and the close. Four rows: ECDSA P-256 and RSA 2048 certificates, TLS 1.3 and 1.2.
#
# The proxies run pinned to CPU 1, wrk to CPU 0. On a machine other work loads, handshakes per
# second follow whatever CPU share the proxy got; the CPU time per handshake (user + system time
# of the proxy process over the run, divided by the handshakes) does not, and is the figure to
# compare.
set -euo pipefail

HOST=127.0.0.1
HAPROXY_PORT=18443
LBHA_PORT=18444
DURATION=10s
CONNECTIONS=32
RUNS=3
CPU_LOAD=0
CPU_PROXY=1
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
LBHA=${LBHA:-$SCRIPT_DIR/../target/release/lbha}
OUT_FILE=""

usage() {
    cat <<EOF
usage: bench/tls_handshake.sh [--lbha PATH] [--duration 10s] [--connections 32] [--runs 3] [--out FILE]

Runs wrk (one thread, Connection: close) over https against HAProxy (127.0.0.1:$HAPROXY_PORT) and
lbha (127.0.0.1:$LBHA_PORT), both with nbthread 1 and answering every request themselves, for
ECDSA P-256 and RSA 2048 certificates at TLS 1.3 and TLS 1.2, and prints a Markdown table of
medians: handshakes/s and the proxy's CPU microseconds per handshake, with lbha/HAProxy ratios.

Exit status: 0 when the table was printed, 1 when the benchmark failed, 2 on usage errors or
missing prerequisites.
EOF
}

log() { printf 'tls_handshake.sh: %s\n' "$*" >&2; }
die() { printf 'tls_handshake.sh: error: %s\n' "$*" >&2; exit 1; }

while (($# > 0)); do
    case $1 in
        --lbha | --duration | --connections | --runs | --out)
            (($# >= 2)) || { usage >&2; exit 2; }
            case $1 in
                --lbha) LBHA=$2 ;;
                --duration) DURATION=$2 ;;
                --connections) CONNECTIONS=$2 ;;
                --runs) RUNS=$2 ;;
                --out) OUT_FILE=$2 ;;
            esac
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || { log "--duration must look like 10s"; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ && $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || { log "--runs and --connections take a positive number"; exit 2; }
for tool in haproxy wrk openssl taskset; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 2; }
done
[[ -x $LBHA ]] || { log "no lbha binary at $LBHA (cargo build --release, or --lbha PATH)"; exit 2; }

WORK=$(mktemp -d /tmp/lbha-tls-bench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_cert() {
    local name=$1 keyopts=("${@:2}")
    openssl req -x509 "${keyopts[@]}" -nodes -days 2 -subj "/CN=bench.lbha.test" \
        -addext "subjectAltName=DNS:bench.lbha.test,IP:$HOST" \
        -keyout "$WORK/$name.key" -out "$WORK/$name.crt" >"$WORK/openssl.log" 2>&1 ||
        die "openssl could not make the $name certificate"
    cat "$WORK/$name.crt" "$WORK/$name.key" >"$WORK/$name.pem"
}

port_open() { timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

wait_port() {
    local port=$1 pid=$2 logf=$3 i
    for ((i = 0; i < 200; i++)); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || die "process for port $port exited: $(tail -n 5 "$logf")"
        sleep 0.05
    done
    die "nothing listens on $port: $(tail -n 5 "$logf")"
}

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# start CERT VERSION: HAProxy and lbha for one row; sets HPID and LPID.
start() {
    local cert=$1 ver=$2
    cat >"$WORK/h.cfg" <<EOF
global
    nbthread 1
    maxconn 10000
    no strict-limits
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f
    bind $HOST:$HAPROXY_PORT ssl crt $cert ssl-min-ver $ver ssl-max-ver $ver
    http-request return status 200 content-type text/plain string ok
EOF
    cat >"$WORK/l.toml" <<EOF
[global]
nbthread = 1
maxconn = 10000
[defaults]
mode = "http"
timeout = { connect = "5s", client = "30s", server = "30s" }
[[frontend]]
name = "f"
bind = ["$HOST:$LBHA_PORT ssl crt $cert ssl-min-ver $ver ssl-max-ver $ver"]
http_request = [{ return = { status = 200, content_type = "text/plain", body = "ok" } }]
EOF
    haproxy -c -q -f "$WORK/h.cfg" >"$WORK/h.log" 2>&1 || die "haproxy rejected its config: $(tail -n 5 "$WORK/h.log")"
    "$LBHA" check -c "$WORK/l.toml" >"$WORK/l.log" 2>&1 || die "lbha rejected its config: $(tail -n 5 "$WORK/l.log")"
    taskset -c "$CPU_PROXY" haproxy -db -f "$WORK/h.cfg" >>"$WORK/h.log" 2>&1 &
    HPID=$!
    PIDS+=("$HPID")
    LBHA_LOG=warn taskset -c "$CPU_PROXY" "$LBHA" run -c "$WORK/l.toml" -S "$WORK/l.sock" >>"$WORK/l.log" 2>&1 &
    LPID=$!
    PIDS+=("$LPID")
    wait_port "$HAPROXY_PORT" "$HPID" "$WORK/h.log"
    wait_port "$LBHA_PORT" "$LPID" "$WORK/l.log"
    local p got
    for p in "$HAPROXY_PORT" "$LBHA_PORT"; do
        got=$(openssl s_client -connect "$HOST:$p" -brief </dev/null 2>&1 | grep -E 'Protocol version|Peer signature type' | tr '\n' ' ')
        [[ $got == *"$ver"* ]] || die "port $p did not negotiate $ver: $got"
    done
}

stop() {
    local p
    for p in "$HPID" "$LPID"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}

# measure PORT PID: prints "handshakes/s cpu_us_per_handshake errors".
measure() {
    local port=$1 pid=$2 out="$WORK/wrk.txt" t0 t1
    t0=$(cpu_ticks "$pid")
    timeout --kill-after=5 60 taskset -c "$CPU_LOAD" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" \
        -H "Connection: close" "https://$HOST:$port/" >"$out" 2>&1 || die "wrk failed: $(tail -n 5 "$out")"
    t1=$(cpu_ticks "$pid")
    awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        /Socket errors/ { gsub(/[^0-9 ]/, " "); errs = $1 + $2 + $3 + $4 }
        /Non-2xx/ { errs += $NF }
        END { printf "%.0f %.1f %d\n", rps, (n > 0 ? d / hz * 1e6 / n : 0), errs }' "$out"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

make_cert ecdsa -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
make_cert rsa -newkey rsa:2048

table="| certificate | TLS | HAProxy hs/s | lbha hs/s | ratio | HAProxy CPU µs/hs | lbha CPU µs/hs | CPU ratio (HAProxy/lbha) | errors |
|---|---|---:|---:|---:|---:|---:|---:|---:|"
for cert in ecdsa rsa; do
    for ver in TLSv1.3 TLSv1.2; do
        log "$cert $ver"
        start "$WORK/$cert.pem" "$ver"
        hr="" lr="" hc="" lc="" errs=0
        for ((run = 1; run <= RUNS; run++)); do
            # Alternate the order so drift affects both.
            order=(h l)
            ((run % 2)) || order=(l h)
            for t in "${order[@]}"; do
                if [[ $t == h ]]; then read -r r c e < <(measure "$HAPROXY_PORT" "$HPID"); hr+="$r " hc+="$c "
                else read -r r c e < <(measure "$LBHA_PORT" "$LPID"); lr+="$r " lc+="$c "; fi
                errs=$((errs + e))
                log "  run $run $t: $r hs/s, $c µs CPU/hs, $e errors"
            done
        done
        stop
        H=$(median <<<"$hr") L=$(median <<<"$lr") HC=$(median <<<"$hc") LC=$(median <<<"$lc")
        name=$([[ $cert == ecdsa ]] && echo "ECDSA P-256" || echo "RSA 2048")
        table+=$'\n'"| $name | ${ver#TLSv} | $H | $L | $(awk -v a="$L" -v b="$H" 'BEGIN { printf "%.2f", a / b }') | $HC | $LC | $(awk -v a="$HC" -v b="$LC" 'BEGIN { printf "%.2f", a / b }') | $errs |"
    done
done
printf '%s\n' "$table"
printf '\nwrk -t1 -c%s -d%s, Connection: close; medians of %s runs; proxies nbthread 1 on CPU %s, wrk on CPU %s.\n' \
    "$CONNECTIONS" "$DURATION" "$RUNS" "$CPU_PROXY" "$CPU_LOAD"
[[ -z $OUT_FILE ]] || printf '%s\n' "$table" >"$OUT_FILE"
