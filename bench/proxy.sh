#!/usr/bin/env bash
# Side-by-side loopback benchmark of lbha and HAProxy in front of the same nginx-light backends.
# Absolute numbers drift 5-40% between runs on shared machines, so both proxies run in the same
# invocation, alternate run by run, and are compared only as a ratio. See bench/README.md.
set -euo pipefail

# Debian keeps haproxy and nginx in /usr/sbin, which is not on a normal user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT=$(dirname "$SCRIPT_DIR")
CONF_DIR="$SCRIPT_DIR/conf"
readonly SCRIPT_DIR REPO_ROOT CONF_DIR

readonly HOST=127.0.0.1
readonly HAPROXY_PORT=18080
readonly LBHA_PORT=18090
readonly NGINX_PORT1=18081
readonly NGINX_PORT2=18082
readonly HAPROXY_STATS_PORT=18083  # ACL scenario only: proves which backend served the requests
readonly LBHA_STATS_PORT=18093
readonly SINK_PORT=18095          # log-format scenario only: the UDP syslog sink both proxies log to
readonly WS_PORT1=18084           # WebSocket scenario only: the two echo servers (bench/ws_echo.py)
readonly WS_PORT2=18085
readonly WS_MAX_MESSAGES=10000000 # a bound on each WebSocket client run besides its duration
readonly RATE_LOADS="50 90"       # tail-latency scenario: constant rates, % of each proxy's own maximum
readonly CPU_LOAD=0    # nginx and wrk
readonly CPU_PROXY=1   # the proxy under test
readonly PORT_WAIT_SECS=10
readonly STOP_WAIT_SECS=5

# The ACL scenarios' request and map: ACL_* and MAP_ENTRIES in lib.sh.

# id|group|label|proxy mode|path|variant. --scenarios takes ids or groups. Variants: plain (one
# listen section), acl (conf/*-acl.*.tmpl, Host: $ACL_HOST), aclmap (acl, whose last rule names its
# backend by a lookup in a 10,000-entry map, $MAP_ENTRIES), track (conf/*-track.*.tmpl: plain plus the
# stick-counter rate limit), tls (plain with an ssl bind, wrk over https),
# gzip (conf/*-gzip.*.tmpl, wrk sends Accept-Encoding: gzip), cache (conf/*-cache.*.tmpl),
# logfmt (conf/*-logfmt.*.tmpl, a 15-field log-format line per request to a UDP sink, udp_sink.py),
# tlsclose (tls, every request on a new connection: handshakes per second), h2c (a `proto h2` bind,
# h2load instead of wrk; the proxies still speak HTTP/1.1 to nginx), ws (conf/*-ws.*.tmpl: WebSocket
# echo through the proxy to bench/ws_echo.py, messages per second), rate (h2load --h1: the maximum
# rate, then constant rates at RATE_LOADS % of it with p50/p99/p99.9). --nbthread adds a 7th field.
readonly SCENARIOS=(
    "http-3b|http|http keep-alive, 3-byte body|http|/|plain"
    "http-16k|http|http keep-alive, 16 KiB body|http|/16k|plain"
    "tcp-3b|tcp|tcp mode, 3-byte body|tcp|/|plain"
    "acl-3b|acl|ACL routing (20 ACLs, 10 backends, last rule matches), keep-alive, 3-byte body|http|$ACL_PATH|acl"
    "aclmap-3b|acl|ACL routing (20 ACLs) + use_backend by a 10,000-entry map (map_str of the Host), keep-alive, 3-byte body|http|$ACL_PATH|aclmap"
    "track-3b|track|rate limit (track-sc0 src, deny if sc_http_req_rate(0) gt 100000000), keep-alive, 3-byte body|http|/|track"
    "https-3b|https|https keep-alive (TLS termination, plain http to nginx), 3-byte body|http|/|tls"
    "https-new|https|https, a new TLS connection per request (Connection: close), 3-byte body|http|/|tlsclose"
    "h2-3b|h2|HTTP/2 clients (h2load, 64 connections x 10 streams, cleartext h2), 3-byte body|http|/|h2c"
    "h2-16k|h2|HTTP/2 clients (h2load, 64 connections x 10 streams, cleartext h2), 16 KiB body|http|/16k|h2c"
    "gzip-64k|gzip|gzip of a 64 KiB compressible text body (Accept-Encoding: gzip), level 1|http|/64k|gzip"
    "cache-4k|cache|cache hits of a 4 KiB object (max-age=3600 from nginx)|http|/4k|cache"
    "logfmt-15|logfmt|custom log-format (15 fields) per request to a UDP syslog sink, 3-byte body|http|/|logfmt"
    "ws-echo|ws|WebSocket echo (32-byte messages, one in flight per connection; Python echo server and client)|http|/ws|ws"
    "rate-3b|latency|http keep-alive at constant rates (h2load --h1 --rps), 3-byte body: maximum, then 50% and 90% of it|http|/|rate"
)

LBHA="$REPO_ROOT/target/release/lbha"
DURATION=10s
CONNECTIONS=64
RUNS=3
OUT_FILE=""
SCENARIO_LIST=""
SELECTED=()   # entries of SCENARIOS to run, in table order, each with its nbthread appended
NBTHREADS=1   # --nbthread: comma-separated thread counts, each scenario runs at every one
H2_STREAMS=10
CPU_ALL=0     # --cpu-all: the CPU-per-request table for every row, not only gzip and cache
DIRECT=1      # --no-direct: skip the runs straight to the backends (the reference table)

WORK=""
PIDS=()
LOAD_CPUS=0   # where wrk/h2load run for the scenario at hand
declare -A RPS=() P99=() ERRS=() RSS=() TLS_PARAMS=() CPU_US=() LAT=()
WRK_HEADER=""   # one extra request header for wrk and the probes (the gzip scenario's Accept-Encoding)
CERT=""

usage() {
    cat <<EOF
usage: bench/proxy.sh [--lbha PATH] [--duration 10s] [--connections 64] [--runs 3] [--out FILE]
                      [--scenarios LIST] [--nbthread LIST]

Runs wrk against HAProxy (127.0.0.1:$HAPROXY_PORT) and lbha (127.0.0.1:$LBHA_PORT), both balancing
over one nginx-light worker on 127.0.0.1:$NGINX_PORT1 and :$NGINX_PORT2, in http keep-alive, tcp mode,
ACL-heavy routing and https keep-alive, and prints a Markdown table of medians with the lbha/HAProxy
ratios.

  --lbha PATH        lbha binary (default: target/release/lbha under the repo root)
  --duration D       wrk duration per run: N, Ns, Nm or Nh (default: 10s)
  --connections N    wrk connections, one wrk thread (default: 64)
  --runs N           runs per proxy and scenario; the median is reported (default: 3)
  --scenarios LIST   comma-separated scenarios to run (default: all):
$(scenario_help)
  --nbthread LIST    thread counts for both proxies, e.g. 1,2 (default: 1); with more than one
                     thread the proxies, nginx and the load generator share both CPUs (this machine
                     has two), and each proxy's scaling against its own 1-thread figure is reported
  --out FILE         also write the result tables to FILE
  --cpu-all          print the CPU time per request of each proxy for every row (default: only
                     the gzip and cache rows)
  --no-direct        skip the reference runs straight to the backends (bench/smoke.sh, for time)
  -h, --help         show this help

Exit status: 0 when the table was printed, 1 when the benchmark failed, 2 on usage errors or
missing prerequisites.
EOF
}

