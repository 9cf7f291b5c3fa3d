#!/usr/bin/env bash
# Instructions per call of the two gateway doors, under callgrind: the stable figure beside
# benches/grpc.sh's throughput on a shared machine. One `warden serve` (profiling build: release
# with line tables) of deploy/gateway-policies/routes runs under valgrind; h2load sends the same
# allowed request as benches/grpc.sh: nginx's forward-auth call over HTTP/1.1 (`--h1`), one call
# at a time on one connection, then the CheckRequest over h2c, STREAMS calls in flight on each of
# CONNECTIONS connections (default 1 x 1; Envoy multiplexes its checks on one connection per
# worker, so e.g. STREAMS=16 shows what frames of several streams sharing a read and a write
# save). The counters are zeroed after a warm-up and dumped after each door's CALLS calls; every
# thread of the server is counted.
#
#   WARDEN_TEST_PYTHON=/path/to/venv/bin/python benches/grpc_callgrind.sh
#   CALLS=5000 STREAMS=16 WARDEN_BIN=target/release/warden benches/grpc_callgrind.sh
#
# The release build keeps its symbols, so it serves too (same instructions as `profiling`, which
# adds line tables for callgrind_annotate's source view).
#
# The dumps are left in OUT (default: a temporary directory, removed) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-20000}
WARMUP=${WARMUP:-2000}
CONNECTIONS=${CONNECTIONS:-1}
STREAMS=${STREAMS:-1}
python=${WARDEN_TEST_PYTHON:?set WARDEN_TEST_PYTHON to a Python with grpcio-tools}
for tool in valgrind callgrind_control h2load curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install valgrind nghttp2-client curl)" >&2; exit 1; }
done
warden=${WARDEN_BIN:-target/profiling/warden}
test -x "$warden" || cargo build --profile profiling --locked --bin warden

work=$(mktemp -d)
out=${OUT:-$work}
mkdir -p "$out"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" --dump-instr=no \
    --compress-strings=no \
    "$warden" serve -p deploy/gateway-policies/routes --watch=false --log-level warn \
    --listen 127.0.0.1:18381 --grpc-listen 127.0.0.1:18391 --identity-header x-user \
    2>"$work/valgrind.log" &
server=$!
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:18381/readyz >/dev/null && break; sleep 0.1; done
"$python" tests/grpc/check.py frame "$work/check.bin" GET /albums/a1/photos/p1 x-user=alice

http() {
    h2load --h1 -n"$1" -c1 -m1 \
        -H 'X-Original-Method: GET' -H 'X-Original-URI: /albums/a1/photos/p1' -H 'X-User: alice' \
        http://127.0.0.1:18381/forward-auth/nginx >"$work/h2load.txt"
    grep -q "$1 succeeded" "$work/h2load.txt" || { cat "$work/h2load.txt" >&2; exit 1; }
}
grpc() {
    h2load -n"$1" -c"$CONNECTIONS" -m"$STREAMS" -H 'content-type: application/grpc' -H 'te: trailers' \
        -d "$work/check.bin" \
        http://127.0.0.1:18391/envoy.service.auth.v3.Authorization/Check >"$work/h2load.txt"
    grep -q "$1 succeeded" "$work/h2load.txt" || { cat "$work/h2load.txt" >&2; exit 1; }
}
# Instructions counted since the last zeroing, from the dump callgrind_control -d writes.
dumped() {
    callgrind_control -d "$server" >/dev/null
    sleep 1
    local newest
    newest=$(ls -t "$out"/callgrind.out.* | head -n 1)
    awk '/^(summary|totals):/ { print $2; exit }' "$newest"
}
measure() { # door
    "$1" "$WARMUP"
    callgrind_control -z "$server" >/dev/null
    "$1" "$CALLS"
    local total
    total=$(dumped)
    printf '%-28s %16s %12s\n' "$2" "$total" "$((total / CALLS))"
}
printf '%-28s %16s %12s\n' door instructions 'per call'
measure http "HTTP forward-auth (nginx)"
measure grpc "gRPC ext_authz (${CONNECTIONS}x${STREAMS})"
