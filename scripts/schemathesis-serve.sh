#!/usr/bin/env bash
# The schemathesis stage of scripts/test.sh on its own: starts BIN (`jono`) on a fresh data
# directory and a free port of 127.0.0.1 with rate limits off, signs up, opens a queue, runs
# scripts/schemathesis.sh against it and stops it.
#
#   scripts/schemathesis-serve.sh target/debug/jono
#
# Run it several times in a row to check that the stage holds (it must never fail by luck):
#   for i in $(seq 10); do scripts/schemathesis-serve.sh target/debug/jono || break; done
set -euo pipefail
cd "$(dirname "$0")/.."

(($# == 1)) || { echo "usage: $0 BIN" >&2; exit 2; }
bin=$1

data=$(mktemp -d /tmp/jono-fuzz.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
JONO_RATE_LIMITS=off "$bin" serve --listen "127.0.0.1:$port" --data "$data" \
    >"$data/serve.log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap stop EXIT
# A debug build on a loaded machine may take a while to start: wait up to a minute, and fail
# clearly if it does not come up.
up=false
for _ in $(seq 600); do
    if curl -sf "$base/healthz" >/dev/null; then up=true; break; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if ! $up; then
    echo "jono serve did not come up on $base; its log:" >&2
    tail -n 50 "$data/serve.log" >&2
    exit 1
fi
json() { /usr/bin/python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
signup=$(curl -sf -X POST "$base/v1/signup" -H 'content-type: application/json' \
    -d '{"organization": "Fuzz", "name": "Fuzzer", "email": "fuzz@example.com", "password": "fuzz-password-1"}')
token=$(json token <<<"$signup")
org=$(json organization_id <<<"$signup")
queue=$(curl -sf -X POST "$base/v1/orgs/$org/queues" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d '{"name": "Support"}' | json queue_id)
curl -sf -X POST "$base/v1/queues/$queue/open" -H "authorization: Bearer $token" >/dev/null
status=0
timeout 1500 scripts/schemathesis.sh "$base" "$token" || status=$?
if ((status != 0)); then
    echo "the server's log:" >&2
    grep -E 'ERROR|WARN|panicked' "$data/serve.log" | tail -n 50 >&2 || true
fi
exit "$status"
