#!/usr/bin/env bash
# Load test of `warden serve` with Debian's wrk, on loopback, for a fixed short time.
#
# Reports requests/s, decisions/s and p50/p99 latency for single evaluations and for batches
# of 100, for Warden and for the floor: examples/floor.rs, a bare axum endpoint on the same
# runtime that parses the same JSON body and answers a constant. Also reports Warden's own
# server time per call (from its /metrics histogram), and the latency of single evaluations
# at a paced rate (each of PACED_CONNECTIONS connections waits 1 ms between calls). Then the
# cost of the audit log: a second Warden with it on (every decision recorded — a batch call is
# one record —, with the default fsync policy or AUDIT_FSYNC, in the work directory or
# AUDIT_DIR) against the first, in the same run, in ABBA order, as throughput and as each
# server's CPU per call at a fixed rate (CPU_RATE calls/s); finally the log is verified and
# its decisions counted against the server's. The load average is printed before and after
# the runs: quote it with the figures.
#
#   benches/load.sh                         # 5 s per run, 32 connections, 1 wrk thread
#   DURATION=10s CONNECTIONS=64 benches/load.sh
#   ROUNDS=3 benches/load.sh audit          # only the audit log's cost, ABBA three times
#   PIN=1 ROUNDS=4 benches/load.sh audit    # wrk on core 0, the servers on core 1
#   AUDIT_FSYNC=batch benches/load.sh audit # the log synced after every 10 ms batch
#   CPU_RATE=60000 benches/load.sh audit    # the CPU rows at 60 k calls/s (default 50 k)
#
# The audit log of a run takes disk space: about 2 GB per round of 5-second runs, in the work
# directory (removed at exit) or AUDIT_DIR (kept).
#
# PIN=1 keeps the client off the servers' core, as a separate load machine would: the ratio
# is then mostly the servers' own cost per call, not also how much less wrk gets done on a
# shared core when the server is slower (which roughly doubles any per-call cost; see the
# docs/audit.md). Not wholly: a slower server still leaves wrk's core idle more often,
# and waking it costs the server's core an interrupt. The CPU-per-call rows count neither.
#
# Both servers and wrk share the machine: on 2 cores, wrk takes a good part of one.
set -euo pipefail
cd "$(dirname "$0")/.."
# Figures are printed with a decimal point, whatever the caller's locale.
export LC_NUMERIC=C

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PORT=${PORT:-18181}
FLOOR_PORT=${FLOOR_PORT:-18182}
GATEWAY_PORT=${GATEWAY_PORT:-18183}
UNCACHED_PORT=${UNCACHED_PORT:-18184}
AUDIT_PORT=${AUDIT_PORT:-18185}
AUDIT_DIR=${AUDIT_DIR:-}
AUDIT_FSYNC=${AUDIT_FSYNC:-}
ROUNDS=${ROUNDS:-1}
PIN=${PIN:-0}
PACED_CONNECTIONS=${PACED_CONNECTIONS:-112}
CPU_RATE=${CPU_RATE:-50000}
PART=${1:-all}
case $PART in
    all | audit) ;;
    *) echo "usage: benches/load.sh [all|audit]" >&2; exit 2 ;;
esac
case $CPU_RATE in
    "" | *[!0-9]* | 0) echo "CPU_RATE is a number of calls a second, not \`$CPU_RATE\`" >&2; exit 2 ;;
esac
case $AUDIT_FSYNC in
    "" | batch | interval) ;;
    *) echo "AUDIT_FSYNC is batch or interval, not \`$AUDIT_FSYNC\`" >&2; exit 2 ;;
esac

if ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
    echo "== installing wrk and curl"
    apt-get update -qq && apt-get install -y -qq wrk curl
fi