# One line per group for the usage text: "group  id, id".
scenario_help() {
    local entry id group rest groups=() g ids
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r id group rest <<<"$entry"
        [[ " ${groups[*]} " == *" $group "* ]] || groups+=("$group")
    done
    for g in "${groups[@]}"; do
        ids=""
        for entry in "${SCENARIOS[@]}"; do
            IFS='|' read -r id group rest <<<"$entry"
            [[ $group == "$g" ]] && ids+="$id, "
        done
        printf '                       %-6s %s\n' "$g" "${ids%, }"
    done
}


parse_args() {
    while (($# > 0)); do
        case $1 in
            --lbha | --duration | --connections | --runs | --out | --scenarios | --nbthread)
                (($# >= 2)) || usage_error "$1 needs a value"
                case $1 in
                    --lbha) LBHA=$2 ;;
                    --duration) DURATION=$2 ;;
                    --connections) CONNECTIONS=$2 ;;
                    --runs) RUNS=$2 ;;
                    --out) OUT_FILE=$2 ;;
                    --scenarios) SCENARIO_LIST=$2 ;;
                    --nbthread) NBTHREADS=$2 ;;
                esac
                shift 2
                ;;
            --cpu-all) CPU_ALL=1; shift ;;
            --no-direct) DIRECT=0; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown argument: $1" ;;
        esac
    done
    [[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || usage_error "--duration must look like 10s, 2m or 1h (got '$DURATION')"
    [[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || usage_error "--connections must be a positive integer (got '$CONNECTIONS')"
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || usage_error "--runs must be a positive integer (got '$RUNS')"
    [[ $NBTHREADS =~ ^[1-9][0-9]?(,[1-9][0-9]?)*$ ]] || usage_error "--nbthread must be a list such as 1,2 (got '$NBTHREADS')"
    select_scenarios
    expand_threads
}

# One entry per selected scenario and thread count: id "ID" at 1 thread, "ID-tN" at N threads.
expand_threads() {
    local entry id group label mode path variant nt counts=() out=()
    IFS=',' read -r -a counts <<<"$NBTHREADS"
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r id group label mode path variant <<<"$entry"
        for nt in "${counts[@]}"; do
            if ((nt == 1)); then
                out+=("$id|$group|$label|$mode|$path|$variant|1")
            else
                out+=("$id-t$nt|$group|$label, nbthread $nt|$mode|$path|$variant|$nt")
            fi
        done
    done
    SELECTED=("${out[@]}")
}

# Fills SELECTED from --scenarios: each item is a scenario id or a group; table order is kept.
select_scenarios() {
    local entry id group rest item known=()
    local -A wanted=()
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r id group rest <<<"$entry"
        known+=("$id")
        [[ " ${known[*]} " == *" $group "* ]] || known+=("$group")
    done
    if [[ -z $SCENARIO_LIST ]]; then
        SELECTED=("${SCENARIOS[@]}")
        return
    fi
    [[ $SCENARIO_LIST =~ ^[a-z0-9-]+(,[a-z0-9-]+)*$ ]] ||
        usage_error "--scenarios must be a comma-separated list such as http,tcp (got '$SCENARIO_LIST')"
    local items=()
    IFS=',' read -r -a items <<<"$SCENARIO_LIST"
    for item in "${items[@]}"; do
        [[ " ${known[*]} " == *" $item "* ]] ||
            usage_error "--scenarios: unknown scenario '$item' (known: $(printf '%s, ' "${known[@]}" | sed 's/, $//'))"
        wanted[$item]=1
    done
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r id group rest <<<"$entry"
        if [[ -n ${wanted[$id]:-} || -n ${wanted[$group]:-} ]]; then
            SELECTED+=("$entry")
        fi
    done
}

# True when a selected scenario has this variant (plain, acl, tls, tlsclose, h2c).
selected_variant() {
    local entry id group label mode path variant threads
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r id group label mode path variant threads <<<"$entry"
        [[ $variant == "$1" ]] && return 0
    done
    return 1
}

# Seconds in a wrk duration, to bound each wrk with a timeout of its own.
duration_secs() {
    local n=${DURATION%[smh]}
    case $DURATION in
        *m) echo $((n * 60)) ;;
        *h) echo $((n * 3600)) ;;
        *) echo "$n" ;;
    esac
}

check_prerequisites() {
    local missing=()
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    if selected_variant tls || selected_variant tlsclose; then
        command -v openssl >/dev/null || missing+=(openssl)
    fi
    if selected_variant h2c || selected_variant rate; then
        command -v h2load >/dev/null || missing+=(nghttp2-client)
    fi
    if selected_variant ws; then
        command -v python3 >/dev/null || missing+=(python3)
    fi
    if ((${#missing[@]} > 0)); then
        local sudo=""
        ((EUID == 0)) || sudo="sudo "
        printf 'proxy.sh: missing: %s\n' "${missing[*]}" >&2
        printf 'proxy.sh: install with:\n  %sapt-get install -y %s\n' "$sudo" "${missing[*]}" >&2
        exit 2
    fi
    if [[ ! -x $LBHA ]]; then
        printf 'proxy.sh: lbha binary not found or not executable: %s\n' "$LBHA" >&2
        printf 'proxy.sh: build it with:\n  (cd %s && cargo build --release)\nor pass --lbha PATH\n' "$REPO_ROOT" >&2
        exit 2
    fi
    local tmpl
    for tmpl in nginx.conf.tmpl haproxy-http.cfg.tmpl haproxy-tcp.cfg.tmpl lbha.toml.tmpl haproxy-acl.cfg.tmpl lbha-acl.toml.tmpl \
        haproxy-track.cfg.tmpl lbha-track.toml.tmpl \
        haproxy-gzip.cfg.tmpl lbha-gzip.toml.tmpl haproxy-cache.cfg.tmpl lbha-cache.toml.tmpl \
        haproxy-logfmt.cfg.tmpl lbha-logfmt.toml.tmpl haproxy-ws.cfg.tmpl lbha-ws.toml.tmpl; do
        [[ -r $CONF_DIR/$tmpl ]] || die "missing config template $CONF_DIR/$tmpl"
    done
    if ! taskset -c "$CPU_LOAD,$CPU_PROXY" true 2>/dev/null; then
        printf 'proxy.sh: needs CPUs %s and %s for pinning; this process may use: %s\n' \
            "$CPU_LOAD" "$CPU_PROXY" "$(taskset -cp $$ | sed 's/.*: //')" >&2
        exit 2
    fi
}

# Both proxies are configured for maxconn 10000; give them (and nginx) every descriptor the hard limit allows.
raise_fd_limit() {
    local hard
    hard=$(ulimit -Hn)
    ulimit -n "$hard" 2>/dev/null || log "could not raise the open-files limit to $hard; staying at $(ulimit -n)"
}

check_ports_free() {
    local port ports=("$NGINX_PORT1" "$NGINX_PORT2" "$HAPROXY_PORT" "$LBHA_PORT")
    if selected_variant acl || selected_variant aclmap; then
        ports+=("$HAPROXY_STATS_PORT" "$LBHA_STATS_PORT")
    fi
    selected_variant ws && ports+=("$WS_PORT1" "$WS_PORT2")
    for port in "${ports[@]}"; do
        if port_open "$port"; then
            die "something already listens on $HOST:$port; stop it first (it would skew or break the benchmark)"
        fi
    done
}

# Starts "$@" in the background with output to $1's log; sets STARTED_PID.
STARTED_PID=""
start_bg() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

wait_port() {
    local name=$1 port=$2 pid=$3 logfile=$4
    local deadline=$((SECONDS + PORT_WAIT_SECS))
    while ! port_open "$port"; do
        alive "$pid" || die "$name exited during startup (it never listened on $HOST:$port)$(log_tail "$logfile")"
        ((SECONDS < deadline)) || die "$name did not accept connections on $HOST:$port within ${PORT_WAIT_SECS} s$(log_tail "$logfile")"
        sleep 0.1
    done
}

cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    if [[ -n $WORK && -d $WORK ]]; then
        rm -rf -- "$WORK"
    fi
}

on_signal() {
    log "interrupted by SIG$1; stopping everything"
    case $1 in
        INT) exit 130 ;;
        *) exit 143 ;;
    esac
}

