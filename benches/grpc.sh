#!/usr/bin/env bash
# Envoy ext_authz over gRPC against HTTP forward-auth, side by side in one run, on loopback.
#
# One `warden serve` (release build) of deploy/gateway-policies/routes answers both doors: wrk
# (Debian `wrk`) sends nginx's forward-auth call to `listen` over CONNECTIONS keep-alive
# connections, then h2load (Debian `nghttp2-client`) sends one CheckRequest, framed as gRPC, over
# h2c to `grpc_listen`, once per layout in LAYOUTS: `CxS` is C connections with S calls in flight
# on each. `32x1` is the HTTP door's layout (one call per connection); Envoy multiplexes its
# checks over one HTTP/2 connection per worker thread, which `4x16` resembles. The same request
# (GET /albums/a1/photos/p1, allowed), the same subject (from `identity_header`: no JWT to
# verify, so the figures are the doors' own cost). Reports requests/s and p50/p99 latency of
# each, and the server's count of 200 answers beside the calls the client completed (every call
# is allowed; the server also counts the few still in flight when the client stopped). The load
# average is printed before and after: quote it with the figures. The client shares the 2 cores
# with the server.
#
#   WARDEN_TEST_PYTHON=/path/to/venv/bin/python benches/grpc.sh
#   DURATION=10 CONNECTIONS=64 LAYOUTS="64x1 4x16 2x64" benches/grpc.sh
#   RATE=50000 LAYOUTS="4x16" benches/grpc.sh   # gRPC paced at RATE checks/s in all (h2load --rps)
#
# WARDEN_TEST_PYTHON names a Python with grpcio-tools (as for the integration tests): it frames
# the CheckRequest from Envoy's protos (tests/grpc/check.py frame).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_NUMERIC=C

DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
LAYOUTS=${LAYOUTS:-"${CONNECTIONS}x1 4x16"}
RATE=${RATE:-}
python=${WARDEN_TEST_PYTHON:?set WARDEN_TEST_PYTHON to a Python with grpcio-tools}
for tool in wrk h2load; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install wrk nghttp2-client)" >&2; exit 1; }
done
# WARDEN_BIN runs another build (a debug one only checks that this script works: no figures).
warden=${WARDEN_BIN:-target/release/warden}
test -x "$warden" || cargo build --release --locked

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
"$warden" serve -p deploy/gateway-policies/routes --watch=false --log-level warn \
    --listen 127.0.0.1:18281 --grpc-listen 127.0.0.1:18291 --identity-header x-user &
server=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18281/readyz >/dev/null && break; sleep 0.1; done
"$python" tests/grpc/check.py frame "$work/check.bin" GET /albums/a1/photos/p1 x-user=alice

allowed() {
    curl -sf http://127.0.0.1:18281/metrics |
        awk '/^warden_requests_total\{endpoint="forward_auth",code="200"\}/ { n += $NF } END { print n + 0 }'
}
percentile() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p); if (i < 1) i = 1; print v[i] }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
http_before=$(allowed)
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -H 'X-Original-Method: GET' -H 'X-Original-URI: /albums/a1/photos/p1' -H 'X-User: alice' \
    http://127.0.0.1:18281/forward-auth/nginx >"$work/wrk.txt"
http_calls=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
http_rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.txt")
http_p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt")
http_p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt")
middle=$(allowed)

grpc_rows=()
for layout in $LAYOUTS; do
    connections=${layout%x*} streams=${layout#*x}
    paced=() label=$layout
    if [ -n "$RATE" ]; then
        paced=(--rps="$((RATE / connections))") label="$layout at $RATE/s"
    fi
    before=$(allowed)
    h2load -c"$connections" -m"$streams" -D"$DURATION" "${paced[@]}" \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$work/check.bin" \
        --log-file="$work/h2load.log" \
        http://127.0.0.1:18291/envoy.service.auth.v3.Authorization/Check >"$work/h2load.txt"
    grpc_calls=$(awk '/^requests:/ { print $8 }' "$work/h2load.txt")
    grpc_rps=$(awk '/^finished in/ { print $4 }' "$work/h2load.txt")
    grpc_p50=$(cut -f3 "$work/h2load.log" | percentile 0.50)
    grpc_p99=$(cut -f3 "$work/h2load.log" | percentile 0.99)
    after=$(allowed)
    grpc_rows+=("$(printf '%-28s %12s %9sus %9sus %14s' "gRPC ext_authz $label (h2load)" \
        "$grpc_rps" "$grpc_p50" "$grpc_p99" "$((after - before))/$grpc_calls")")
    grep -E '^(requests|status codes):' "$work/h2load.txt" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%-28s %12s %10s %10s %14s\n' door 'calls/s' p50 p99 'answered 200'
printf '%-28s %12s %10s %10s %14s\n' "HTTP forward-auth $CONNECTIONS (wrk)" "$http_rps" "$http_p50" \
    "$http_p99" "$((middle - http_before))/$http_calls"
printf '%s\n' "${grpc_rows[@]}"
