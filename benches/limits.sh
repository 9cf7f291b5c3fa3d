#!/usr/bin/env bash
# Limited decisions over HTTP, on loopback: the same allowed AuthZEN evaluation against three
# `warden serve` (release build) of one policy — without a limit, with a limit counted in the
# process, and with the same limit counted in Redis (`rate_limit_redis`) — in alternating
# rounds, so that a busy machine weighs on each alike. Each call names one of 10,000 subjects in
# turn, and the limit (per subject, never reached) counts every call: with Redis, one script
# call per decision.
#
# Two loads: CONNECTIONS connections (default 32), whose calls in flight share each replica's
# one multiplexed Redis connection as a pipeline; and one connection (`c1`), one call at a time,
# so every decision waits out its own round trip (no pipelining): its p50 is the single-decision
# latency. Reports calls/s and p50/p99 per server and load, the median over ROUNDS, and Redis's
# count of script calls and Warden's of Redis failures (which must stay 0: a failure is counted
# locally instead, and the figure would not be Redis's), and per server and load the context
# switches per call and the server's threads at the end (from /proc, on Linux). The load
# average is printed before and after: quote it with the figures. wrk and Redis share the 2
# cores with the server.
#
#   benches/limits.sh                            # starts its own redis-server on REDIS_PORT
#   ROUNDS=5 DURATION=5s benches/limits.sh
#   REDIS_URL=redis://127.0.0.1:16399/3 benches/limits.sh   # an existing Redis
#   WARDEN_BIN=target/profiling/warden benches/limits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_NUMERIC=C

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18481}
REDIS_PORT=${REDIS_PORT:-18479}
for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install wrk curl)" >&2; exit 1; }
done
warden=${WARDEN_BIN:-target/release/warden}
test -x "$warden" || cargo build --release --locked --bin warden

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

redis_url=${REDIS_URL:-}
if [ -z "$redis_url" ]; then
    command -v redis-server >/dev/null || { echo "redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --logfile "$work/redis.log" --dir "$work" &
    pids+=($!)
    redis_url="redis://127.0.0.1:$REDIS_PORT"
fi
redis_cli() { redis-cli -u "$redis_url" "$@"; }
for _ in $(seq 1 50); do redis_cli ping >/dev/null 2>&1 && break; sleep 0.1; done

policy() {
    mkdir -p "$work/$1"
    printf 'entity User\nentity Photo\naction view on Photo\nallow view on Photo\n%s\n' "$2" \
        > "$work/$1/photos.warden"
}
policy plain ""
policy limited "limit views: 1000000 view per 1s per subject"

names=(none local redis)
ports=()
servers=()
start() { # name, directory, options...
    local name=$1 dir=$2 port=$((PORT + ${#ports[@]}))
    shift 2
    "$warden" serve --policies "$work/$dir" --listen "127.0.0.1:$port" --watch=false \
        --log-level warn "$@" &
    pids+=($!)
    servers+=($!)
    ports+=("$port")
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.1; done
    echo "$name did not start" >&2
    exit 1
}
start none plain
start local limited
start redis limited --rate-limit-redis "$redis_url"

cat > "$work/calls.lua" <<'LUA'
local calls = {}
local next_call = 0
function init(args)
  for i = 0, 9999 do
    local body = string.format('{"subject":{"type":"User","id":"u%d"},"action":{"name":"view"},"resource":{"type":"Photo","id":"p1"}}', i)
    calls[i] = wrk.format("POST", "/access/v1/evaluation", {["Content-Type"] = "application/json"}, body)
  end
end
function request()
  next_call = (next_call + 1) % 10000
  return calls[next_call]
end
LUA
# Every server answers `{"decision":true}` before anything is measured.
for i in 0 1 2; do
    answer=$(curl -sf -H 'Content-Type: application/json' \
        -d '{"subject":{"type":"User","id":"u0"},"action":{"name":"view"},"resource":{"type":"Photo","id":"p1"}}' \
        "http://127.0.0.1:${ports[$i]}/access/v1/evaluation")
    [ "$answer" = '{"decision":true}' ] || { echo "${names[$i]} answered $answer" >&2; exit 1; }
done

to_ms() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f\n", v }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
redis_failures() {
    curl -sf "http://127.0.0.1:${ports[2]}/metrics" |
        awk '/^warden_rate_limit_redis_failures_total/ { n += $NF } END { print n + 0 }'
}
# Context switches of a process so far, all its threads (0 without /proc).
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
threads() { ls /proc/"$1"/task 2>/dev/null | wc -l; }
script_calls() {
    redis_cli info commandstats | tr -d '\r' |
        awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3; found = 1 } END { if (!found) print 0 }'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
scripts_before=$(script_calls)
for round in $(seq 1 "$ROUNDS"); do
    for load in "c$CONNECTIONS" c1; do
        connections=${load#c}
        for i in 0 1 2; do
            before=$(switches "${servers[$i]}")
            wrk -t1 -c"$connections" -d"$DURATION" --latency -s "$work/calls.lua" \
                "http://127.0.0.1:${ports[$i]}" >"$work/wrk.txt"
            after=$(switches "${servers[$i]}")
            calls=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
            per_call=$(awk -v a="$after" -v b="$before" -v n="$calls" 'BEGIN { printf "%.2f", n ? (a - b) / n : 0 }')
            rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.txt")
            p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk.txt" | to_ms)
            p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.txt" | to_ms)
            non2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.txt")
            [ -z "$non2xx" ] || { echo "${names[$i]}: $non2xx answers were not 200" >&2; exit 1; }
            echo "${names[$i]} $load $rps $p50 $p99 $per_call $(threads "${servers[$i]}")" >>"$work/results.txt"
            echo "round $round ${names[$i]} $load: $rps calls/s, p50 $p50 ms, p99 $p99 ms, $per_call switches/call" >&2
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Redis script calls: $(( $(script_calls) - scripts_before )); Warden's Redis failures: $(redis_failures)"

printf '%-8s %-5s %12s %10s %10s %10s %8s\n' limit load 'calls/s' 'p50 ms' 'p99 ms' 'cs/call' threads
for load in "c$CONNECTIONS" c1; do
    for name in "${names[@]}"; do
        rows=$(awk -v n="$name" -v l="$load" '$1 == n && $2 == l' "$work/results.txt")
        printf '%-8s %-5s %12s %10s %10s %10s %8s\n' "$name" "$load" \
            "$(awk '{ print $3 }' <<<"$rows" | median)" \
            "$(awk '{ print $4 }' <<<"$rows" | median)" \
            "$(awk '{ print $5 }' <<<"$rows" | median)" \
            "$(awk '{ print $6 }' <<<"$rows" | median)" \
            "$(awk '{ print $7 }' <<<"$rows" | median)"
    done
done
