#!/usr/bin/env bash
# TLS handshakes per second and CPU per handshake, lbha against HAProxy 2.6 (OpenSSL 3), one
# thread each: every request on a new TLS connection, answered by the proxy itself
# (`http-request return`), so a row measures accepting, the handshake, one small request and the
# close. Four rows: ECDSA P-256 and RSA 2048 certificates, TLS 1.3 and 1.2.
#
# Two modes. `full` (the default): parallel `openssl s_time -new` clients, each connection a new
# OpenSSL object with no session to offer, so every handshake is a full one (key exchange and a
# CertificateVerify/ServerKeyExchange signature with the certificate's key); HAProxy's own
# counters (`show stat`: ssl_sess, ssl_reused_sess) are checked after every run and a run with a
# resumed session fails the benchmark. `resume`: wrk with `Connection: close`, which reuses each
# connection's OpenSSL object with SSL_clear and so offers its session again: after its first
# connections almost every handshake is a resumption (TLS 1.3 PSK-DHE without certificate or
# signature, TLS 1.2 abbreviated handshakes); HAProxy's counters are reported, not checked.
#
# The proxies run pinned to CPU 1, the clients to CPU 0. The clients are the bottleneck (an
# OpenSSL 3 client spends more CPU on a handshake than either server), and on a machine other
# work loads handshakes per second follow whatever CPU share each got; the CPU time per handshake
# (user + system time of the proxy process over the run, divided by the handshakes) does not, and
# is the figure to compare. Its inverse is the proxy's capacity: handshakes per second one
# thread would do with a whole CPU.
set -euo pipefail

HOST=127.0.0.1
HAPROXY_PORT=18443
LBHA_PORT=18444
DURATION=10s
CONNECTIONS=32
CLIENTS=6
MODE=full
RUNS=3
CPU_LOAD=0
CPU_PROXY=1
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
LBHA=${LBHA:-$SCRIPT_DIR/../target/release/lbha}
OUT_FILE=""