NGINX_PID=""
start_nginx() {
    mkdir -p "$WORK/www" "$WORK/nginx-tmp"
    head -c 16384 /dev/zero | tr '\0' 'x' >"$WORK/www/16k"
    head -c 4096 /dev/zero | tr '\0' 'c' >"$WORK/www/4k"
    # Text that compresses like a page or a log (about 5:1 at level 1), not a run of one byte.
    # (Cut with truncate: `| head -c` would end awk with SIGPIPE, fatal under pipefail.)
    seq 1 5000 | awk '{ printf "%06d GET /app/v1/items/%d?page=%d HTTP/1.1 200 user=u%d ok\n", $1, $1 * 7 % 1000, $1 % 13, $1 % 97 }' \
        >"$WORK/www/64k"
    truncate -s 65536 "$WORK/www/64k"
    # As root nginx would drop its worker to "nobody", which cannot read the 0700 temp dir.
    local user_directive=""
    ((EUID == 0)) && user_directive="user $(id -un) $(id -gn);"
    render nginx.conf.tmpl "$WORK/nginx.conf" USER_DIRECTIVE="$user_directive"
    nginx -t -q -e "$WORK/nginx-error.log" -p "$WORK/" -c "$WORK/nginx.conf" >"$WORK/nginx-check.log" 2>&1 ||
        die "nginx rejected $WORK/nginx.conf$(log_tail "$WORK/nginx-check.log")$(log_tail "$WORK/nginx-error.log")"
    start_bg "$WORK/nginx.log" taskset -c "$CPU_LOAD" nginx -e "$WORK/nginx-error.log" -p "$WORK/" -c "$WORK/nginx.conf"
    NGINX_PID=$STARTED_PID
    wait_port nginx "$NGINX_PORT1" "$NGINX_PID" "$WORK/nginx-error.log"
    wait_port nginx "$NGINX_PORT2" "$NGINX_PID" "$WORK/nginx-error.log"
    probe nginx "$NGINX_PORT1" /
    probe nginx "$NGINX_PORT2" /16k
}

# Starts HAProxy and lbha for one scenario; sets HAPROXY_PID and LBHA_PID.
HAPROXY_PID=""
LBHA_PID=""
SINK_PID=""
start_proxies() {
    local mode=$1 scen=$2 variant=$3 threads=$4 cpus=$CPU_PROXY
    ((threads == 1)) || cpus="$CPU_LOAD,$CPU_PROXY"
    local hcfg="$WORK/haproxy-$scen.cfg" lcfg="$WORK/lbha-$scen.toml"
    local hlog="$WORK/haproxy-$scen.log" llog="$WORK/lbha-$scen.log"
    local htmpl="haproxy-$mode.cfg.tmpl" ltmpl=lbha.toml.tmpl bind_opts="" shop_rule=$ACL_BACKEND
    case $variant in
        acl) htmpl=haproxy-acl.cfg.tmpl ltmpl=lbha-acl.toml.tmpl ;;
        aclmap)
            htmpl=haproxy-acl.cfg.tmpl ltmpl=lbha-acl.toml.tmpl
            shop_rule="%[req.hdr(host),lower,map($WORK/hosts.map,be_php)]"
            # Every other host maps to one of the nine other backends; the request's host is the last line.
            write_hosts_map "$WORK/hosts.map" "$MAP_ENTRIES" "$ACL_HOST" "$ACL_BACKEND" "$ACL_BACKENDS"
            ;;
        track) htmpl=haproxy-track.cfg.tmpl ltmpl=lbha-track.toml.tmpl ;;
        gzip) htmpl=haproxy-gzip.cfg.tmpl ltmpl=lbha-gzip.toml.tmpl ;;
        cache) htmpl=haproxy-cache.cfg.tmpl ltmpl=lbha-cache.toml.tmpl ;;
        logfmt)
            htmpl=haproxy-logfmt.cfg.tmpl ltmpl=lbha-logfmt.toml.tmpl
            # Pinned with the load generator: the sink's cost is the same for both proxies.
            start_bg "$WORK/sink.log" taskset -c "$CPU_LOAD" python3 "$SCRIPT_DIR/udp_sink.py" "$HOST" "$SINK_PORT" "$WORK/sink.state"
            SINK_PID=$STARTED_PID
            ;;
        tls | tlsclose) bind_opts=" ssl crt $CERT alpn h2,http/1.1" ;;
        h2c) bind_opts=" proto h2" ;;
        ws)
            htmpl=haproxy-ws.cfg.tmpl ltmpl=lbha-ws.toml.tmpl
            # Pinned with the load generator, as nginx is: the same for both proxies.
            start_bg "$WORK/ws-echo.log" taskset -c "$CPU_LOAD" python3 "$SCRIPT_DIR/ws_echo.py" server "$HOST" "$WS_PORT1" "$WS_PORT2"
            SINK_PID=$STARTED_PID
            wait_port "ws echo server" "$WS_PORT1" "$SINK_PID" "$WORK/ws-echo.log"
            wait_port "ws echo server" "$WS_PORT2" "$SINK_PID" "$WORK/ws-echo.log"
            ;;
    esac
    render "$htmpl" "$hcfg" MODE="$mode" PORT="$HAPROXY_PORT" BIND_OPTS="$bind_opts" STATS_PORT="$HAPROXY_STATS_PORT" NBTHREAD="$threads" SINK_PORT="$SINK_PORT" SHOP_RULE="$shop_rule" WS_PORT1="$WS_PORT1" WS_PORT2="$WS_PORT2"
    render "$ltmpl" "$lcfg" MODE="$mode" PORT="$LBHA_PORT" BIND_OPTS="$bind_opts" STATS_PORT="$LBHA_STATS_PORT" NBTHREAD="$threads" SINK_PORT="$SINK_PORT" SHOP_RULE="$shop_rule" WS_PORT1="$WS_PORT1" WS_PORT2="$WS_PORT2"

    haproxy -c -q -f "$hcfg" >"$hlog" 2>&1 || die "haproxy rejected $hcfg$(log_tail "$hlog")"
    start_bg "$hlog" taskset -c "$cpus" haproxy -db -f "$hcfg"
    HAPROXY_PID=$STARTED_PID

    "$LBHA" check -c "$lcfg" >"$llog" 2>&1 || die "lbha check rejected $lcfg$(log_tail "$llog")"
    start_bg "$llog" taskset -c "$cpus" "$LBHA" run -c "$lcfg" -S "$(dirname "$lcfg")/lbha.sock"
    LBHA_PID=$STARTED_PID

    wait_port haproxy "$HAPROXY_PORT" "$HAPROXY_PID" "$hlog"
    wait_port lbha "$LBHA_PORT" "$LBHA_PID" "$llog"
    if [[ $variant == acl* ]]; then
        wait_port "haproxy stats" "$HAPROXY_STATS_PORT" "$HAPROXY_PID" "$hlog"
        wait_port "lbha stats" "$LBHA_STATS_PORT" "$LBHA_PID" "$llog"
    fi
}

