#!/usr/bin/env bash
# What a new user (and CI) does, from nothing: clones the repository's `main` into a temporary
# folder and runs the README's two commands there, exactly as the README's first lines write them.
#
#   bash scripts/fresh-check.sh [REPOSITORY]      (default: this checkout)
#
# 1. The run command (web console build, then `jono serve` on the embedded store) is started in
#    the clone, probed — `/healthz` answers, the console's page is served — and stopped with
#    SIGTERM, which must end it cleanly.
# 2. The test command runs in the clone, with CI=true as CI sets it.
#
# Nothing is reused from this checkout: the clone has an empty target/ and node_modules/, so
# this takes as long as CI does (release and debug builds from scratch; about 40 minutes on 2
# cores). KEEP=1 keeps the clone for a look afterwards. JONO_LISTEN sets the run command's
# address (default 127.0.0.1:8080, as the README's command listens without it).
set -euo pipefail

repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
listen=${JONO_LISTEN:-127.0.0.1:8080}
base="http://$listen"

say() { printf '\n== fresh-check: %s\n' "$*" >&2; }

work=$(mktemp -d /tmp/jono-fresh.XXXXXX)
server=
cleanup() {
    if [[ -n $server ]]; then
        kill -TERM -- "-$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [[ ${KEEP:-} == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

say "cloning main of $repo into $work/jono"
git clone --quiet --branch main --single-branch "$repo" "$work/jono"
cd "$work/jono"

# The two commands, read from the README's first lines so that this check cannot drift from it.
command_of() {
    local line
    line=$(grep -m1 -- "- \*\*$1:\*\* \`" README.md) || {
        echo "README.md has no '- **$1:** \`…\`' line" >&2
        exit 1
    }
    line=${line#*\`}
    printf '%s\n' "${line%%\`*}"
}
run_command=$(command_of Run)
test_command=$(command_of Test)

if curl -s -o /dev/null "$base/healthz"; then
    echo "something already listens on $listen: stop it or set JONO_LISTEN" >&2
    exit 1
fi

say "run command: $run_command (listening on $listen)"
# In a process group of its own, so that the stop reaches `jono` under `cargo run`.
JONO_LISTEN=$listen setsid bash -c "$run_command" >"$work/run.log" 2>&1 &
server=$!
up=false
for _ in $(seq 3600); do    # the release build comes first: up to an hour
    if curl -sf -o /dev/null "$base/healthz"; then up=true; break; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 1
done
if ! $up; then
    echo "the run command did not serve $base/healthz; its output:" >&2
    tail -n 40 "$work/run.log" >&2
    exit 1
fi
page=$(curl -sf "$base/") || { echo "GET / failed" >&2; exit 1; }
if ! grep -q '<script' <<<"$page"; then
    echo "GET / is not the web console's page:" >&2
    head -c 500 <<<"$page" >&2
    exit 1
fi
curl -sf -o /dev/null "$base/readyz" || { echo "GET /readyz failed" >&2; exit 1; }
say "the run command serves /healthz, /readyz and the console; stopping it"
kill -TERM -- "-$server"
status=0
timeout 60 tail --pid="$server" -f /dev/null || status=$?
wait "$server" 2>/dev/null || true
server=
if ((status != 0)); then
    echo "jono serve did not stop within 60 s of SIGTERM" >&2
    exit 1
fi

say "test command: $test_command"
CI=true bash -c "$test_command"
say "passed: both commands of the README work from a fresh clone"
