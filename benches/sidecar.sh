#!/usr/bin/env bash
# Sidecar load test on loopback: nginx in front of an upstream service, asking Warden before
# every request (auth_request), once over Warden's Unix socket and once over TCP; and the same
# nginx without the auth step, as the baseline. Reports, per route, requests/s and latency
# (p50, p99) at one connection (the cost of one request, no queueing) and at CONNECTIONS, and
# the latency Warden adds per request over each transport (p50 minus the baseline's p50).
#
#   benches/sidecar.sh                      # 5 s per run, 6 runs, about 40 s in all
#   DURATION=10s CONNECTIONS=32 benches/sidecar.sh
#
# The upstream is an nginx server block answering a constant 200 (so nginx's own proxying is
# in the baseline and the difference is Warden's). The auth subrequest POSTs a fixed AuthZEN
# evaluation to /access/v1/evaluation over a keep-alive upstream connection pool; nginx treats
# any 2xx as allowed, so this measures transport and decision cost, not enforcement (for
# enforcement, use the forward-auth endpoint for gateways). Everything runs on one machine:
# nginx (one worker), Warden and wrk share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
BASE_PORT=${BASE_PORT:-18280}

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
    echo "== installing nginx, wrk and curl (Debian)"
    apt-get update -qq && apt-get install -y -qq nginx wrk curl
fi
if ! nginx -V 2>&1 | grep -q http_auth_request_module; then
    echo "this nginx has no auth_request module" >&2
    exit 1
fi

if [ -z "${BINARY:-}" ]; then
    echo "== building (release)"
    cargo build --release --quiet --bin warden
    BINARY=target/release/warden
fi

work=$(mktemp -d)
# nginx workers (another user) must reach the socket inside.
chmod 0711 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp -r "$work" /tmp/sidecar-work
    rm -rf "$work"
}
trap cleanup EXIT

upstream=$BASE_PORT
plain=$((BASE_PORT + 1))
via_unix=$((BASE_PORT + 2))
via_tcp=$((BASE_PORT + 3))
warden_tcp=$((BASE_PORT + 4))
socket="$work/warden.sock"

# Two Warden processes, identical but for the transport: one on a Unix socket, one on TCP.
# The socket is 0666 here because nginx's workers run as another user than this script; in
# production keep 0660 and put nginx's user in the socket's group (deploy/systemd).
"$BINARY" serve -p policies --watch=false --log-level warn --listen "unix:$socket" \
    --unix-socket-mode 0666 &
pids+=($!)
"$BINARY" serve -p policies --watch=false --log-level warn --listen "127.0.0.1:$warden_tcp" &
pids+=($!)

body='{"subject":{"type":"User","id":"alice"},"action":{"name":"view"},"resource":{"type":"Photo","id":"p1"}}'
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;

    upstream app { server 127.0.0.1:$upstream; keepalive 64; }
    upstream warden_unix { server unix:$socket; keepalive 64; }
    upstream warden_tcp { server 127.0.0.1:$warden_tcp; keepalive 64; }

    # The upstream service: a constant answer.
    server { listen 127.0.0.1:$upstream; location / { return 200 "order o1\n"; } }

    # Baseline: nginx in front of the service, no authorization.
    server {
        listen 127.0.0.1:$plain;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
NGINX
for route in unix tcp; do
    port=$via_unix
    [ "$route" = tcp ] && port=$via_tcp
    cat >> "$work/nginx.conf" <<NGINX
    # Asking Warden over $route before every request.
    server {
        listen 127.0.0.1:$port;
        location / {
            auth_request /_warden;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
        location = /_warden {
            internal;
            proxy_method POST;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Content-Type application/json;
            proxy_pass_request_body off;
            proxy_set_body '$body';
            proxy_pass http://warden_$route/access/v1/evaluation;
        }
    }
NGINX
done
echo "}" >> "$work/nginx.conf"

nginx -t -q -c "$work/nginx.conf" -g 'daemon off;' 2>&1 | grep -v "could not open error log" || true
nginx -c "$work/nginx.conf" -g 'daemon off;' 2>>"$work/nginx/stderr.log" &
pids+=($!)

# Ready: every route answers 200 (the Warden routes only once Warden does).
for port in $plain $via_unix $via_tcp; do
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/orders/o1")" = 200 ] && break
        sleep 0.05
    done
done
echo "== Warden's answer to the subrequest, over the socket:"
curl -s --unix-socket "$socket" http://warden/access/v1/evaluation \
    -H 'Content-Type: application/json' -d "$body"
echo

# wrk's latency distribution: p50 and p99 in microseconds.
run() {
    local port=$1 connections=$2
    wrk -t1 -c"$connections" -d"$DURATION" --latency "http://127.0.0.1:$port/orders/o1" |
        awk '
            function us(v) {
                if (v ~ /us$/) { sub(/us$/, "", v); return v + 0 }
                if (v ~ /ms$/) { sub(/ms$/, "", v); return v * 1000 }
                if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000000 }
                return v
            }
            $1 == "50%" { p50 = us($2) }
            $1 == "99%" { p99 = us($2) }
            $1 == "Requests/sec:" { rps = $2 }
            $1 == "Non-2xx" { bad = $NF }
            END { printf "%s %s %s %s\n", rps, p50, p99, bad + 0 }'
}

printf '\n%-30s %-6s %12s %10s %10s %14s\n' route conns requests/s p50_us p99_us added_p50_us
for connections in 1 "$CONNECTIONS"; do
    base=""
    for route in baseline unix tcp; do
        case $route in
            baseline) port=$plain; label="nginx -> upstream" ;;
            unix) port=$via_unix; label="nginx -> Warden (unix) -> up" ;;
            tcp) port=$via_tcp; label="nginx -> Warden (tcp) -> up" ;;
        esac
        read -r rps p50 p99 bad < <(run "$port" "$connections")
        if [ "$bad" != 0 ]; then echo "$route: $bad non-2xx answers" >&2; exit 1; fi
        [ -z "$base" ] && base=$p50
        added=$(awk -v a="$p50" -v b="$base" 'BEGIN { printf "%.0f", a - b }')
        printf '%-30s %-6s %12s %10.0f %10.0f %14s\n' "$label" "$connections" "$rps" "$p50" "$p99" "$added"
    done
done
