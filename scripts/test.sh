#!/usr/bin/env bash
# Every test of Jono, from a fresh clone on a Debian machine with Rust, Node and Python:
#
#   bash scripts/test.sh
#
# Installs what the tests need and is missing (strace; Debian's PostgreSQL and Chromium; the
# web console's npm packages), starts a throwaway
# Postgres on 127.0.0.1 in a temporary directory, runs the formatting and lint checks and every
# test of the workspace against both backends, and stops what it started. Each stage has a
# time limit so a hang fails instead of stalling CI.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*" >&2; }

need_apt=()
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    say "installing ${need_apt[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "missing ${need_apt[*]}: install them (apt-get install ${need_apt[*]}) or run as root" >&2
        exit 1
    fi
fi

pg_dir=$(mktemp -d /tmp/jono-pg.XXXXXX)
cleanup() {
    scripts/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
trap cleanup EXIT

say "starting Postgres"
JONO_TEST_DATABASE_URL=$(timeout 900 scripts/pg.sh start "$pg_dir" | tail -n 1)
export JONO_TEST_DATABASE_URL

say "cargo fmt --check"
timeout 300 cargo fmt --all -- --check

say "cargo clippy"
timeout 1800 cargo clippy --workspace --all-targets --locked -- -D warnings

say "cargo build"
timeout 1800 cargo build --workspace --all-targets --locked

say "cargo test (SQLite and Postgres)"
timeout 1800 cargo test --workspace --locked

say "web: install, typecheck, build"
(
    cd web
    timeout 900 npm ci --no-audit --no-fund
    # The console's API types are generated from schemas/openapi.json: regenerated, they must
    # be what is committed, or the console and the contract have drifted (`npm run gen`).
    generated=$(mktemp --suffix=.d.ts)
    timeout 300 npx openapi-typescript ../schemas/openapi.json -o "$generated" >/dev/null
    if ! diff -q src/api/schema.d.ts "$generated" >/dev/null; then
        echo "web/src/api/schema.d.ts differs from schemas/openapi.json: run npm run gen in web/" >&2
        rm -f "$generated"
        exit 1
    fi
    rm -f "$generated"
    timeout 300 npm run typecheck
    timeout 300 npm run build
)

say "web: the console and the widget in Chromium against jono serve"
timeout 1800 cargo build --workspace --bin jono --locked
(cd web && JONO_BIN="$PWD/../target/debug/jono" timeout 900 node tests/browser.mjs)

say "schemathesis: the served OpenAPI document against the running binary"
# --workspace keeps the features of the shared dependencies as `cargo test` built them.
timeout 1800 cargo build --workspace --bin jono --locked
(
    data=$(mktemp -d /tmp/jono-fuzz.XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    base="http://127.0.0.1:$port"
    JONO_RATE_LIMITS=off target/debug/jono serve --listen "127.0.0.1:$port" --data "$data" \
        >"$data/serve.log" 2>&1 &
    server=$!
    stop() {
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        rm -rf "$data"
    }
    trap stop EXIT
    for _ in $(seq 100); do
        curl -sf "$base/healthz" >/dev/null && break
        sleep 0.1
    done
    json() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
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
)

say "all tests passed"
