#!/usr/bin/env bash
# Property-based run of schemathesis (PyPI) against lbha's Data Plane API, driven by the
# OpenAPI document lbha serves at /v2/specification. Loopback only: the copy of the document
# given to schemathesis pins every address field to 127.0.0.1, so no generated server or bind
# (and no health check of one) points anywhere else.
#
#   python3 -m pip install schemathesis   # once
#   cargo build                           # or --release; pass --lbha PATH to choose
#   bench/api_schemathesis.sh [--lbha PATH] [--max-time SECONDS]
#
# Exit status: schemathesis's (0 when no check failed), 2 on a usage error or a missing tool.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lbha="$root/target/debug/lbha"
max_time=120
while [ $# -gt 0 ]; do
  case "$1" in
    --lbha) lbha=$2; shift 2 ;;
    --max-time) max_time=$2; shift 2 ;;
    *) echo "usage: $0 [--lbha PATH] [--max-time SECONDS]" >&2; exit 2 ;;
  esac
done
command -v schemathesis >/dev/null || { echo "schemathesis missing: python3 -m pip install schemathesis" >&2; exit 2; }
[ -x "$lbha" ] || { echo "lbha binary missing at $lbha: run cargo build" >&2; exit 2; }

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
be_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/lbha.toml" <<CONF
[defaults]
mode = "http"

[[userlist]]
name = "dataplaneapi"
users = [{ name = "admin", insecure_password = "123456" }]

[api]
bind = "127.0.0.1:$port"
userlist = "dataplaneapi"
state_dir = "$work/state"

[[backend]]
name = "be"
servers = [{ name = "s1", addr = "127.0.0.1:$be_port" }]

[[frontend]]
name = "fe"
default_backend = "be"
CONF
"$lbha" run -c "$work/lbha.toml" 2> "$work/lbha.log" &
pid=$!
for _ in $(seq 100); do
  curl -sf -u admin:123456 "http://127.0.0.1:$port/v2/health" >/dev/null && break
  sleep 0.1
done
curl -sf -u admin:123456 "http://127.0.0.1:$port/v2/specification" > "$work/spec.json"
python3 - "$work/spec.json" <<'PY'
import json, sys
p = sys.argv[1]
spec = json.load(open(p))
loop = {"type": "string", "enum": ["127.0.0.1"]}
for name in ("server", "bind"):
    spec["definitions"][name]["properties"]["address"] = loop
spec["definitions"]["server"]["properties"]["health_check_address"] = loop
json.dump(spec, open(p, "w"))
PY
status=0
schemathesis run "$work/spec.json" --url "http://127.0.0.1:$port/v2" --auth admin:123456 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$max_time" --workers 1 --suppress-health-check all || status=$?
echo "lbha log (errors only):"
grep -E "ERROR|panicked" "$work/lbha.log" | tail -20 || true
kill -0 "$pid" 2>/dev/null || { echo "lbha died during the run" >&2; status=1; }
exit $status
