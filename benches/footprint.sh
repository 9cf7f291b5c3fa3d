#!/usr/bin/env bash
# Footprint of `warden serve` on the bundled example policies (./policies):
#   - binary size;
#   - start-up: from exec to the first 200 on /readyz (the median and the worst of RUNS starts,
#     polling every 0.2 ms over loopback TCP);
#   - resident memory (VmRSS) once ready, and the peak (VmHWM) after LOAD of single
#     evaluations with wrk, when wrk is installed.
#
#   benches/footprint.sh                       # builds the release binary, measures it
#   BINARY=path/to/warden benches/footprint.sh  # measures that binary, builds nothing
#   RUNS=50 LOAD=10s benches/footprint.sh
#
# Loopback only; bounded: RUNS starts (each stopped with SIGTERM) and one LOAD run.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
LOAD=${LOAD:-5s}
PORT=${PORT:-18191}
POLICIES=${POLICIES:-policies}

if [ -z "${BINARY:-}" ]; then
    cargo build --release --quiet --bin warden
    BINARY=target/release/warden
fi

bytes=$(stat -c %s "$BINARY")
echo "binary: $BINARY, $bytes bytes ($(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 }") MiB)"

# One start: exec, poll /readyz until 200, print the milliseconds, leave the server running
# (its pid in $work/pid) so its memory can be read.
work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

start_once() {
    python3 - "$BINARY" "$PORT" "$POLICIES" "$work/pid" <<'PY'
import socket, subprocess, sys, time
binary, port, policies, pidfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
started = time.perf_counter()
child = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "-p", policies,
                          "--log-level", "warn"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
request = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
while True:
    if child.poll() is not None:
        sys.exit(f"warden exited with {child.returncode}")
    if time.perf_counter() - started > 30:
        child.kill()
        sys.exit("not ready within 30 s")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(request)
            answer = s.recv(64)
        if answer.startswith(b"HTTP/1.1 200"):
            break
    except OSError:
        time.sleep(0.0002)
elapsed = (time.perf_counter() - started) * 1000
open(pidfile, "w").write(str(child.pid))
print(f"{elapsed:.2f}")
PY
}

rss() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

times=()
for _ in $(seq 1 "$RUNS"); do
    times+=("$(start_once)")
    server=$(cat "$work/pid")
    idle=$(rss "$server" VmRSS)
    kill -TERM "$server"
    wait "$server" 2>/dev/null || true
    server=""
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
worst=$(echo "$sorted" | tail -1)
echo "start-up to first 200 on /readyz: median ${median} ms, worst ${worst} ms ($RUNS starts)"

# Memory: one more server, idle, then under load.
start_once >/dev/null
server=$(cat "$work/pid")
echo "resident memory once ready: $(rss "$server" VmRSS) KiB"
if command -v wrk >/dev/null; then
    cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"subject":{"type":"User","id":"alice"},"action":{"name":"view"},"resource":{"type":"Photo","id":"p1"}}'
LUA
    wrk -t1 -c32 -d"$LOAD" -s "$work/post.lua" "http://127.0.0.1:$PORT/access/v1/evaluation" \
        | awk '/Requests\/sec/ { print "load: " $2 " requests/s (wrk, 32 connections)" }'
    echo "resident memory after load: $(rss "$server" VmRSS) KiB, peak $(rss "$server" VmHWM) KiB"
else
    echo "(wrk not installed: no load run; apt-get install wrk)"
fi