pin_server=()
pin_client=()
if [ "$PIN" = 1 ]; then
    command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 2; }
    [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs two cores" >&2; exit 2; }
    pin_server=(taskset -c 1)
    pin_client=(taskset -c 0)
fi

echo "== building (release)"
cargo build --release --quiet --bin warden --example floor --example jwt

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A policy of its own, so the figures do not move when the example policies are edited.
mkdir -p "$work/policies/data"
cat > "$work/policies/docs.warden" <<'POLICY'
entity Group in [Group]
entity User in [Group] { department: String, suspended?: Bool }
entity Folder
entity Doc in [Folder] { owner: User }

action read, write on Doc

@id("owner")
allow * on Doc if resource.owner == subject

@id("readers")
allow read on Doc if subject in Group::"readers"

@id("suspended")
deny * if subject has suspended and subject.suspended
POLICY
cat > "$work/policies/data/store.json" <<'STORE'
{
  "entities": [
    {"type": "Group", "id": "readers"},
    {"type": "Group", "id": "staff", "parents": [{"type": "Group", "id": "readers"}]},
    {"type": "User", "id": "alice", "attributes": {"department": "eng"}},
    {"type": "User", "id": "bob", "attributes": {"department": "ops"}, "parents": [{"type": "Group", "id": "staff"}]},
    {"type": "Folder", "id": "f1"},
    {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}, "parents": [{"type": "Folder", "id": "f1"}]},
    {"type": "Doc", "id": "d2", "attributes": {"owner": "alice"}}
  ]
}
STORE

single='{"subject":{"type":"User","id":"bob"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d2"},"context":{"ip":"10.0.0.1"}}'
items=""
for i in $(seq 1 100); do
    case $((i % 4)) in
        0) item='{"resource":{"type":"Doc","id":"d1"}}' ;;
        1) item='{"resource":{"type":"Doc","id":"d2"},"action":{"name":"write"}}' ;;
        2) item='{"resource":{"type":"Doc","id":"d2"},"subject":{"type":"User","id":"alice"}}' ;;
        3) item='{"resource":{"type":"Doc","id":"d1"},"action":{"name":"read"}}' ;;
    esac
    items="${items:+$items,}$item"
done
batch="{\"subject\":{\"type\":\"User\",\"id\":\"bob\"},\"action\":{\"name\":\"read\"},\"evaluations\":[$items]}"
printf '%s' "$single" > "$work/paced.json"
printf '%s' "$single" > "$work/single.json"
printf '%s' "$batch" > "$work/batch.json"
for name in single batch paced; do
    cat > "$work/$name.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("$work/$name.json", "r")
