#!/usr/bin/env bash
# A throwaway Postgres for tests.
#
#   scripts/pg.sh start DIR   initialise (first time) and start a server in DIR on a free port of
#                             127.0.0.1; prints its URL as the last line of stdout
#   scripts/pg.sh stop DIR    stop it (fast shutdown); started again, it keeps its port
#
#   url=$(scripts/pg.sh start /tmp/jpg) && JONO_TEST_DATABASE_URL=$url cargo test -p store
#   scripts/pg.sh stop /tmp/jpg
#
# Installs Debian's postgresql package when no server binaries are found (needs root). initdb
# refuses to run as root, so as root the server runs as the `postgres` user (created if missing).
# Everything but the URL goes to stderr, so `$(...)` captures just the URL.
set -euo pipefail

say() { echo "pg.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() { die "usage: $0 start DIR | stop DIR"; }

[[ $# -eq 2 ]] || usage
action=$1
dir=$(realpath -m -- "$2")
data="$dir/data"

# The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's versioned dirs,
# newest first.
find_bindir() {
    local candidates=() found
    if found=$(command -v initdb 2>/dev/null); then
        candidates+=("$(dirname -- "$(readlink -f -- "$found")")")
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        candidates+=("$d")
    done
    for d in "${candidates[@]}"; do
        if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

bindir=$(find_bindir || true)
if [[ -z $bindir ]]; then
    [[ $action == start ]] || die "no Postgres binaries found; nothing to stop"
    [[ $(id -u) -eq 0 ]] || die "no Postgres binaries found (initdb, pg_ctl, postgres); install the postgresql package"
    say "no Postgres binaries found; installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    bindir=$(find_bindir) || die "postgresql installed but initdb/pg_ctl/postgres still not found"
fi

# Runs a command as the user that owns the cluster.
if [[ $(id -u) -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
        say "creating the postgres user"
        useradd -r -m postgres
    fi
    as_owner() {
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    }
else
    as_owner() { "$@"; }
fi

free_port() {
    if [[ -x /usr/bin/python3 ]]; then    # Debian's, never a python3 that shadows it on the PATH
        /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local port
    for port in $(seq 54320 54420); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found in 54320-54420"
}

start() {
    mkdir -p -- "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: -- "$dir"
    fi
    cd -- "$dir"    # the owner must be able to stand in the working directory
    if [[ ! -f $data/PG_VERSION ]]; then
        say "initdb in $data ($bindir)"
        as_owner "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 && [[ -f $dir/port ]]; then
        say "already running"
        echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
        return
    fi
    # Started again (after a stop), it keeps its port, so that clients reconnect to it.
    local port
    if [[ -f $dir/port ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/port")") 2>/dev/null; then
        port=$(cat "$dir/port")
    else
        port=$(free_port)
    fi
    echo "$port" >"$dir/port"
    say "starting on 127.0.0.1:$port (log: $dir/postgres.log)"
    as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir'" start >&2 \
        || { tail -n 20 "$dir/postgres.log" >&2 || true; die "the server did not start"; }
    local ready=no
    for _ in $(seq 1 60); do
        if command -v pg_isready >/dev/null 2>&1 || [[ -x $bindir/pg_isready ]]; then
            if "$(command -v pg_isready || echo "$bindir/pg_isready")" -q -h 127.0.0.1 -p "$port" -U postgres; then
                ready=yes
                break
            fi
        elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            ready=yes
            break
        fi
        sleep 0.5
    done
    [[ $ready == yes ]] || die "the server started but does not answer on 127.0.0.1:$port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
    [[ -f $data/PG_VERSION ]] || die "no cluster in $data"
    cd -- "$dir"
    if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$data" stop -m fast -w >&2
    else
        say "not running"
    fi
}

case $action in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
