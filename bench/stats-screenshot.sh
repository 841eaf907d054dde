#!/usr/bin/env bash
# Renders lbha's stats page in headless Chromium and saves a screenshot, so a person can look at
# what an operator sees. Not part of `cargo test` (it needs Debian's `chromium`, ~100 MB).
#
#   bench/stats-screenshot.sh [--lbha target/release/lbha] [--out stats.png]
#
# It starts lbha on 127.0.0.1 with two responders (one healthy, one down), sends some traffic,
# then loads the page (and the CSV) with Chromium and checks the page's text for every proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
LBHA=target/release/lbha
OUT=stats.png
while [ $# -gt 0 ]; do
  case "$1" in
    --lbha) LBHA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--lbha PATH] [--out FILE]" >&2; exit 2 ;;
  esac
done
command -v chromium >/dev/null || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 2; }
[ -x "$LBHA" ] || { echo "$LBHA is missing: cargo build --release" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install -y curl" >&2; exit 2; }

tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

cat > "$tmp/lbha.toml" <<'TOML'
[defaults]
mode = "http"
timeout = { connect = "1s" }
[[listen]]
name = "www"
bind = ["127.0.0.1:18480"]
servers = [
  { name = "web_1", addr = "127.0.0.1:18481", check = true, inter = "200ms" },
  { name = "web_2", addr = "127.0.0.1:18489", check = true, inter = "200ms", fall = 1 },
  { name = "spare", addr = "127.0.0.1:18481", backup = true },
]
[[listen]]
name = "responder"
bind = ["127.0.0.1:18481"]
http_request = [{ return = { status = 200, body = "ok\n" } }]
[[listen]]
name = "proxy_status"
bind = ["127.0.0.1:18404"]
stats = { uri = "/haproxy-status", refresh = "30s", admin = "if LOCALHOST" }
TOML
"$LBHA" run -c "$tmp/lbha.toml" -S "$tmp/lbha.sock" 2>"$tmp/lbha.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:18404/haproxy-status && break; sleep 0.1; done
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18480/; done
sleep 1
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$tmp/profile" --window-size=1400,700 \
  --screenshot="$OUT" http://127.0.0.1:18404/haproxy-status 2>"$tmp/chromium.log"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$tmp/profile" \
  --dump-dom http://127.0.0.1:18404/haproxy-status >"$tmp/dom.html" 2>>"$tmp/chromium.log"
for want in '<h2>www</h2>' '<h2>responder</h2>' '>web_1<' '>web_2<' 'spare (backup)' 'class="DOWN"' 'name="action"'; do
  grep -qF "$want" "$tmp/dom.html" || { echo "the rendered page lacks $want" >&2; exit 1; }
done
echo "screenshot: $OUT ($(stat -c %s "$OUT") bytes); rendered DOM has every proxy, the DOWN server and the admin form"
