#!/usr/bin/env bash
# Builds Jono's image from scratch (deploy/build-image.sh: buildah, no base image, no registry),
# checks its configuration, and runs it: `jono serve` from the image answers /readyz and serves
# the console embedded in the binary, as the image's non-root user, and stops on SIGTERM.
#
#   scripts/image-test.sh BINARY        (as root, with Debian's buildah; podman if present)
#
# Running needs a container runtime. Where podman's runtime is refused by the machine (here:
# crun cannot raise RLIMIT_NOFILE without CAP_SYS_RESOURCE), the image's own root file system is
# run with chroot as its user instead, and the refusal is printed.
set -euo pipefail
binary=$(realpath "$1")
cd "$(dirname "$0")/.."
name=localhost/jono:image-test
work=$(mktemp -d)
container=
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    [[ -n $container ]] && buildah rm "$container" >/dev/null 2>&1 || true
    buildah rmi "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "image test: $*" >&2; exit 1; }

deploy/build-image.sh "$binary" "$name" >/dev/null
buildah inspect --type image "$name" >"$work/image.json"
config=$(/usr/bin/python3 -c '
import json, sys
image = json.load(open(sys.argv[1]))["OCIv1"]
print(image["config"]["User"], json.dumps(image["config"]["Entrypoint"]), json.dumps(image["config"]["Cmd"]), len(image["rootfs"]["diff_ids"]))
' "$work/image.json")
[[ $config == '65532:65532 ["/usr/local/bin/jono"] ["serve"] 1' ]] || fail "unexpected configuration (user, entry point, command, layers): $config"

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$work/serve.log
runner=
if command -v podman >/dev/null 2>&1; then
    if refusal=$(timeout 60 podman run --rm --network host "$name" --version 2>&1); then
        runner=podman
    else
        echo "image test: podman cannot run containers here: ${refusal##*$'\n'}" >&2
    fi
fi
if [[ $runner == podman ]]; then
    podman run --rm --network host --name jono-image-test "$name" \
        serve --listen "127.0.0.1:$port" >"$log" 2>&1 &
    pid=$!
else
    echo "image test: running the image's root file system with chroot as 65532:65532" >&2
    container=$(buildah from "$name")
    root=$(buildah mount "$container")
    env -i JONO_DATA_DIR=/data JONO_LISTEN="127.0.0.1:$port" \
        "$(command -v chroot)" \
        --userspec=65532:65532 "$root" /usr/local/bin/jono serve >"$log" 2>&1 &
    pid=$!
fi
for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "jono serve from the image exited"; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$log" >&2; fail "not ready"; }
page=$(curl -fsS "http://127.0.0.1:$port/")
[[ $page == *'<div id="app">'* || $page == *'/assets/'* ]] || fail "the console is not served: $page"
grep -q 'serving the console embedded in this binary' "$log" || { cat "$log" >&2; fail "the console is not the embedded one"; }
if [[ $runner == podman ]]; then
    podman stop --time 20 jono-image-test >/dev/null
    wait "$pid" || true
else
    kill -TERM "$pid"
    wait "$pid" || { cat "$log" >&2; fail "jono did not stop cleanly on SIGTERM"; }
    [[ -e $root/data/jono.db ]] || fail "the store was not written to /data"
    owner=$(stat -c %u "$root/data/jono.db")
    [[ $owner == 65532 ]] || fail "the store belongs to uid $owner, not the image's user"
fi
pid=
echo "image test: built from scratch ($(du -sh "$binary" | cut -f1) binary), served /readyz and the embedded console as 65532 (${runner:-chroot})"