# One request with Connection: close, so a proxy that accepts but cannot forward fails here
# with a clear message instead of as a table full of wrk errors.
# probe NAME PORT PATH [SCHEME [HOST_HEADER]]; https goes through `openssl s_client`.
probe() {
    local name=$1 port=$2 path=$3 scheme=${4:-http} host=${5:-$HOST} status
    if [[ $scheme == h2c ]]; then
        timeout 10 h2load -n1 -c1 "http://$HOST:$port$path" 2>&1 | grep -q ' 1 succeeded' ||
            die "$name on h2c://$HOST:$port did not answer GET $path over cleartext HTTP/2"
        return
    fi
    if [[ $scheme == https ]]; then
        status=$(printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" |
            timeout 5 openssl s_client -quiet -connect "$HOST:$port" 2>/dev/null | head -n 1) || true
    else
        # shellcheck disable=SC2016 # $0..$3 belong to the inner bash, which gets them as arguments
        status=$(timeout 5 bash -c '
            exec 3<>"/dev/tcp/$0/$1" || exit 1
            printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$3" >&3
            head -n 1 <&3' "$HOST" "$port" "$path" "$host" 2>/dev/null) || true
    fi
    status=${status%$'\r'}
    [[ $status == "HTTP/1.1 200"* ]] ||
        die "$name on $scheme://$HOST:$port did not answer GET $path (Host: $host) with 200 (status line: '${status:-none}')"
}

# expect_header NAME PORT PATH REQUEST_HEADER REGEX: the response head to one GET carrying
# REQUEST_HEADER must have a line matching REGEX (lower-cased), so the scenario measures what it says.
expect_header() {
    local name=$1 port=$2 path=$3 hdr=$4 re=$5 head
    # shellcheck disable=SC2016 # $0..$3 belong to the inner bash, which gets them as arguments
    head=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n" "$2" "$0" "$3" >&3
        sed -n "1,/^\r\$/p" <&3' "$HOST" "$port" "$path" "$hdr" 2>/dev/null | tr -d '\r' | tr 'A-Z' 'a-z') || true
    grep -Eq "$re" <<<"$head" ||
        die "$name on $HOST:$port: GET $path with '$hdr' gave no header matching /$re/; head:"$'\n'"$head"
    log "  checked: $name answers GET $path ($hdr) with $(grep -E "$re" <<<"$head" | head -n 1)"
}

# "protocol cipher key-exchange" that an OpenSSL client (as wrk is) negotiates with HOST:PORT.
tls_params() {
    local out
    out=$(timeout 5 openssl s_client -brief -connect "$HOST:$1" </dev/null 2>&1) || true
    awk '
        /^Protocol version:/ { p = $3 }
        /^Ciphersuite:/ { c = $2 }
        /^(Server|Negotiated) Temp Key:/ { k = $4; sub(/,$/, "", k) }
        END { if (p == "" || c == "") exit 1; printf "%s %s%s\n", p, c, (k == "" ? "" : " " k) }' <<<"$out" ||
        die "could not make a TLS connection to $HOST:$1$(printf '\n%s' "$out" | tail -n 5)"
}

# Sessions per backend of the ACL scenario from a stats page's CSV, one "name count" a line.
# HTTP/1.0, so the body is not chunked.
backend_sessions() {
    local port=$1 csv
    # shellcheck disable=SC2016 # $0 and $1 belong to the inner bash, which gets them as arguments
    csv=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET /stats;csv HTTP/1.0\r\n\r\n" >&3
        cat <&3' "$HOST" "$port" 2>/dev/null | tr -d '\r') || true
    awk -F, '
        /^# pxname,/ { for (i = 1; i <= NF; i++) if ($i == "stot") col = i; next }
        col && $2 == "BACKEND" && $1 ~ /^be_/ { print $1, $col }
        END { if (!col) exit 1 }' <<<"$csv"
}

# Proves the ACL scenario measures what it claims: every request went to the last use_backend
# rule's backend, so each request evaluated all 20 ACLs.
check_acl_route() {
    local name=$1 port=$2 sessions be n
    sessions=$(backend_sessions "$port") || die "$name: no CSV with a stot column at http://$HOST:$port/stats;csv"
    for be in $ACL_BACKENDS; do
        n=$(awk -v b="$be" '$1 == b { print $2 }' <<<"$sessions")
        [[ $n =~ ^[0-9]+$ ]] || die "$name: the stats CSV on $HOST:$port has no session count for backend $be"
        if [[ $be == "$ACL_BACKEND" ]]; then
            ((n > 0)) || die "$name sent no request to $ACL_BACKEND, which the last use_backend rule should pick"
        elif ((n > 0)); then
            die "$name sent $n requests to $be; the benchmark request should match only the last use_backend rule ($ACL_BACKEND)"
        fi
    done
    log "  routing: $name sent every request to $ACL_BACKEND (stot $(awk -v b="$ACL_BACKEND" '$1 == b { print $2 }' <<<"$sessions")), none to the other 9 backends"
}

# Prints "req/s p99_ms errors" from a wrk --latency report, or fails if a field is missing.
parse_wrk() {
    awk '
        function to_ms(v,   n, unit) {
            n = v + 0
            unit = v
            sub(/^[0-9.]+/, "", unit)
            if (unit == "us") return n / 1000
            if (unit == "ms") return n
            if (unit == "s") return n * 1000
            if (unit == "m") return n * 60000
            if (unit == "h") return n * 3600000
            return -1
        }
        /^Requests\/sec:/ { rps = $2; have_rps = 1 }
        / requests in / { reqs = $1 }
        $1 == "99%" { p99 = to_ms($2); have_p99 = 1 }
        /^ *Socket errors:/ {
            for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(/,/, "", v); errs += v }
        }
        /^ *Non-2xx or 3xx responses:/ { errs += $NF }
        END {
            if (!have_rps || !have_p99 || p99 < 0) exit 1
            printf "%s %.3f %d %d\n", rps, p99, errs, reqs
        }' "$1"
}

