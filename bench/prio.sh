#!/usr/bin/env bash
# Runs a benchmark ahead of other sessions' builds: in a session of its own whose autogroup has
# nice -15, and at nice -15 inside it. With kernel.sched_autogroup_enabled=1 (the default here),
# `nice -n -15 bench/proxy.sh` alone only ranks the benchmark against the other tasks of its own
# session; each other session (every other shell running a build) still gets an equal share of
# the CPUs. Usage: bench/prio.sh bash bench/proxy.sh --scenarios http-3b --runs 3
set -euo pipefail
(($#)) || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
exec setsid -w bash -c 'echo -15 >/proc/self/autogroup 2>/dev/null || true; exec nice -n -15 "$@"' prio "$@"
