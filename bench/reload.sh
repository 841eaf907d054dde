#!/usr/bin/env bash
# Reload under load: the same wrk load against HAProxy (master-worker, `expose-fd listeners`,
# SIGUSR2 reloads) and lbha (SIGHUP reloads, and `lbha upgrade` binary upgrades), both in front of
# the same nginx-light on loopback. Prints requests, failed requests, refused connections and p99
# latency while reloading, next to a run without reloads, as a Markdown table. See bench/README.md.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT=$(dirname "$SCRIPT_DIR")
CONF_DIR="$SCRIPT_DIR/conf"
readonly SCRIPT_DIR REPO_ROOT CONF_DIR

readonly HOST=127.0.0.1
readonly HAPROXY_PORT=18180
readonly LBHA_PORT=18190
readonly NGINX_PORT1=18181
readonly NGINX_PORT2=18182
readonly CPU_LOAD=0   # nginx and wrk
readonly CPU_PROXY=1  # the proxy under test (and the processes it starts on reload)
readonly PORT_WAIT_SECS=10
readonly STOP_WAIT_SECS=10

LBHA="$REPO_ROOT/target/release/lbha"
DURATION=20
INTERVAL=1
CONNECTIONS=32
OUT_FILE=""

WORK=""
PIDS=()
ROWS=()
HAPROXY_PID=""
LBHA_PID=""
NGINX_PID=""

