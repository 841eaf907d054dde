# Shared by bench/proxy.sh and bench/reload.sh (sourced, not run): messages, process bookkeeping
# and config templates. The caller defines HOST, WORK, CONF_DIR, NGINX_PORT1, NGINX_PORT2,
# STOP_WAIT_SECS, a PIDS array and a usage function.
# shellcheck shell=bash

BENCH_NAME=${0##*/}

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n\n' "$BENCH_NAME" "$*" >&2; usage >&2; exit 2; }

# Bash's /dev/tcp keeps the check free of extra tools; `timeout` bounds a connect that hangs.
port_open() {
    # shellcheck disable=SC2016 # $0/$1 belong to the inner bash, which gets them as arguments
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# kill -0 also succeeds on a zombie (an exited process whose parent has not reaped it), so look at
# the process state.
alive() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z ]]
}

# The last lines of a log file, for error messages; nothing for an empty file.
log_tail() {
    if [[ -s $1 ]]; then
        printf '\n--- last lines of %s ---\n' "$(basename "$1")"
        tail -n 20 "$1"
    fi
    return 0
}

# SIGTERM, then SIGKILL after STOP_WAIT_SECS; reaps the process and drops it from PIDS.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + STOP_WAIT_SECS))
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.05
    done
    if alive "$pid"; then
        log "pid $pid ignored SIGTERM for ${STOP_WAIT_SECS} s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

forget_pid() {
    local rest=() p
    for p in "${PIDS[@]}"; do
        [[ $p == "$1" ]] || rest+=("$p")
    done
    PIDS=("${rest[@]}")
}

# render TMPL DEST [NAME=VALUE]...: fills @NAME@ placeholders of $CONF_DIR/TMPL (values hold no
# '|', '&' or '\'); a placeholder left unfilled outside comments is an error.
render() {
    local tmpl=$1 dest=$2 pair left
    shift 2
    local subst=(-e "s|@TMP@|$WORK|g" -e "s|@HOST@|$HOST|g"
        -e "s|@NGINX_PORT1@|$NGINX_PORT1|g" -e "s|@NGINX_PORT2@|$NGINX_PORT2|g")
    for pair in "$@"; do
        subst+=(-e "s|@${pair%%=*}@|${pair#*=}|g")
    done
    sed "${subst[@]}" "$CONF_DIR/$tmpl" >"$dest" || die "could not write $dest"
    left=$(grep -v '^[[:space:]]*#' "$dest" | grep -o '@[A-Z0-9_]*@' | sort -u | tr '\n' ' ') || true
    [[ -z $left ]] || die "placeholders left unfilled in $dest (from $CONF_DIR/$tmpl): $left"
}

# The ACL rows' request (bench/proxy.sh, bench/profile.sh), which only the last use_backend rule
# (to ACL_BACKEND) matches, and the aclmap rows' map size (ACL_HOST, to be_shop, the last line).
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly ACL_HOST=shop.example.com ACL_PATH=/app/v1/items/42 ACL_BACKEND=be_shop \
    ACL_BACKENDS="be_api be_admin be_static be_php be_upload be_images be_legacy be_internal be_reports be_shop" \
    MAP_ENTRIES=10000

# The aclmap rows' map (bench/proxy.sh, bench/profile.sh): N-1 hosts hN.example.com spread over
# the backends of LIST but the last, then "HOST SHOP" as the last line.
# write_hosts_map DEST N HOST SHOP LIST
write_hosts_map() {
    local dest=$1 n=$2 host=$3 shop=$4 list=$5
    awk -v n="$n" -v host="$host" -v shop="$shop" -v list="$list" 'BEGIN {
        split(list, be, " ")
        for (i = 1; i < n; i++) printf "h%d.example.com %s\n", i, be[i % 9 + 1]
        printf "%s %s\n", host, shop }' >"$dest" || die "could not write $dest"
}

# Self-signed ECDSA P-256 certificate and its key in one PEM file, the form HAProxy's `crt` wants;
# lbha reads the same file. Made fresh for every run in $WORK (removed with it); sets CERT.
make_cert() {
    mkdir -m 700 "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=bench.lbha.test" -addext "subjectAltName=DNS:bench.lbha.test,IP:$HOST" \
        -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >"$WORK/openssl.log" 2>&1 ||
        die "openssl could not make the self-signed certificate$(log_tail "$WORK/openssl.log")"
    CERT="$WORK/tls/bench.pem"
    cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$CERT" || die "could not write $CERT"
}