# run_wrk TARGET SCENARIO RUN PORT PATH [SCHEME [HOST_HEADER [CLOSE]]]; CLOSE=close sends
# `Connection: close`, so every request opens a new connection (a TLS handshake over https).
run_wrk() {
    local target=$1 scen=$2 run=$3 port=$4 path=$5 scheme=${6:-http} host=${7:-} close=${8:-}
    local url="$scheme://$HOST:$port$path" out="$WORK/wrk-$scen-$target-$run.txt" rc=0 parsed
    local headers=() pid="" t0=0
    [[ -z $host ]] || headers=(-H "Host: $host")
    [[ -z $WRK_HEADER ]] || headers+=(-H "$WRK_HEADER")
    case $target in
        haproxy) pid=$HAPROXY_PID ;;
        lbha) pid=$LBHA_PID ;;
    esac
    [[ -z $pid ]] || t0=$(cpu_ticks "$pid")
    [[ -z $close ]] || headers+=(-H "Connection: close")
    # In the background plus `wait`, so a Ctrl-C or SIGTERM runs the trap at once: bash defers traps
    # while a foreground child runs, and skips the INT trap when that child (wrk) handles SIGINT itself.
    timeout --foreground --kill-after=5 "$WRK_TIMEOUT" \
        taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${headers[@]}" "$url" >"$out" 2>&1 &
    local wrk_pid=$!
    PIDS+=("$wrk_pid")
    wait "$wrk_pid" || rc=$?
    forget_pid "$wrk_pid"
    if ((rc != 0)); then
        ensure_target_alive "$target" "$scen"
        die "wrk against $target ($url) exited with status $rc$(log_tail "$out")"
    fi
    parsed=$(parse_wrk "$out") || die "could not parse the wrk report for $target ($url)$(log_tail "$out")"
    local rps p99 errs reqs
    read -r rps p99 errs reqs <<<"$parsed"
    record "$target" "$scen" "$rps" "$p99" "$errs" "$reqs" "$pid" "$t0"
    log "  run $run/$RUNS $(printf '%-7s' "$target") $(printf '%10.0f' "$rps") req/s  p99 $(printf '%7.2f' "$p99") ms  errors $errs"
}

# User plus system CPU time of a process so far, in clock ticks (fields 14 and 15 of its stat;
# the command name in field 2 is skipped by cutting after its closing parenthesis).
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# run_h2load TARGET SCENARIO RUN PORT PATH: cleartext HTTP/2 with $CONNECTIONS connections of
# $H2_STREAMS concurrent streams each; h2load prints no percentiles, so p99 comes from its
# per-request log.
run_h2load() {
    local target=$1 scen=$2 run=$3 port=$4 path=$5
    local url="http://$HOST:$port$path" out="$WORK/h2load-$scen-$target-$run.txt"
    local reqlog="$WORK/h2load-$scen-$target-$run.log" rc=0 parsed
    timeout --foreground --kill-after=5 "$WRK_TIMEOUT" \
        taskset -c "$LOAD_CPUS" h2load -t1 -c"$CONNECTIONS" -m"$H2_STREAMS" -D "$(duration_secs)" \
        --log-file="$reqlog" "$url" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    if ((rc != 0)); then
        ensure_target_alive "$target" "$scen"
        die "h2load against $target ($url) exited with status $rc$(log_tail "$out")"
    fi
    parsed=$(parse_h2load "$out" "$reqlog") || die "could not parse the h2load report for $target ($url)$(log_tail "$out")"
    local rps p99 errs
    read -r rps p99 errs <<<"$parsed"
    RPS[$scen/$target]+="$rps "
    P99[$scen/$target]+="$p99 "
    ERRS[$scen/$target]=$((${ERRS[$scen/$target]:-0} + errs))
    log "  run $run/$RUNS $(printf '%-7s' "$target") $(printf '%10.0f' "$rps") req/s  p99 $(printf '%7.2f' "$p99") ms  errors $errs"
}

# "req/s p99_ms errors" from h2load's report and per-request log (start, status, duration in us).
parse_h2load() {
    local report=$1 reqlog=$2 rps errs p99
    rps=$(awk '/^finished in/ { print $4 + 0; found = 1 } END { if (!found) exit 1 }' "$report") || return 1
    errs=$(awk '
        /^requests:/ { e += $10 + $12 + $14; r = 1 }
        /^status codes:/ { e += $5 + $7 + $9 }
        END { if (!r) exit 1; print e }' "$report") || return 1
    p99=$(cut -f3 "$reqlog" | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }') || return 1
    printf '%s %s %d\n' "$rps" "$p99" "$errs"
}

# run_ws TARGET SCENARIO RUN PORT: $CONNECTIONS WebSocket connections through TARGET to the echo
# servers, each with one 32-byte message in flight, for the wrk duration (and at most
# WS_MAX_MESSAGES in all); records messages per second, p99 per message and CPU per message.
run_ws() {
    local target=$1 scen=$2 run=$3 port=$4 out="$WORK/ws-$scen-$1-$3.txt" rc=0 pid="" t0=0 t1
    case $target in
        haproxy) pid=$HAPROXY_PID ;;
        lbha) pid=$LBHA_PID ;;
    esac
    [[ -z $pid ]] || t0=$(cpu_ticks "$pid")
    timeout --foreground --kill-after=5 "$WRK_TIMEOUT" taskset -c "$LOAD_CPUS" \
        python3 "$SCRIPT_DIR/ws_echo.py" client "$HOST" "$port" "$CONNECTIONS" "$(duration_secs)" "$WS_MAX_MESSAGES" >"$out" 2>&1 &
    local ws_pid=$!
    PIDS+=("$ws_pid")
    wait "$ws_pid" || rc=$?
    forget_pid "$ws_pid"
    if ((rc != 0)); then
        ensure_target_alive "$target" "$scen"
        die "the WebSocket client against $target ($HOST:$port) exited with status $rc$(log_tail "$out")"
    fi
    local mps p99 errs msgs
    read -r mps p99 errs msgs < <(tail -n 1 "$out") || true
    [[ $msgs =~ ^[0-9]+$ ]] || die "could not parse the WebSocket client's report for $target$(log_tail "$out")"
    record "$target" "$scen" "$mps" "$p99" "$errs" "$msgs" "$pid" "$t0"
    log "  run $run/$RUNS $(printf '%-7s' "$target") $(printf '%10.0f' "$mps") msg/s  p99 $(printf '%7.2f' "$p99") ms  errors $errs"
}

# record TARGET SCENARIO RATE P99 ERRORS COUNT PID CPU_TICKS_BEFORE: one run's figures.
record() {
    local target=$1 scen=$2 rate=$3 p99=$4 errs=$5 count=$6 pid=$7 t0=$8 t1
    if [[ -n $pid ]]; then
        t1=$(cpu_ticks "$pid")
        CPU_US[$scen/$target]+="$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$count" \
            'BEGIN { if (n > 0) printf "%.2f", d / hz * 1e6 / n; else print 0 }') "
    fi
    RPS[$scen/$target]+="$rate "
    P99[$scen/$target]+="$p99 "
    ERRS[$scen/$target]=$((${ERRS[$scen/$target]:-0} + errs))
}

