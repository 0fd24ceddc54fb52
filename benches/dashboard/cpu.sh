#!/usr/bin/env bash
# Server CPU while 50 running operations are watched live, three ways, on one
# release build of the example server (memory store):
#   idle   - nobody watches;
#   page   - the dashboard in headless Chromium (one multiplexed event stream and a
#            list read every 2 s);
#   per-op - 50 clients, one `/operations/{id}/events` stream each (what a page with a
#            stream per row would cost the server, were the browser to open them).
# Each operation reports 10 steps a second. Prints CPU as % of one core over the
# window, from /proc/PID/stat (utime + stime). Needs chromium and curl.
#
#   bash benches/dashboard/cpu.sh [seconds per measure, default 20]
set -euo pipefail
cd "$(dirname "$0")/../.."
WINDOW="${1:-20}"
cargo build -q --release -p orchestrator-examples --example axum_server
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/axum_server"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$bin" --addr 127.0.0.1:0 --store memory: --max-streams 256 >"$work/out" 2>/dev/null &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do
    addr="$(sed -n 's|^listening on http://||p' "$work/out")"
    [ -n "$addr" ] && break
    sleep 0.1
done
ids=()
for _ in $(seq 1 50); do
    ids+=("$(curl -s -XPOST "http://$addr/api/v1/dummy/start" -H 'content-type: application/json' \
        -d '{"iterations": 100000, "interval_ms": 100}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["operation_id"])')")
done

ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz="$(getconf CLK_TCK)"
measure() {
    local label="$1" before after
    sleep 3 # settle
    before="$(ticks)"
    sleep "$WINDOW"
    after="$(ticks)"
    python3 -c "print(f'{\"$label\":8} {100 * ($after - $before) / $hz / $WINDOW:6.2f} % of one core')"
}

measure idle

chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --remote-debugging-port=0 \
    "http://$addr/dashboard" >/dev/null 2>&1 &
browser=$!
pids+=("$browser")
measure page
kill "$browser"

streams=()
for id in "${ids[@]}"; do
    curl -sN "http://$addr/api/v1/operations/$id/events" >/dev/null &
    streams+=($!)
    pids+=($!)
done
measure per-op
kill "${streams[@]}" 2>/dev/null || true
