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
