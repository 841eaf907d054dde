#!/usr/bin/env bash
# Where the time goes in the http keep-alive 3-byte-body row (or, with --scenario, the logfmt,
# cache, acl, aclmap, rules, track, gzip, https, https-new, h2-3b or h2-16k row), lbha next to HAProxy, as counts per request that do not depend on how busy the machine is: CPU time, syscalls by kind, context
# switches, wake-ups of other tasks (`perf stat` over one wrk run per proxy), and optionally
# instructions per request (valgrind's callgrind, for machines without hardware counters) and a
# `perf record -g` profile. See bench/PROFILE.md.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_ROOT=$(dirname "$SCRIPT_DIR")
CONF_DIR="$SCRIPT_DIR/conf"
readonly SCRIPT_DIR REPO_ROOT CONF_DIR

readonly HOST=127.0.0.1
# PROFILE_PORT_BASE moves every port (two profiles side by side on one machine).
readonly PORT_BASE=${PROFILE_PORT_BASE:-18380}
readonly HAPROXY_PORT=$PORT_BASE
readonly LBHA_PORT=$((PORT_BASE + 10))
readonly NGINX_PORT1=$((PORT_BASE + 1))
readonly NGINX_PORT2=$((PORT_BASE + 2))
readonly SINK_PORT=$((PORT_BASE + 3))
readonly HAPROXY_STATS_PORT=$((PORT_BASE + 4))
readonly LBHA_STATS_PORT=$((PORT_BASE + 14))
# The acl rows' request and map: ACL_* and MAP_ENTRIES in lib.sh.
readonly PORT_WAIT_SECS=10
readonly STOP_WAIT_SECS=5

LBHA="$REPO_ROOT/target/release/lbha"
DURATION=10
CONNECTIONS=64
RECORD=""       # directory for perf.data of each proxy
CALLGRIND=0
PERF=1
ONLY="haproxy lbha"
SCENARIO=http
PIDS=()
WORK=""