usage() {
    cat <<EOF
usage: bench/tls_handshake.sh [--mode full|resume] [--lbha PATH] [--duration 10s] [--runs 3]
                              [--clients 6] [--connections 32] [--out FILE]

Makes a new TLS connection per request to HAProxy (127.0.0.1:$HAPROXY_PORT) and lbha
(127.0.0.1:$LBHA_PORT), both with nbthread 1 and answering every request themselves, for
ECDSA P-256 and RSA 2048 certificates at TLS 1.3 and TLS 1.2, and prints a Markdown table of
medians: handshakes/s, the proxy's CPU microseconds per handshake and the capacity of one thread
(1 s / CPU per handshake), with lbha/HAProxy ratios.

  --mode full     (default) full handshakes: --clients parallel 'openssl s_time -new -www /'
                  processes (HTTP/1.0, the proxy closes); checked against HAProxy's ssl_sess and
                  ssl_reused_sess counters after every run
  --mode resume   wrk -t1 -c CONNECTIONS with Connection: close: resumed handshakes (wrk keeps
                  each connection's session across its reconnections)

Exit status: 0 when the table was printed, 1 when the benchmark failed, 2 on usage errors or
missing prerequisites.
EOF
}

log() { printf 'tls_handshake.sh: %s\n' "$*" >&2; }
die() { printf 'tls_handshake.sh: error: %s\n' "$*" >&2; exit 1; }

while (($# > 0)); do
    case $1 in
        --lbha | --duration | --connections | --runs | --out | --clients | --mode)
            (($# >= 2)) || { usage >&2; exit 2; }
            case $1 in
                --mode) MODE=$2 ;;
                --clients) CLIENTS=$2 ;;
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
[[ $RUNS =~ ^[1-9][0-9]*$ && $CONNECTIONS =~ ^[1-9][0-9]*$ && $CLIENTS =~ ^[1-9][0-9]*$ ]] ||
    { log "--runs, --clients and --connections take a positive number"; exit 2; }
[[ $MODE == full || $MODE == resume ]] || { log "--mode takes full or resume"; exit 2; }
for tool in haproxy wrk openssl taskset socat; do
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
    stats socket $WORK/h.sock level admin
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

# haproxy_ssl: HAProxy's frontend counters "ssl_sess ssl_reused_sess" (show stat).
haproxy_ssl() {
    echo "show stat" | socat - "UNIX-CONNECT:$WORK/h.sock" | awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == "f" && $2 == "FRONTEND" { print $col["ssl_sess"], $col["ssl_reused_sess"] }'
}

# measure PORT PID VERSION: prints "handshakes/s cpu_us_per_handshake errors".
measure() {
    local port=$1 pid=$2 ver=$3 out="$WORK/client" t0 t1 s0="" s1 a0 b0 a1 b1 n=0 errs=0 secs=${DURATION%s} i c
    [[ $port != "$HAPROXY_PORT" ]] || s0=$(haproxy_ssl)
    t0=$(cpu_ticks "$pid")
    if [[ $MODE == resume ]]; then
        timeout --kill-after=5 60 taskset -c "$CPU_LOAD" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" \
            -H "Connection: close" "https://$HOST:$port/" >"$out.0" 2>&1 || die "wrk failed: $(tail -n 5 "$out.0")"
        t1=$(cpu_ticks "$pid")
        read -r n secs errs < <(awk '
            /requests in/ { n = $1; s = $4 + 0 }
            /Socket errors/ { gsub(/[^0-9 ]/, " "); errs = $1 + $2 + $3 + $4 }
            /Non-2xx/ { errs += $NF }
            END { print n + 0, s, errs + 0 }' "$out.0")
    else
        local cpids=()
        for ((i = 0; i < CLIENTS; i++)); do
            timeout --kill-after=5 $((secs + 30)) taskset -c "$CPU_LOAD" openssl s_time -connect "$HOST:$port" \
                -new -"${ver/TLSv1./tls1_}" -time "$secs" -www / >"$out.$i" 2>&1 &
            cpids+=($!)
        done
        for i in "${!cpids[@]}"; do
            wait "${cpids[$i]}" || errs=$((errs + 1))
        done
        t1=$(cpu_ticks "$pid")
        for ((i = 0; i < CLIENTS; i++)); do
            c=$(awk '/connections in .* real seconds/ { print $1 }' "$out.$i")
            [[ -n $c ]] || { errs=$((errs + 1)); log "s_time $i: $(tr -d '*' <"$out.$i" | tail -n 3)"; continue; }
            n=$((n + c))
            grep -q "bytes read [1-9]" "$out.$i" || errs=$((errs + 1))
        done
        # s_time counts for -time seconds of real time, plus the connection under way.
    fi
    if [[ $port == "$HAPROXY_PORT" ]]; then
        s1=$(haproxy_ssl)
        read -r a0 b0 <<<"$s0"
        read -r a1 b1 <<<"$s1"
        log "    HAProxy counters over the run: $((a1 - a0)) new TLS sessions, $((b1 - b0)) resumed"
        if [[ $MODE == full ]] && ((b1 - b0 != 0 || a1 - a0 < n)); then
            die "not full handshakes: HAProxy counted $((a1 - a0)) new and $((b1 - b0)) resumed sessions for $n connections"
        fi
    fi
    awk -v n="$n" -v s="$secs" -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v e="$errs" \
        'BEGIN { printf "%.0f %.1f %d\n", n / s, (n > 0 ? d / hz * 1e6 / n : 0), e }'
}

# cap CPU_US: handshakes per second of one thread with a whole CPU.
cap() { awk -v c="$1" 'BEGIN { printf "%.0f", (c > 0 ? 1e6 / c : 0) }'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

make_cert ecdsa -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
make_cert rsa -newkey rsa:2048

table="| certificate | TLS | HAProxy hs/s | lbha hs/s | HAProxy CPU µs/hs | lbha CPU µs/hs | HAProxy capacity hs/s | lbha capacity hs/s | capacity ratio (lbha/HAProxy) | errors |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
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
                if [[ $t == h ]]; then read -r r c e < <(measure "$HAPROXY_PORT" "$HPID" "$ver"); hr+="$r " hc+="$c "
                else read -r r c e < <(measure "$LBHA_PORT" "$LPID" "$ver"); lr+="$r " lc+="$c "; fi
                errs=$((errs + e))
                log "  run $run $t: $r hs/s, $c µs CPU/hs, $e errors"
            done
        done
        stop
        H=$(median <<<"$hr") L=$(median <<<"$lr") HC=$(median <<<"$hc") LC=$(median <<<"$lc")
        name=$([[ $cert == ecdsa ]] && echo "ECDSA P-256" || echo "RSA 2048")
        table+=$'\n'"| $name | ${ver#TLSv} | $H | $L | $HC | $LC | $(cap "$HC") | $(cap "$LC") | $(awk -v a="$HC" -v b="$LC" 'BEGIN { printf "%.2f", a / b }') | $errs |"
    done
done
printf '%s\n' "$table"
if [[ $MODE == full ]]; then
    client="$CLIENTS x openssl s_time -new -www / -time ${DURATION%s} (full handshakes, HAProxy: 0 resumed)"
else
    client="wrk -t1 -c$CONNECTIONS -d$DURATION, Connection: close (resumed handshakes)"
fi
printf '\n%s; medians of %s runs; proxies nbthread 1 on CPU %s, clients on CPU %s; load average %s.\n' \
    "$client" "$RUNS" "$CPU_PROXY" "$CPU_LOAD" "$(cut -d' ' -f1-3 /proc/loadavg)"
[[ -z $OUT_FILE ]] || printf '%s\n' "$table" >"$OUT_FILE"