# run_rate TARGET SCENARIO RUN PORT PATH: h2load over HTTP/1.1 ($CONNECTIONS connections, one
# request in flight each), first as fast as it goes (the target's maximum), then at each of
# RATE_LOADS % of that maximum (--rps per connection: a constant rate); p50/p99/p99.9 come from
# h2load's per-request log. h2load times a request from when it is sent, so time a request waits
# behind a slow one is not counted (unlike wrk2's coordinated-omission correction): below the
# maximum that wait is small, and it is the same tool for both proxies.
run_rate() {
    local target=$1 scen=$2 run=$3 port=$4 path=$5 url="http://$HOST:$4$5" pct max rps pid="" t0=0
    case $target in
        haproxy) pid=$HAPROXY_PID ;;
        lbha) pid=$LBHA_PID ;;
    esac
    [[ -z $pid ]] || t0=$(cpu_ticks "$pid")
    rate_h2load "$target" "$scen" "$run" max "$url" || return 1
    local rate p50 p99 p999 errs n
    read -r rate p50 p99 p999 errs n <<<"$RATE_RESULT"
    record "$target" "$scen" "$rate" "$p99" "$errs" "$n" "$pid" "$t0"
    max=$rate
    log "  run $run/$RUNS $(printf '%-7s' "$target") max $(printf '%10.0f' "$rate") req/s  p50/p99/p99.9 $p50/$p99/$p999 ms  errors $errs"
    for pct in $RATE_LOADS; do
        rps=$(awk -v m="$max" -v p="$pct" -v c="$CONNECTIONS" 'BEGIN { r = m * p / 100 / c; printf "%.2f", (r < 0.01 ? 0.01 : r) }')
        rate_h2load "$target" "$scen" "$run" "$pct" "$url" --rps="$rps"
        read -r rate p50 p99 p999 errs n <<<"$RATE_RESULT"
        LAT[$scen/$target/$pct]+="$p50 "
        LAT[$scen/$target/$pct/99]+="$p99 "
        LAT[$scen/$target/$pct/999]+="$p999 "
        LAT[$scen/$target/$pct/rate]+="$rate "
        ERRS[$scen/$target]=$((${ERRS[$scen/$target]:-0} + errs))
        log "  run $run/$RUNS $(printf '%-7s' "$target") at $pct% ($(printf '%.0f' "$rate") req/s)  p50/p99/p99.9 $p50/$p99/$p999 ms  errors $errs"
    done
}

# rate_h2load TARGET SCENARIO RUN TAG URL [H2LOAD_ARGS...]: sets RATE_RESULT to
# "req/s p50_ms p99_ms p99.9_ms errors requests".
RATE_RESULT=""
rate_h2load() {
    local target=$1 scen=$2 run=$3 tag=$4 url=$5 rc=0
    shift 5
    local out="$WORK/rate-$scen-$target-$run-$tag.txt" reqlog="$WORK/rate-$scen-$target-$run-$tag.log"
    timeout --foreground --kill-after=5 "$WRK_TIMEOUT" \
        taskset -c "$LOAD_CPUS" h2load --h1 -t1 -c"$CONNECTIONS" -D "$(duration_secs)" "$@" --log-file="$reqlog" "$url" >"$out" 2>&1 &
    local h_pid=$!
    PIDS+=("$h_pid")
    wait "$h_pid" || rc=$?
    forget_pid "$h_pid"
    if ((rc != 0)); then
        ensure_target_alive "$target" "$scen"
        die "h2load against $target ($url) exited with status $rc$(log_tail "$out")"
    fi
    local parsed rps p99 errs pcts
    parsed=$(parse_h2load "$out" "$reqlog") || die "could not parse the h2load report for $target ($url)$(log_tail "$out")"
    read -r rps p99 errs <<<"$parsed"
    pcts=$(cut -f3 "$reqlog" | sort -n | awk '
        { v[NR] = $1 }
        function at(q,   i) { i = int(NR * q); if (i < 1) i = 1; return v[i] / 1000 }
        END { if (NR == 0) exit 1; printf "%.3f %.3f %.3f %d", at(0.5), at(0.99), at(0.999), NR }') ||
        die "h2load against $target ($url) logged no request$(log_tail "$out")"
    local p50 p99b p999 n
    read -r p50 p99b p999 n <<<"$pcts"
    RATE_RESULT="$rps $p50 $p99b $p999 $errs $n"
}

ensure_alive() {
    local name=$1 pid=$2 logfile=$3
    alive "$pid" || die "$name died during the benchmark$(log_tail "$logfile")"
}

ensure_target_alive() {
    case $1 in
        direct) ensure_alive nginx "$NGINX_PID" "$WORK/nginx-error.log" ;;
        haproxy) ensure_alive haproxy "$HAPROXY_PID" "$WORK/haproxy-$2.log" ;;
        lbha) ensure_alive lbha "$LBHA_PID" "$WORK/lbha-$2.log" ;;
    esac
}

# VmHWM is the peak resident set of the process since it started.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) exit 1 }' "/proc/$1/status" ||
        die "could not read VmHWM of pid $1"
}

median() {
    # shellcheck disable=SC2086 # the values are a space-separated list on purpose
    printf '%s\n' $1 | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

port_of() {
    case $1 in
        haproxy) echo "$HAPROXY_PORT" ;;
        lbha) echo "$LBHA_PORT" ;;
    esac
}

# lbha / HAProxy with two decimals, or n/a when HAProxy measured zero.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