usage() {
    cat <<EOF
usage: bench/reload.sh [--lbha PATH] [--duration SECS] [--interval SECS] [--connections N] [--out FILE]

For each proxy and each client kind (kept-alive connections; a new connection per request), runs
wrk for SECS seconds without reloads, then with a reload every --interval seconds:
  HAProxy $(haproxy -v 2>/dev/null | awk 'NR == 1 { print $3 }') master-worker (-W), reloaded by SIGUSR2 to the master
  lbha, reloaded by SIGHUP;  lbha, replaced by \`lbha upgrade\` (a new process takes the sockets)
and prints a Markdown table: requests, reloads done, failed requests (wrk read/write/timeout errors
and non-2xx answers), refused connections (wrk connect errors) and p99 latency.

  --lbha PATH        lbha binary (default: target/release/lbha under the repo root)
  --duration SECS    length of each wrk run (default: $DURATION)
  --interval SECS    time between reloads (default: $INTERVAL)
  --connections N    wrk connections, one wrk thread (default: $CONNECTIONS)
  --out FILE         also write the table to FILE
  -h, --help         show this help

Exit status: 0 when the table was printed, 1 when the benchmark failed, 2 on usage errors or
missing prerequisites.
EOF
}


parse_args() {
    while (($# > 0)); do
        case $1 in
            --lbha | --duration | --interval | --connections | --out)
                (($# >= 2)) || usage_error "$1 needs a value"
                case $1 in
                    --lbha) LBHA=$2 ;;
                    --duration) DURATION=$2 ;;
                    --interval) INTERVAL=$2 ;;
                    --connections) CONNECTIONS=$2 ;;
                    --out) OUT_FILE=$2 ;;
                esac
                shift 2
                ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown argument: $1" ;;
        esac
    done
    if ! [[ $DURATION =~ ^[1-9][0-9]*$ ]] || ((DURATION < 5)); then
        usage_error "--duration must be whole seconds, at least 5 (got '$DURATION')"
    fi
    [[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || usage_error "--interval must be whole seconds (got '$INTERVAL')"
    [[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || usage_error "--connections must be a positive integer (got '$CONNECTIONS')"
}

check_prerequisites() {
    local missing=() tmpl
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v nginx >/dev/null || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    if ((${#missing[@]} > 0)); then
        printf 'reload.sh: missing: %s\nreload.sh: install with:\n  %sapt-get install -y %s\n' \
            "${missing[*]}" "$( ((EUID == 0)) || echo 'sudo ')" "${missing[*]}" >&2
        exit 2
    fi
    if [[ ! -x $LBHA ]]; then
        printf 'reload.sh: lbha binary not found or not executable: %s\n' "$LBHA" >&2
        printf 'reload.sh: build it with:\n  (cd %s && cargo build --release)\nor pass --lbha PATH\n' "$REPO_ROOT" >&2
        exit 2
    fi
    for tmpl in nginx.conf.tmpl haproxy-reload.cfg.tmpl lbha-reload.toml.tmpl; do
        [[ -r $CONF_DIR/$tmpl ]] || die "missing config template $CONF_DIR/$tmpl"
    done
    taskset -c "$CPU_LOAD,$CPU_PROXY" true 2>/dev/null || {
        printf 'reload.sh: needs CPUs %s and %s for pinning\n' "$CPU_LOAD" "$CPU_PROXY" >&2
        exit 2
    }
}

wait_port() {
    local name=$1 port=$2 pid=$3 logfile=$4 deadline=$((SECONDS + PORT_WAIT_SECS))
    while ! port_open "$port"; do
        alive "$pid" || die "$name exited during startup$(log_tail "$logfile")"
        ((SECONDS < deadline)) || die "$name did not listen on $HOST:$port within ${PORT_WAIT_SECS} s$(log_tail "$logfile")"
        sleep 0.1
    done
}

wait_port_closed() {
    local port=$1 deadline=$((SECONDS + STOP_WAIT_SECS))
    while port_open "$port"; do
        ((SECONDS < deadline)) || die "$HOST:$port still accepts after the proxy was stopped"
        sleep 0.1
    done
}

cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    [[ -n $WORK && -d $WORK ]] && rm -rf -- "$WORK"
    return 0
}

start_bg() {
    local logfile=$1
    shift
    "$@" >>"$logfile" 2>&1 &
    PIDS+=("$!")
}

start_nginx() {
    mkdir -p "$WORK/www" "$WORK/nginx-tmp"
    local user_directive=""
    ((EUID == 0)) && user_directive="user $(id -un) $(id -gn);"
    render nginx.conf.tmpl "$WORK/nginx.conf" USER_DIRECTIVE="$user_directive"
    start_bg "$WORK/nginx.log" taskset -c "$CPU_LOAD" nginx -e "$WORK/nginx-error.log" -p "$WORK/" -c "$WORK/nginx.conf"
    NGINX_PID=${PIDS[-1]}
    wait_port nginx "$NGINX_PORT1" "$NGINX_PID" "$WORK/nginx-error.log"
    wait_port nginx "$NGINX_PORT2" "$NGINX_PID" "$WORK/nginx-error.log"
}

probe() {
    local status
    # shellcheck disable=SC2016 # $0/$1 belong to the inner bash
    status=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" >&3
        head -n 1 <&3' "$HOST" "$2" 2>/dev/null) || true
    [[ ${status%$'\r'} == "HTTP/1.1 200"* ]] || die "$1 on $HOST:$2 did not answer 200 (got '${status:-nothing}')"
}

start_haproxy() {
    local cfg="$WORK/haproxy.cfg" logfile="$WORK/haproxy.log"
    render haproxy-reload.cfg.tmpl "$cfg" PORT="$HAPROXY_PORT"
    haproxy -c -q -f "$cfg" >>"$logfile" 2>&1 || die "haproxy rejected $cfg$(log_tail "$logfile")"
    # -W: master-worker; -db: the master stays in the foreground, so its pid is ours to signal.
    start_bg "$logfile" taskset -c "$CPU_PROXY" haproxy -W -db -f "$cfg"
    HAPROXY_PID=${PIDS[-1]}
    wait_port haproxy "$HAPROXY_PORT" "$HAPROXY_PID" "$logfile"
    probe haproxy "$HAPROXY_PORT"
}

start_lbha() {
    local cfg="$WORK/lbha.toml" logfile="$WORK/lbha.log"
    render lbha-reload.toml.tmpl "$cfg" PORT="$LBHA_PORT"
    "$LBHA" check -c "$cfg" >>"$logfile" 2>&1 || die "lbha check rejected $cfg$(log_tail "$logfile")"
    start_bg "$logfile" taskset -c "$CPU_PROXY" "$LBHA" -S "$WORK/lbha.sock" run -c "$cfg"
    LBHA_PID=${PIDS[-1]}
    wait_port lbha "$LBHA_PORT" "$LBHA_PID" "$logfile"
    probe lbha "$LBHA_PORT"
}

# Sends one reload of KIND; prints the new lbha pid for an upgrade. Fails if it was refused.
reload_once() {
    case $1 in
        usr2) kill -USR2 "$HAPROXY_PID" ;;
        hup) kill -HUP "$LBHA_PID" ;;
        upgrade)
            local out
            out=$("$LBHA" -S "$WORK/lbha.sock" upgrade 2>&1) || { printf '%s\n' "$out" >>"$WORK/upgrade-errors.log"; return 1; }
            sed -n 's/.*handed over to pid \([0-9]*\).*/\1/p' <<<"$out"
            ;;
    esac
}

# Runs in the background during wrk: a reload every INTERVAL, from 1 s after the start to 1 s
# before the end. Writes "done failed" to $2 and new lbha pids to $3.
reload_loop() {
    local kind=$1 counts=$2 pids=$3 n=0 failed=0 end=$((SECONDS + DURATION - 1)) pid
    sleep 1
    while ((SECONDS < end)); do
        if pid=$(reload_once "$kind"); then
            n=$((n + 1))
            [[ -z $pid ]] || echo "$pid" >>"$pids"
        else
            failed=$((failed + 1))
        fi
        echo "$n $failed" >"$counts"
        sleep "$INTERVAL"
    done
}

# "requests failed refused p99_ms kinds" from a wrk --latency report; kinds is e.g. "read:105" or "-".
parse_wrk() {
    awk '
        function to_ms(v,   n, unit) {
            n = v + 0; unit = v; sub(/^[0-9.]+/, "", unit)
            if (unit == "us") return n / 1000
            if (unit == "ms") return n
            if (unit == "s") return n * 1000
            return -1
        }
        function note(kind, n) { if (n > 0) kinds = kinds (kinds == "" ? "" : ",") kind ":" n }
        / requests in / { req = $1; have_req = 1 }
        $1 == "99%" { p99 = to_ms($2); have_p99 = 1 }
        /^ *Socket errors:/ {
            for (i = 3; i < NF; i += 2) {
                v = $(i + 1); sub(/,/, "", v)
                if ($i == "connect") refused += v; else { failed += v; note($i, v) }
            }
        }
        /^ *Non-2xx or 3xx responses:/ { failed += $NF; note("non-2xx", $NF) }
        END {
            if (!have_req || !have_p99 || p99 < 0) exit 1
            printf "%d %d %d %.2f %s\n", req, failed, refused, p99, (kinds == "" ? "-" : kinds)
        }' "$1"
}

# bench_row PROXY KIND CLIENT: one wrk run; KIND is none, usr2, hup or upgrade.
bench_row() {
    local proxy=$1 kind=$2 client=$3 port label reloads="-" headers=()
    local tag="$proxy-$kind-$client" out counts pids
    out="$WORK/wrk-$tag.txt" counts="$WORK/counts-$tag" pids="$WORK/pids-$tag"
    : >"$pids"
    case $proxy in
        haproxy) start_haproxy; port=$HAPROXY_PORT ;;
        lbha) start_lbha; port=$LBHA_PORT ;;
    esac
    [[ $client == close ]] && headers=(-H "Connection: close")
    log "$proxy, reloads: $kind, client: $client"
    timeout --kill-after=5 $((DURATION + 30)) \
        taskset -c "$CPU_LOAD" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 2s --latency "${headers[@]}" \
        "http://$HOST:$port/" >"$out" 2>&1 &
    local wrk_pid=$! loop_pid=""
    PIDS+=("$wrk_pid")
    if [[ $kind != none ]]; then
        echo "0 0" >"$counts"
        reload_loop "$kind" "$counts" "$pids" &
        loop_pid=$!
    fi
    wait "$wrk_pid" || die "wrk against $proxy failed$(log_tail "$out")"
    forget_pid "$wrk_pid"
    if [[ -n $loop_pid ]]; then
        wait "$loop_pid" || true
        local ok failed
        read -r ok failed <"$counts"
        ((failed == 0)) || die "$failed of $((ok + failed)) $kind reloads of $proxy failed$(log_tail "$WORK/upgrade-errors.log")"
        reloads=$ok
    fi
    local parsed
    parsed=$(parse_wrk "$out") || die "could not parse the wrk report$(log_tail "$out")"
    local req fail refused p99 kinds
    read -r req fail refused p99 kinds <<<"$parsed"
    log "  $req requests, reloads $reloads, failed $fail ($kinds), refused $refused, p99 $p99 ms"
    case $kind in
        none) label="none" ;;
        usr2) label="SIGUSR2 to the master every ${INTERVAL} s" ;;
        hup) label="SIGHUP every ${INTERVAL} s" ;;
        upgrade) label="\`lbha upgrade\` every ${INTERVAL} s" ;;
    esac
    local name="lbha"
    [[ $proxy == haproxy ]] && name="HAProxy $HAPROXY_VERSION"
    local who="kept-alive connections"
    [[ $client == close ]] && who="new connection per request"
    [[ $kinds == - ]] || fail="$fail (${kinds//:/ })"
    ROWS+=("| $name | $label | $who | $req | $reloads | $fail | $refused | $p99 |")
    check_reloads "$kind" "${reloads/-/0}"
    stop_proxy "$proxy" "$pids"
    rm -f "$WORK/haproxy.log" "$WORK/lbha.log"
}

# stop_proxy PROXY PIDFILE: stops the proxy, and after upgrades every lbha process started meanwhile.
stop_proxy() {
    local p
    case $1 in
        haproxy)
            stop_pid "$HAPROXY_PID"
            wait_port_closed "$HAPROXY_PORT"
            ;;
        lbha)
            # The process started here, then each one an upgrade started (old ones drain and exit).
            local all=("$LBHA_PID")
            while read -r p; do
                [[ -n $p ]] && all+=("$p") && PIDS+=("$p")
            done <"$2"
            for p in "${all[@]}"; do
                stop_pid "$p"
            done
            wait_port_closed "$LBHA_PORT"
            rm -f "$WORK/lbha.sock"
            ;;
    esac
}

# check_reloads KIND N: the proxy's log shows every reload done. HAProxy's master logs "Loading
# success" at start and after each reload; lbha logs "configuration reloaded" per SIGHUP and
# "runs everything" per upgrade. (Each run starts with an empty log.)
check_reloads() {
    local kind=$1 want=$2 file pattern extra=0 got
    case $kind in
        none) return 0 ;;
        usr2) file=$WORK/haproxy.log pattern='Loading success' extra=1 ;;
        hup) file=$WORK/lbha.log pattern='configuration reloaded' ;;
        upgrade) file=$WORK/lbha.log pattern='runs everything; no longer accepting' ;;
    esac
    got=$(grep -c "$pattern" "$file" || true)
    ((got == want + extra)) || die "the log shows $((got - extra)) of $want $kind reloads$(log_tail "$file")"
}

main() {
    parse_args "$@"
    check_prerequisites
    for port in "$NGINX_PORT1" "$NGINX_PORT2" "$HAPROXY_PORT" "$LBHA_PORT"; do
        port_open "$port" && die "something already listens on $HOST:$port; stop it first"
    done
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    trap cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbha-reload.XXXXXX")
    HAPROXY_VERSION=$(haproxy -v 2>&1 | awk 'NR == 1 { print $3 }')
    local load_before load_after
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    start_nginx
    local client
    for client in keepalive close; do
        bench_row haproxy none "$client"
        bench_row haproxy usr2 "$client"
        bench_row lbha none "$client"
        bench_row lbha hup "$client"
        bench_row lbha upgrade "$client"
    done
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    local report
    report=$(
        printf 'Setup: wrk -t1 -c%s -d%ss --timeout 2s --latency against HAProxy %s (nbthread 1, master-worker, expose-fd listeners) and lbha (%s, nbthread 1), both over nginx %s (1 worker) on %s; wrk and nginx on CPU %s, the proxy on CPU %s; %s CPUs, Linux %s, %s. Load average (1/5/15 min) %s before, %s after.\n\n' \
            "$CONNECTIONS" "$DURATION" "$HAPROXY_VERSION" "$LBHA" "$(nginx -v 2>&1 | sed 's|.*nginx/||')" "$HOST" \
            "$CPU_LOAD" "$CPU_PROXY" "$(nproc)" "$(uname -r)" "$(date -u +%Y-%m-%d)" "$load_before" "$load_after"
        printf '| proxy | reloads during the run | client | requests | reloads done | failed requests | refused connections | p99 ms |\n'
        printf '|---|---|---|---:|---:|---:|---:|---:|\n'
        printf '%s\n' "${ROWS[@]}"
    )
    printf '%s\n' "$report"
    if [[ -n $OUT_FILE ]]; then
        printf '%s\n' "$report" >"$OUT_FILE" || die "could not write $OUT_FILE"
    fi
}

main "$@"