wrk.body = file:read("*a")
file:close()
LUA
done
echo 'function delay() return 1 end' >> "$work/paced.lua"
# A fixed rate, whatever the server's latency (as wrk2 does; Debian has no wrk2): each call is
# given the next slot of a schedule spaced 1/RATE apart, and waits for it. wrk's delays are
# whole milliseconds, so calls leave in bursts, the same for both servers.
cp "$work/single.lua" "$work/rate.lua"
cat >> "$work/rate.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clock, load_timespec *ts);
]]
local now = ffi.new("load_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now) -- CLOCK_MONOTONIC
  return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
end
local gap = 1000 * tonumber(os.getenv("WRK_THREADS")) / tonumber(os.getenv("RATE"))
local slot = nil
function delay()
  local at = now_ms()
  -- Behind by more than 100 ms (the server could not keep up): start the schedule afresh.
  if slot == nil or slot < at - 100 then slot = at end
  slot = slot + gap
  return math.max(0, math.ceil(slot - at))
end
LUA

"${pin_server[@]}" target/release/warden serve --policies "$work/policies" --listen "127.0.0.1:$PORT" \
    --watch=false --log-level warn &
server_pid=$!
pids+=($server_pid)
"${pin_server[@]}" target/release/examples/floor "127.0.0.1:$FLOOR_PORT" &
pids+=($!)
audit_dir=${AUDIT_DIR:-$work/audit}
mkdir -p "$audit_dir"
head -c 32 /dev/urandom > "$work/audit.key"
audit_options=()
[ -n "$AUDIT_FSYNC" ] && audit_options=(--audit-fsync "$AUDIT_FSYNC")
"${pin_server[@]}" target/release/warden serve --policies "$work/policies" --listen "127.0.0.1:$AUDIT_PORT" \
    --watch=false --log-level warn --audit-path "$audit_dir/audit.jsonl" \
    --audit-key-file "$work/audit.key" "${audit_options[@]}" &
audit_pid=$!
pids+=($audit_pid)
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null \
        && curl -sf "http://127.0.0.1:$AUDIT_PORT/readyz" >/dev/null \
        && curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
            "http://127.0.0.1:$FLOOR_PORT/access/v1/evaluation"; then
        break
    fi
    sleep 0.1
done

# The decisions must be what the policy says, or the figures measure errors.
answer=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$work/single.json" \
    "http://127.0.0.1:$PORT/access/v1/evaluation")
[ "$answer" = '{"decision":true}' ] || { echo "unexpected answer: $answer" >&2; exit 1; }
count=$(curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$work/batch.json" \
    "http://127.0.0.1:$PORT/access/v1/evaluations" | grep -o '"decision"' | wc -l)
[ "$count" -eq 100 ] || { echo "the batch answered $count items" >&2; exit 1; }

# Runs wrk and prints: requests/s, p50, p99 (failing on any non-2xx answer or socket error).
measure() {
    local url=$1 script=$2 out
    out=$("${pin_client[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
        echo "$out" >&2
        echo "wrk saw failed requests" >&2
        exit 1
    fi
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $p50 $p99"
}

# Mean server time per call of an endpoint, from the /metrics histogram, in microseconds.
server_time() {
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v e="endpoint=\"$1\"" '
        index($0, "warden_request_duration_seconds_sum{" e) == 1 {sum = $2}
        index($0, "warden_request_duration_seconds_count{" e) == 1 {count = $2}
        END { if (count > 0) printf "%.1f", sum / count * 1e6; else print "-" }'
}

echo "== wrk: $THREADS thread(s), $CONNECTIONS connections, $DURATION per run, $(nproc) cores$([ "$PIN" = 1 ] && echo ", wrk pinned to core 0 and the servers to core 1")"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PART" = all ]; then
    printf '%-26s %12s %14s %10s %10s %14s\n' "run" "requests/s" "decisions/s" "p50" "p99" "server µs/call"
fi
row() {
    local name=$1 per=$2 result=$3 time=${4:--}
    read -r rps p50 p99 <<<"$result"
    printf '%-26s %12.0f %14.0f %10s %10s %14s\n' "$name" "$rps" "$(awk -v r="$rps" -v n="$per" 'BEGIN {print r * n}')" "$p50" "$p99" "$time"
}
# A short warm-up, so the first run does not pay for cold caches.
wrk -t1 -c4 -d1s -s "$work/single.lua" "http://127.0.0.1:$PORT/access/v1/evaluation" >/dev/null
wrk -t1 -c4 -d1s -s "$work/single.lua" "http://127.0.0.1:$AUDIT_PORT/access/v1/evaluation" >/dev/null

if [ "$PART" = all ]; then
warden_single=$(measure "http://127.0.0.1:$PORT/access/v1/evaluation" "$work/single.lua")
row "warden single" 1 "$warden_single" "$(server_time evaluation)"
floor_single=$(measure "http://127.0.0.1:$FLOOR_PORT/access/v1/evaluation" "$work/single.lua")
row "floor single" 1 "$floor_single"
warden_batch=$(measure "http://127.0.0.1:$PORT/access/v1/evaluations" "$work/batch.lua")
row "warden batch of 100" 100 "$warden_batch" "$(server_time evaluations)"
floor_batch=$(measure "http://127.0.0.1:$FLOOR_PORT/access/v1/evaluations" "$work/batch.lua")
row "floor batch of 100 (parse)" 100 "$floor_batch"


ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN {printf "%.0f", 100 * a / b}'; }
echo "warden/floor throughput: single $(ratio "$warden_single" "$floor_single")%, batch $(ratio "$warden_batch" "$floor_batch")%"
# Latency at a rate the machine keeps up with, rather than at saturation (where the server's
# workers and wrk preempt each other on two cores and p99 is a scheduler time slice): each
# connection waits 1 ms after every answer (wrk's `delay`), so the rate is set by the number
# of connections.
row "warden single, paced" 1 "$(CONNECTIONS=$PACED_CONNECTIONS measure "http://127.0.0.1:$PORT/access/v1/evaluation" "$work/paced.lua")"
row "floor single, paced" 1 "$(CONNECTIONS=$PACED_CONNECTIONS measure "http://127.0.0.1:$FLOOR_PORT/access/v1/evaluation" "$work/paced.lua")"

# Forward-auth (the nginx contract) on the example route policy, with a bearer JWT verified
# by Warden: HS256 and ES256, with the verified-token cache and without it.
keys=tests/data/gateway
for port in "$GATEWAY_PORT" "$UNCACHED_PORT"; do
    cache=10000
    [ "$port" = "$UNCACHED_PORT" ] && cache=0
    "${pin_server[@]}" target/release/warden serve --policies deploy/gateway-policies/routes \
        --listen "127.0.0.1:$port" --watch=false --log-level warn --jwt-cache "$cache" \
        --jwt-keys "ES256:$keys/ec.pem,HS256:$keys/hs.secret" &
    pids+=($!)
done
for alg in HS256 ES256; do
    key=$keys/ec-private.pem
    [ "$alg" = HS256 ] && key=$keys/hs.secret
    token=$(target/release/examples/jwt "$alg" "$key" alice)
    cat > "$work/forward-$alg.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-Original-Method"] = "GET"
wrk.headers["X-Original-URI"] = "/albums/a1/photos/p1"
wrk.headers["X-Forwarded-For"] = "192.0.2.1"
wrk.headers["Authorization"] = "Bearer $token"
LUA
done
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null \
        && curl -sf "http://127.0.0.1:$UNCACHED_PORT/readyz" >/dev/null && break
    sleep 0.1
done
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Original-Method: GET' \
    -H 'X-Original-URI: /albums/a1/photos/p1' \
    -H "Authorization: Bearer $(target/release/examples/jwt ES256 $keys/ec-private.pem alice)" \
    "http://127.0.0.1:$GATEWAY_PORT/forward-auth/nginx")
[ "$status" = 200 ] || { echo "forward-auth answered $status" >&2; exit 1; }
for alg in HS256 ES256; do
    result=$(measure "http://127.0.0.1:$GATEWAY_PORT/forward-auth/nginx" "$work/forward-$alg.lua")
    row "forward-auth $alg cached" 1 "$result"
    result=$(measure "http://127.0.0.1:$UNCACHED_PORT/forward-auth/nginx" "$work/forward-$alg.lua")
    row "forward-auth $alg no cache" 1 "$result"
done
fi
# The audit log on (every decision recorded, chained, checkpointed, synced by AUDIT_FSYNC) against
# off, in ABBA order (off, on, on, off) so that a machine getting busier or quieter during the
# run does not favour either side: `abba RUN PATH OFF_ARG ON_ARG` runs `RUN URL ARG` once per
# server in that order and prints each side's mean of its two runs, of each result's first
# field and then of its second (0 when there is none).
audit_server_time() { PORT=$AUDIT_PORT server_time "$1"; }
abba() {
    local run=$1 path=$2 off_arg=$3 on_arg=$4 off1 on1 on2 off2
    off1=$("$run" "http://127.0.0.1:$PORT$path" "$off_arg")
    on1=$("$run" "http://127.0.0.1:$AUDIT_PORT$path" "$on_arg")
    on2=$("$run" "http://127.0.0.1:$AUDIT_PORT$path" "$on_arg")
    off2=$("$run" "http://127.0.0.1:$PORT$path" "$off_arg")
    awk -v a="$off1" -v b="$off2" -v c="$on1" -v d="$on2" 'BEGIN {
        split(a, A, " "); split(b, B, " "); split(c, C, " "); split(d, D, " ")
        printf "%.3f %.3f %.0f %.0f", (A[1] + B[1]) / 2, (C[1] + D[1]) / 2,
            (A[2] + B[2]) / 2, (C[2] + D[2]) / 2
    }'
}
# The log's CPU per call at a fixed rate (CPU_RATE calls/s over PACED_CONNECTIONS
# connections): a server's own CPU time (utime + stime from /proc) over the calls it answered.
# At a rate both servers keep up with, wrk behaves alike for both, so this counts what the log
# costs the server, not how a slower server also slows wrk. The rate is fixed, not set by
# connections that wait between calls, because a server's CPU per call moves with its rate
# (batching in the kernel and the runtime), and a slower server would get fewer calls. The row
# ends with the rates wrk achieved (off/on): a server that cannot keep up shows it there.
ticks_per_second=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_per_call() {
    local url=$1 pid=$2 before out after
    before=$(cpu_ticks "$pid")
    out=$(RATE=$CPU_RATE WRK_THREADS=$THREADS "${pin_client[@]}" wrk -t"$THREADS" \
        -c"$PACED_CONNECTIONS" -d"$DURATION" -s "$work/rate.lua" "$url")
    after=$(cpu_ticks "$pid")
    awk -v ticks=$((after - before)) -v hz="$ticks_per_second" \
        '/ requests in / {n = $1} /^Requests\/sec:/ {rate = $2}
         END {printf "%.3f %.0f", ticks / hz * 1e6 / n, rate}' <<<"$out"
}
# Percent, rounded: 100 × $1 / $2.
percent() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", 100 * a / b}'; }
echo "== audit log off vs on (fsync: ${AUDIT_FSYNC:-the default}; ABBA, mean requests/s of two runs each)"
printf '%-26s %12s %12s %8s %16s\n' "run" "off" "on" "on/off" "on: server µs/call"
echo "(CPU/call rows: each server's CPU per single evaluation at $CPU_RATE calls/s; the ratio is off/on, and the calls/s wrk achieved follow)"
single_shares=()
batch_shares=()
cpu_shares=()
for round in $(seq 1 "$ROUNDS"); do
    label=""
    [ "$ROUNDS" -gt 1 ] && label=" (round $round)"
    read -r off on _ <<<"$(abba measure /access/v1/evaluation "$work/single.lua" "$work/single.lua")"
    share=$(percent "$on" "$off")
    single_shares+=("$share")
    printf '%-26s %12.0f %12.0f %7s%% %16s\n' "single$label" "$off" "$on" "$share" "$(audit_server_time evaluation)"
    read -r off on _ <<<"$(abba measure /access/v1/evaluations "$work/batch.lua" "$work/batch.lua")"
    share=$(percent "$on" "$off")
    batch_shares+=("$share")
    printf '%-26s %12.0f %12.0f %7s%% %16s\n' "batch of 100$label" "$off" "$on" "$share" "$(audit_server_time evaluations)"
    read -r off on off_rate on_rate <<<"$(abba cpu_per_call /access/v1/evaluation "$server_pid" "$audit_pid")"
    share=$(percent "$off" "$on")
    cpu_shares+=("$share")
    printf '%-26s %9.2f µs %9.2f µs %7s%% %16s\n' "CPU/call$label" "$off" "$on" "$share" \
        "at $(awk -v a="$off_rate" -v b="$on_rate" 'BEGIN {printf "%.0f/%.0fk/s", a / 1000, b / 1000}')"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
if [ "$ROUNDS" -gt 1 ]; then
    echo "median of the rounds: single $(median "${single_shares[@]}")%, batch of 100 $(median "${batch_shares[@]}")%, CPU/call $(median "${cpu_shares[@]}")%"
fi
echo "(target: throughput with the log on at least 90% of off; the CPU rows show what the log costs the server)"

# Every decision must be in the log, and the log must verify once the server has closed it.
decided=$(curl -sf "http://127.0.0.1:$AUDIT_PORT/metrics" \
    | awk '/^warden_decisions_total/ {sum += $2} END {printf "%d", sum}')
kill -TERM "$audit_pid"
wait "$audit_pid" 2>/dev/null || true
target/release/warden audit verify --key-file "$work/audit.key" "$audit_dir"/audit.jsonl* \
    | sed 's/^/audit log: /'
recorded=$(target/release/warden audit verify --format json --key-file "$work/audit.key" \
    "$audit_dir"/audit.jsonl* | awk -F': ' '/"decisions"/ {gsub(",", "", $2); print $2}')
echo "audit log: $decided decisions made, $recorded recorded"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$decided" = "$recorded" ] || { echo "the audit log lost decisions" >&2; exit 1; }