usage() {
    cat <<EOF
usage: $BENCH_NAME [--lbha PATH] [--duration S] [--connections N] [--only lbha|haproxy]
                   [--record DIR] [--callgrind] [--no-perf]
                   [--scenario http|logfmt|cache|acl|aclmap|rules|track|gzip|https|https-new|h2-3b|h2-16k]

  --lbha PATH       lbha binary (default: target/release/lbha)
  --duration S      seconds of wrk per proxy (default 10)
  --connections N   wrk connections, one wrk thread (default 64)
  --only NAME       profile one proxy only
  --record DIR      also run 'perf record -g' on each proxy (DIR/NAME.perf.data, DIR/NAME.top.txt)
  --callgrind       also count instructions per request under valgrind's callgrind (the proxy
                    runs ~50x slower there, so wrk is given 3x the duration)
  --no-perf         skip the perf stat runs (with --callgrind: instructions only)
  --scenario NAME   http: GET / answered "ok\\n" (conf/haproxy-http.cfg.tmpl, conf/lbha.toml.tmpl);
                    logfmt: the same with a 15-field log-format line per request to a UDP syslog
                    sink (conf/*-logfmt.*.tmpl, udp_sink.py); cache: cache hits of a 4 KiB
                    object (GET /4k, conf/*-cache.*.tmpl); acl: 20 ACLs, the last use_backend
                    matches (conf/*-acl.*.tmpl, GET /app/v1/items/42, Host: shop.example.com);
                    aclmap: acl whose last rule names its backend by map() in a 10,000-entry
                    map; rules: issue 15's rule-heavy frontend, aclmap with map_str plus ten
                    set-header %[...] rules and a replace-path (conf/*-rules.*.tmpl); track:
                    track-sc0 src + deny on sc_http_req_rate(0) (conf/*-track.*.tmpl);
                    gzip: GET /64k (64 KiB of text, as bench/proxy.sh's gzip-64k row) with
                    Accept-Encoding: gzip through compression (conf/*-gzip.*.tmpl);
                    https: the http scenario over TLS (an ssl bind with a self-signed ECDSA P-256
                    certificate, wrk keeps its connections); https-new: the same with
                    Connection: close, a TLS handshake per request;
                    h2-3b, h2-16k: cleartext HTTP/2 clients (a \`proto h2\` bind, h2load -c N -m 10
                    instead of wrk; HTTP/1.1 to nginx), GET / or GET /16k.
                    A row's increment is its figure minus the http scenario's.
EOF
}

while (($#)); do
    case $1 in
        --lbha) LBHA=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        --only) ONLY=${2:?}; shift 2 ;;
        --record) RECORD=${2:?}; shift 2 ;;
        --callgrind) CALLGRIND=1; shift ;;
        --no-perf) PERF=0; shift ;;
        --scenario) SCENARIO=${2:?}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || usage_error "--duration takes whole seconds (got '$DURATION')"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || usage_error "--connections must be a positive integer"
[[ $ONLY =~ ^(haproxy|lbha|haproxy\ lbha)$ ]] || usage_error "--only takes lbha or haproxy"
[[ $SCENARIO =~ ^(http|logfmt|cache|acl|aclmap|rules|track|gzip|https|https-new|h2-3b|h2-16k)$ ]] ||
    usage_error "--scenario takes http, logfmt, cache, acl, aclmap, rules, track, gzip, https, https-new, h2-3b or h2-16k"
((PERF || CALLGRIND)) || usage_error "--no-perf without --callgrind measures nothing"
for tool in haproxy nginx wrk perf taskset openssl; do
    command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y haproxy nginx-light wrk linux-perf util-linux)"; exit 2; }
done
((CALLGRIND == 0)) || command -v valgrind >/dev/null || { log "missing valgrind (apt-get install -y valgrind)"; exit 2; }
[[ $ONLY != *lbha* || -x $LBHA ]] || { log "no lbha binary at $LBHA: run cargo build --release"; exit 2; }
for port in $HAPROXY_PORT $LBHA_PORT $NGINX_PORT1 $NGINX_PORT2 $SINK_PORT $HAPROXY_STATS_PORT $LBHA_STATS_PORT; do
    ! port_open "$port" || die "something already listens on $HOST:$port"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbha-profile.XXXXXX")
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

wait_port() {
    local name=$1 port=$2 pid=$3 logfile=$4 deadline=$((SECONDS + ${5:-$PORT_WAIT_SECS}))
    while ! port_open "$port"; do
        alive "$pid" || die "$name exited during startup$(log_tail "$logfile")"
        ((SECONDS < deadline)) || die "$name did not listen on $HOST:$port in time$(log_tail "$logfile")"
        sleep 0.1
    done
}

# wrk for S seconds (bounded by a timeout of its own); prints the number of requests it completed.
# The h2 scenarios run h2load instead (10 streams per connection) and print the same.
run_wrk() {
    local port=$1 secs=$2 out=$3
    if ((H2)); then
        timeout --kill-after=5 $((secs + 30)) taskset -c 0 h2load -t1 -c"$CONNECTIONS" -m10 -D "$secs" \
            "http://$HOST:$port$URL_PATH" >"$out" 2>&1 || die "h2load failed$(log_tail "$out")"
        awk '/^requests:/ { if ($10 + $12 + $14 > 0) bad = 1; n = $8 }
             END { if (bad || n == 0) exit 1; print n }' "$out" || die "h2load saw failures$(log_tail "$out")"
        # The req/s line in wrk's words, for the report below.
        awk '/^finished in/ { print "Requests/sec: " $4 }' "$out" >>"$out"
        return
    fi
    timeout --kill-after=5 $((secs + 30)) taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --timeout 20s \
        "${WRK_HOST[@]}" "$SCHEME://$HOST:$port$URL_PATH" >"$out" 2>&1 || die "wrk failed$(log_tail "$out")"
    grep -q 'Non-2xx\|Socket errors' "$out" && die "wrk saw errors$(log_tail "$out")"
    awk '/ requests in / { print $1 }' "$out"
}

# nginx as bench/proxy.sh runs it: one worker on CPU 0 serving "ok\n".
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
head -c 4096 /dev/zero | tr '\0' 'c' >"$WORK/www/4k"
head -c 16384 /dev/zero | tr '\0' 'x' >"$WORK/www/16k"
# The gzip row's text, as bench/proxy.sh makes it (about 5:1 at level 1).
seq 1 5000 | awk '{ printf "%06d GET /app/v1/items/%d?page=%d HTTP/1.1 200 user=u%d ok\n", $1, $1 * 7 % 1000, $1 % 13, $1 % 97 }' \
    >"$WORK/www/64k"
truncate -s 65536 "$WORK/www/64k"
user_directive=""
((EUID == 0)) && user_directive="user $(id -un) $(id -gn);"
render nginx.conf.tmpl "$WORK/nginx.conf" USER_DIRECTIVE="$user_directive"
start_bg "$WORK/nginx.log" taskset -c 0 nginx -e "$WORK/nginx-error.log" -p "$WORK/" -c "$WORK/nginx.conf"
wait_port nginx "$NGINX_PORT1" "$STARTED_PID" "$WORK/nginx-error.log"

URL_PATH=/
WRK_HOST=()
SCHEME=http
H2=0
BIND_OPTS=""
shop_rule=$ACL_BACKEND
case $SCENARIO in
    http) htmpl=haproxy-http.cfg.tmpl ltmpl=lbha.toml.tmpl ;;
    logfmt)
        htmpl=haproxy-logfmt.cfg.tmpl ltmpl=lbha-logfmt.toml.tmpl
        command -v python3 >/dev/null || { log "missing python3 for the UDP sink"; exit 2; }
        # With the load generator on CPU 0: the sink's cost is the same for both proxies.
        start_bg "$WORK/sink.log" taskset -c 0 python3 "$SCRIPT_DIR/udp_sink.py" "$HOST" "$SINK_PORT" "$WORK/sink.state"
        ;;
    cache) htmpl=haproxy-cache.cfg.tmpl ltmpl=lbha-cache.toml.tmpl URL_PATH=/4k ;;
    acl | aclmap)
        htmpl=haproxy-acl.cfg.tmpl ltmpl=lbha-acl.toml.tmpl URL_PATH=$ACL_PATH WRK_HOST=(-H "Host: $ACL_HOST")
        if [[ $SCENARIO == aclmap ]]; then
            shop_rule="%[req.hdr(host),lower,map($WORK/hosts.map,be_php)]"
            # Every other host maps to one of the nine other backends; the request's host is the last line.
            write_hosts_map "$WORK/hosts.map" "$MAP_ENTRIES" "$ACL_HOST" "$ACL_BACKEND" "$ACL_BACKENDS"
        fi
        ;;
    rules)
        htmpl=haproxy-rules.cfg.tmpl ltmpl=lbha-rules.toml.tmpl URL_PATH=$ACL_PATH WRK_HOST=(-H "Host: $ACL_HOST")
        shop_rule="%[req.hdr(host),lower,map_str($WORK/hosts.map,be_php)]"
        write_hosts_map "$WORK/hosts.map" "$MAP_ENTRIES" "$ACL_HOST" "$ACL_BACKEND" "$ACL_BACKENDS"
        ;;
    track) htmpl=haproxy-track.cfg.tmpl ltmpl=lbha-track.toml.tmpl ;;
    gzip) htmpl=haproxy-gzip.cfg.tmpl ltmpl=lbha-gzip.toml.tmpl URL_PATH=/64k WRK_HOST=(-H "Accept-Encoding: gzip") ;;
    https | https-new)
        htmpl=haproxy-http.cfg.tmpl ltmpl=lbha.toml.tmpl SCHEME=https
        make_cert
        BIND_OPTS=" ssl crt $CERT alpn h2,http/1.1"
        # wrk resumes its TLS sessions (SSL_clear keeps the session): after each connection's first
        # handshake, https-new measures TLS 1.3 resumptions (bench/PROFILE.md, session 7).
        [[ $SCENARIO == https ]] || WRK_HOST=(-H "Connection: close")
        ;;
    h2-3b | h2-16k)
        command -v h2load >/dev/null || { log "missing h2load (apt-get install -y nghttp2-client)"; exit 2; }
        htmpl=haproxy-http.cfg.tmpl ltmpl=lbha.toml.tmpl H2=1 BIND_OPTS=" proto h2"
        [[ $SCENARIO == h2-16k ]] && URL_PATH=/16k
        ;;
esac
render "$htmpl" "$WORK/haproxy.cfg" MODE=http PORT="$HAPROXY_PORT" BIND_OPTS="$BIND_OPTS" NBTHREAD=1 SINK_PORT="$SINK_PORT" \
    STATS_PORT="$HAPROXY_STATS_PORT" SHOP_RULE="$shop_rule"
render "$ltmpl" "$WORK/lbha.toml" MODE=http PORT="$LBHA_PORT" BIND_OPTS="$BIND_OPTS" NBTHREAD=1 SINK_PORT="$SINK_PORT" \
    STATS_PORT="$LBHA_STATS_PORT" SHOP_RULE="$shop_rule"
haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/hcheck.log" 2>&1 || die "haproxy rejected its config$(log_tail "$WORK/hcheck.log")"
if [[ $ONLY == *lbha* ]]; then
    "$LBHA" check -c "$WORK/lbha.toml" >"$WORK/check.log" 2>&1 || die "lbha check failed$(log_tail "$WORK/check.log")"
fi

# start_proxy NAME [WRAPPER...]: the proxy pinned to CPU 1; sets PROXY_PID and PROXY_PORT.
start_proxy() {
    local name=$1
    shift
    case $name in
        haproxy) PROXY_PORT=$HAPROXY_PORT
            start_bg "$WORK/$name.log" taskset -c 1 "$@" haproxy -db -f "$WORK/haproxy.cfg" ;;
        lbha) PROXY_PORT=$LBHA_PORT
            start_bg "$WORK/$name.log" taskset -c 1 "$@" "$LBHA" run -c "$WORK/lbha.toml" -S "$WORK/lbha.sock" ;;
    esac
    PROXY_PID=$STARTED_PID
    wait_port "$name" "$PROXY_PORT" "$PROXY_PID" "$WORK/$name.log" 60
}

printf '# profile of the %s scenario, GET %s (%s)\n\n' "$SCENARIO" "$URL_PATH" "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf 'load average at start: %s; wrk -t1 -c%s -d%ss on CPU 0 with nginx, proxy nbthread 1 on CPU 1\n\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$CONNECTIONS" "$DURATION"

declare -A PER=()
for name in $ONLY; do
    if ((PERF)); then
        start_proxy "$name"
        run_wrk "$PROXY_PORT" 2 "$WORK/warm.txt" >/dev/null
        # Counters of the proxy's threads only (-p follows all of them), started before wrk and
        # stopped after it, so what they count is the wrk run's requests.
        # Two runs: CPU time and scheduling alone first (syscall tracepoints cost CPU time of their
        # own), then the syscalls by kind.
        stat_out="$WORK/$name.stat"
        : >"$stat_out"
        for events in task-clock,context-switches,cpu-migrations,sched:sched_wakeup 'syscalls:sys_enter_*'; do
            perf stat -x, -p "$PROXY_PID" -o "$WORK/one.stat" -e "$events" 2>/dev/null &
            perf_pid=$!
            PIDS+=("$perf_pid")
            sleep 0.5
            reqs=$(run_wrk "$PROXY_PORT" "$DURATION" "$WORK/$name.wrk")
            kill -INT "$perf_pid"
            wait "$perf_pid" 2>/dev/null || true
            forget_pid "$perf_pid"
            awk -F, -v n="$reqs" '$1 ~ /^[0-9.]+$/ { printf "%s,%s,%s\n", $1 / n, $2, $3 }' "$WORK/one.stat" >>"$stat_out"
            [[ $events == task-clock* ]] && rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/$name.wrk")
        done
        printf '## %s: %s req/s in the first run\n\n| event | per request |\n|---|---:|\n' "$name" "$rps"
        awk -F, -v n=1 -v name="$name" '
            $1 ~ /^[0-9.]+$/ && $1 + 0 > 0 {
                ev = $3; v = $1 / n
                if (ev == "task-clock") { ev = "CPU time (us)"; v = $1 / n * 1000 }
                sub(/^syscalls:sys_enter_/, "syscall ", ev)
                if (ev ~ /^syscall /) total += v
                printf "| %s | %.3f |\n", ev, v
                print name, ev, v > "/dev/stderr"
            }
            END { printf "| syscalls, all | %.3f |\n", total; print name, "syscalls, all", total > "/dev/stderr" }' \
            "$stat_out" 2>>"$WORK/per.txt"
        printf '\n'
        if [[ -n $RECORD ]]; then
            mkdir -p "$RECORD"
            perf record -q -g -F 2999 -p "$PROXY_PID" -o "$RECORD/$name.perf.data" 2>/dev/null &
            perf_pid=$!
            PIDS+=("$perf_pid")
            sleep 0.5
            run_wrk "$PROXY_PORT" "$DURATION" "$WORK/$name-rec.wrk" >/dev/null
            kill -INT "$perf_pid"
            wait "$perf_pid" 2>/dev/null || true
            forget_pid "$perf_pid"
            perf report -i "$RECORD/$name.perf.data" --no-children --percent-limit 0.7 --stdio -g none \
                --sort symbol 2>/dev/null | grep -v '^#' | grep -v '^$' >"$RECORD/$name.top.txt" || true
            printf 'perf record: %s (top functions, self time: %s)\n\n' "$RECORD/$name.perf.data" "$RECORD/$name.top.txt"
        fi
        stop_pid "$PROXY_PID"
    fi
    if ((CALLGRIND)); then
        cg_out="$WORK/$name.callgrind"
        start_proxy "$name" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg_out.%p"
        run_wrk "$PROXY_PORT" 3 "$WORK/cg-warm.txt" >/dev/null
        callgrind_control -i on "$PROXY_PID" >/dev/null
        reqs=$(run_wrk "$PROXY_PORT" $((DURATION * 3)) "$WORK/$name-cg.wrk")
        callgrind_control -i off "$PROXY_PID" >/dev/null
        # Dumped now: a proxy that a loaded machine keeps from stopping in time is killed
        # without writing its counts.
        callgrind_control -d "$PROXY_PID" >/dev/null
        stop_pid "$PROXY_PID"
        ir=$(cat "$cg_out".* | awk '/^(summary|totals):/ { s += $2 } END { print s + 0 }')
        printf 'callgrind: %s requests, %s instructions, %.0f instructions per request\n\n' \
            "$reqs" "$ir" "$(awk -v i="$ir" -v n="$reqs" 'BEGIN { print i / n }')"
        echo "$name instructions $(awk -v i="$ir" -v n="$reqs" 'BEGIN { print i / n }')" >>"$WORK/per.txt"
        [[ -z $RECORD ]] || { mkdir -p "$RECORD" && cp "$cg_out".* "$RECORD/"; } 2>/dev/null || true
    fi
done

if [[ $ONLY == "haproxy lbha" ]]; then
    printf '## side by side, per request\n\n| event | HAProxy | lbha | lbha/HAProxy |\n|---|---:|---:|---:|\n'
    awk '
        { ev = $2; for (i = 3; i < NF; i++) ev = ev " " $i; v[$1, ev] = $NF; if (!(ev in seen)) { seen[ev] = 1; order[++k] = ev } }
        END {
            for (i = 1; i <= k; i++) {
                e = order[i]; h = v["haproxy", e] + 0; l = v["lbha", e] + 0
                printf "| %s | %.3f | %.3f | %s |\n", e, h, l, (h > 0 ? sprintf("%.2f", l / h) : "-")
            }
        }' "$WORK/per.txt"
fi