bench_scenario() {
    local scen=$1 label=$2 mode=$3 path=$4 variant=$5 threads=$6 run scheme=http host="" close="" tool=wrk
    [[ $variant == tls || $variant == tlsclose ]] && scheme=https
    [[ $variant == tlsclose ]] && close=close
    [[ $variant == h2c ]] && scheme=h2c tool=h2load
    [[ $variant == ws ]] && tool=ws-echo
    [[ $variant == rate ]] && tool="h2load --h1 --rps"
    [[ $variant == acl* ]] && host=$ACL_HOST
    LOAD_CPUS=$CPU_LOAD
    ((threads == 1)) || LOAD_CPUS="$CPU_LOAD,$CPU_PROXY"
    log "scenario: $label (proxy mode $mode, $tool over $scheme, GET $path${host:+, Host: $host})"
    start_proxies "$mode" "$scen" "$variant" "$threads"
    log "  pinning: haproxy $(taskset -cp "$HAPROXY_PID" | sed 's/.*: /cpu /'), lbha $(taskset -cp "$LBHA_PID" | sed 's/.*: /cpu /')"
    if [[ $variant == ws ]]; then
        # Ten messages each way through each proxy before the runs: the upgrade and the echo work.
        local p
        for p in "$HAPROXY_PORT" "$LBHA_PORT"; do
            timeout 20 python3 "$SCRIPT_DIR/ws_echo.py" client "$HOST" "$p" 1 10 10 >"$WORK/ws-probe.txt" 2>&1 &&
                [[ $(awk '{ print $4 }' "$WORK/ws-probe.txt") == 10 ]] ||
                die "no WebSocket echo through $HOST:$p$(log_tail "$WORK/ws-probe.txt")$(log_tail "$WORK/ws-echo.log")"
        done
    else
        probe haproxy "$HAPROXY_PORT" "$path" "$scheme" "${host:-$HOST}"
        probe lbha "$LBHA_PORT" "$path" "$scheme" "${host:-$HOST}"
    fi
    WRK_HEADER=""
    case $variant in
        gzip)
            WRK_HEADER="Accept-Encoding: gzip"
            expect_header haproxy "$HAPROXY_PORT" "$path" "$WRK_HEADER" '^content-encoding: gzip'
            expect_header lbha "$LBHA_PORT" "$path" "$WRK_HEADER" '^content-encoding: gzip'
            ;;
        cache)
            # The probes above stored the object; a hit carries Age.
            expect_header haproxy "$HAPROXY_PORT" "$path" "X-Bench: 1" '^age: [0-9]'
            expect_header lbha "$LBHA_PORT" "$path" "X-Bench: 1" '^age: [0-9]'
            ;;
        logfmt)
            expect_log_line haproxy "$HAPROXY_PORT" "$path"
            expect_log_line lbha "$LBHA_PORT" "$path"
            ;;
    esac
    if [[ $variant == acl* ]]; then
        check_acl_route haproxy "$HAPROXY_STATS_PORT"
        check_acl_route lbha "$LBHA_STATS_PORT"
    fi
    if [[ $variant == tls || $variant == tlsclose ]]; then
        TLS_PARAMS[haproxy]=$(tls_params "$HAPROXY_PORT")
        TLS_PARAMS[lbha]=$(tls_params "$LBHA_PORT")
        log "  TLS as an OpenSSL client sees it: haproxy ${TLS_PARAMS[haproxy]}, lbha ${TLS_PARAMS[lbha]}"
    fi
    local first=haproxy second=lbha
    for ((run = 1; run <= RUNS; run++)); do
        # Alternate which proxy goes first so slow drift in the machine hits both alike.
        if ((run % 2)); then first=haproxy second=lbha; else first=lbha second=haproxy; fi
        if [[ $variant == ws ]]; then
            # The echo servers straight, as the reference.
            ((DIRECT == 0)) || run_ws direct "$scen" "$run" "$WS_PORT1"
            run_ws "$first" "$scen" "$run" "$(port_of "$first")"
            run_ws "$second" "$scen" "$run" "$(port_of "$second")"
        elif [[ $variant == rate ]]; then
            run_rate "$first" "$scen" "$run" "$(port_of "$first")" "$path"
            run_rate "$second" "$scen" "$run" "$(port_of "$second")" "$path"
        elif [[ $tool == h2load ]]; then
            # nginx-light here answers no cleartext HTTP/2: no direct reference for these rows.
            run_h2load "$first" "$scen" "$run" "$(port_of "$first")" "$path"
            run_h2load "$second" "$scen" "$run" "$(port_of "$second")" "$path"
        else
            # nginx speaks plain http only; the direct reference shows the backend's share of the cost.
            ((DIRECT == 0)) || run_wrk direct "$scen" "$run" "$NGINX_PORT1" "$path" http "$host" "$close"
            run_wrk "$first" "$scen" "$run" "$(port_of "$first")" "$path" "$scheme" "$host" "$close"
            run_wrk "$second" "$scen" "$run" "$(port_of "$second")" "$path" "$scheme" "$host" "$close"
            ((DIRECT == 0)) || ensure_target_alive direct "$scen"
        fi
        ensure_target_alive haproxy "$scen"
        ensure_target_alive lbha "$scen"
    done
    if [[ $variant == acl* ]]; then
        check_acl_route haproxy "$HAPROXY_STATS_PORT"
        check_acl_route lbha "$LBHA_STATS_PORT"
    fi
    RSS[$scen/haproxy]=$(peak_rss_mib "$HAPROXY_PID")
    RSS[$scen/lbha]=$(peak_rss_mib "$LBHA_PID")
    stop_pid "$LBHA_PID"
    stop_pid "$HAPROXY_PID"
    if [[ -n $SINK_PID ]]; then
        [[ $variant == ws ]] || log "  UDP sink: $(head -n 1 "$WORK/sink.state") datagrams in all"
        stop_pid "$SINK_PID"
        SINK_PID=""
    fi
}

# expect_log_line NAME PORT PATH: one request through NAME must reach the UDP sink as a line with
# the 15 fields (the request line last, quoted), so the scenario measures logging that happens.
expect_log_line() {
    local name=$1 port=$2 path=$3 before after line deadline=$((SECONDS + 10))
    before=$(head -n 1 "$WORK/sink.state" 2>/dev/null || echo 0)
    probe "$name" "$port" "$path"
    while :; do
        after=$(head -n 1 "$WORK/sink.state" 2>/dev/null || echo 0)
        ((after > before)) && break
        ((SECONDS < deadline)) || die "$name: no log line reached the UDP sink on $HOST:$SINK_PORT$(log_tail "$WORK/sink.log")"
        sleep 0.2
    done
    line=$(sed -n 2p "$WORK/sink.state")
    grep -Eq "[0-9.]+:[0-9]+ \[[^]]+\] bench bench/n[12] [0-9-]+/[0-9-]+/[0-9-]+/[0-9-]+/[0-9-]+ 200 [0-9]+ [-A-Za-z]{4} \"GET $path HTTP/1.1\"\$" <<<"$line" ||
        die "$name: the sink's line does not have the 15 fields: $line"
    log "  checked: $name logs $line"
}

build_report() {
    local entry scen group label mode path variant threads
    local h_rps l_rps h_p99 l_p99 r_rps r_p99 met=0 total=0 misses=()
    printf '%s\n' "$SETUP_LINE" ""
    printf '| scenario | HAProxy req/s | lbha req/s | ratio req/s (lbha/HAProxy) | HAProxy p99 ms | lbha p99 ms | ratio p99 | HAProxy RSS MiB | lbha RSS MiB | errors |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        h_rps=$(median "${RPS[$scen/haproxy]}")
        l_rps=$(median "${RPS[$scen/lbha]}")
        h_p99=$(median "${P99[$scen/haproxy]}")
        l_p99=$(median "${P99[$scen/lbha]}")
        r_rps=$(ratio "$l_rps" "$h_rps")
        r_p99=$(ratio "$l_p99" "$h_p99")
        printf '| %s | %.0f | %.0f | %s | %.2f | %.2f | %s | %s | %s | HAProxy %d, lbha %d |\n' \
            "$label" "$h_rps" "$l_rps" "$r_rps" "$h_p99" "$l_p99" "$r_p99" \
            "${RSS[$scen/haproxy]}" "${RSS[$scen/lbha]}" "${ERRS[$scen/haproxy]}" "${ERRS[$scen/lbha]}"
        total=$((total + 1))
        if awk -v r="$r_rps" -v p="$r_p99" -v e="${ERRS[$scen/lbha]}" \
            'BEGIN { exit !(r != "n/a" && p != "n/a" && r >= 0.80 && p <= 1.50 && e == 0) }'; then
            met=$((met + 1))
        else
            misses+=("$label")
        fi
    done
    printf '\nTarget: req/s ratio >= 0.80 and p99 ratio <= 1.50\n'
    if ((${#misses[@]} == 0)); then
        printf 'Result: target met in %d of %d scenarios.\n' "$met" "$total"
    else
        local joined
        joined=$(printf '%s; ' "${misses[@]}")
        printf 'Result: target met in %d of %d scenarios; missed (or lbha had errors): %s.\n' "$met" "$total" "${joined%; }"
    fi
    if [[ -n ${TLS_PARAMS[haproxy]:-} ]]; then
        printf '\nTLS in the https scenario (self-signed ECDSA P-256 certificate made at run time; as an OpenSSL client negotiates it): HAProxy %s, lbha %s.\n' \
            "${TLS_PARAMS[haproxy]}" "${TLS_PARAMS[lbha]}"
    fi
    local cpu_rows=""
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        [[ $CPU_ALL == 1 || $variant == gzip || $variant == cache || $variant == logfmt || $variant == acl* || $variant == ws ]] || continue
        [[ -n ${CPU_US[$scen/haproxy]:-} && -n ${CPU_US[$scen/lbha]:-} ]] || continue   # h2load rows
        local h_cpu l_cpu
        h_cpu=$(median "${CPU_US[$scen/haproxy]}")
        l_cpu=$(median "${CPU_US[$scen/lbha]}")
        cpu_rows+=$(printf '| %s | %.1f | %.1f | %s |' "$label" "$h_cpu" "$l_cpu" "$(ratio "$h_cpu" "$l_cpu")")$'\n'
    done
    if [[ -n $cpu_rows ]]; then
        printf '\nCPU per request of the proxy process (user + system time over the wrk run / requests served; median of runs):\n\n'
        printf '| scenario | HAProxy µs/req | lbha µs/req | efficiency (HAProxy µs / lbha µs; >= 1.00 means lbha uses no more CPU) |\n'
        printf '|---|---:|---:|---:|\n'
        printf '%s' "$cpu_rows"
    fi
    scaling_table
    latency_table
    ((DIRECT == 1)) || return 0
    printf '\nReference, wrk straight to nginx (no proxy), measured in the same runs:\n\n'
    printf '| scenario | direct req/s | direct p99 ms | errors |\n'
    printf '|---|---:|---:|---:|\n'
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        [[ $variant == h2c || $variant == rate ]] && continue
        [[ $variant == ws ]] && path+=" (WebSocket echo server, messages/s)"
        [[ $variant == acl* ]] && path+=" (Host: $ACL_HOST)"
        [[ $variant == tls || $variant == tlsclose ]] && path+=" (plain http)"
        printf '| %s: GET %s | %.0f | %.2f | %d |\n' "$label" "$path" \
            "$(median "${RPS[$scen/direct]}")" "$(median "${P99[$scen/direct]}")" "${ERRS[$scen/direct]}"
    done
}

# For the constant-rate scenarios: p50/p99/p99.9 at each load, medians of runs.
latency_table() {
    local entry scen group label mode path variant threads pct t
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        [[ $variant == rate ]] || continue
        printf '\nTail latency, %s (each proxy at its own maximum from the same run; h2load times each request from its send):\n\n' "$label"
        printf '| load | HAProxy req/s | HAProxy p50 / p99 / p99.9 ms | lbha req/s | lbha p50 / p99 / p99.9 ms | ratio p99 | ratio p99.9 |\n'
        printf '|---|---:|---|---:|---|---:|---:|\n'
        for pct in $RATE_LOADS; do
            local row="| $pct% of own maximum" h99 l99 h999 l999
            for t in haproxy lbha; do
                row+=$(printf ' | %.0f | %s / %s / %s' "$(median "${LAT[$scen/$t/$pct/rate]}")" \
                    "$(median "${LAT[$scen/$t/$pct]}")" "$(median "${LAT[$scen/$t/$pct/99]}")" "$(median "${LAT[$scen/$t/$pct/999]}")")
            done
            h99=$(median "${LAT[$scen/haproxy/$pct/99]}") l99=$(median "${LAT[$scen/lbha/$pct/99]}")
            h999=$(median "${LAT[$scen/haproxy/$pct/999]}") l999=$(median "${LAT[$scen/lbha/$pct/999]}")
            printf '%s | %s | %s |\n' "$row" "$(ratio "$l99" "$h99")" "$(ratio "$l999" "$h999")"
        done
    done
}

# For scenarios run at more than one thread count: each proxy against its own 1-thread figure.
scaling_table() {
    local entry scen group label mode path variant threads base header=""
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        ((threads > 1)) || continue
        base=${scen%-t"$threads"}
        [[ -n ${RPS[$base/haproxy]:-} ]] || continue
        if [[ -z $header ]]; then
            header=1
            printf '\nScaling, req/s at N threads over the same proxy'"'"'s req/s at 1 thread (the proxies share both CPUs with nginx and the load generator, so this is a lower bound):\n\n'
            printf '| scenario | HAProxy scaling | lbha scaling |\n|---|---:|---:|\n'
        fi
        printf '| %s | %s | %s |\n' "$label" \
            "$(ratio "$(median "${RPS[$scen/haproxy]}")" "$(median "${RPS[$base/haproxy]}")")" \
            "$(ratio "$(median "${RPS[$scen/lbha]}")" "$(median "${RPS[$base/lbha]}")")"
    done
}

main() {
    parse_args "$@"
    check_prerequisites
    WRK_TIMEOUT=$(($(duration_secs) + 30))
    check_ports_free
    raise_fd_limit

    trap cleanup EXIT
    trap 'on_signal INT' INT
    trap 'on_signal TERM' TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbha-bench.XXXXXX")

    local haproxy_v nginx_v wrk_v pinning
    haproxy_v=$(haproxy -v 2>&1 | awk 'NR == 1 { print $3 }')
    nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/||')
    wrk_v=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') || true
    pinning="nginx (1 worker) and wrk on CPU $CPU_LOAD (taskset -c $CPU_LOAD); the proxy under test on CPU $CPU_PROXY (taskset -c $CPU_PROXY)"
    local h2load_v=""
    selected_variant h2c || selected_variant rate && h2load_v="; h2load $(h2load --version 2>&1 | awk '{ print $2; exit }') -t1 -c$CONNECTIONS -m$H2_STREAMS -D $(duration_secs) for the HTTP/2 rows"
    pinning+="; at nbthread N > 1 everything shares CPUs $CPU_LOAD,$CPU_PROXY"
    SETUP_LINE="Setup: HAProxy $haproxy_v and lbha ($LBHA), nbthread $NBTHREADS each (per row), over nginx $nginx_v (1 worker, access_log off) on $HOST; wrk ${wrk_v:-?} -t1 -c$CONNECTIONS -d$DURATION --latency$h2load_v; median of $RUNS runs, proxies alternated; CPU pinning: $pinning; $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), $(date -u +%Y-%m-%d)."

    log "CPU pinning: $pinning"
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: load average is $load; other work on these 2 CPUs (a cargo build, say) skews the ratios"
    fi
    log "scenarios: $(printf '%s\n' "${SELECTED[@]}" | cut -d'|' -f1 | paste -sd, | sed 's/,/, /g')"
    log "estimated time: $((${#SELECTED[@]} * RUNS * 3 * $(duration_secs))) s of wrk plus startup"
    start_nginx
    log "nginx up on $HOST:$NGINX_PORT1 and :$NGINX_PORT2, pinning: $(taskset -cp "$NGINX_PID" | sed 's/.*: /cpu /')"

    if selected_variant tls || selected_variant tlsclose; then
        make_cert
    fi

    local entry scen group label mode path variant threads
    for entry in "${SELECTED[@]}"; do
        IFS='|' read -r scen group label mode path variant threads <<<"$entry"
        bench_scenario "$scen" "$label" "$mode" "$path" "$variant" "$threads"
    done

    local report
    report=$(build_report)
    printf '%s\n' "$report"
    if [[ -n $OUT_FILE ]]; then
        printf '%s\n' "$report" >"$OUT_FILE" || die "could not write $OUT_FILE"
        log "tables written to $OUT_FILE"
    fi
}

main "$@"
