#!/usr/bin/env bash
# Builds Jono's image from scratch with buildah (Debian's package): no base image is pulled, so it
# works without a registry. The same root file system as the Dockerfile's (image-root.sh).
#
#   deploy/build-image.sh BINARY [NAME]      (as root; NAME defaults to localhost/jono:dev)
#
# Build the binary first, after web/ (the console is embedded at build time):
#   (cd web && npm ci && npm run build) && cargo build --release --locked --bin jono
#   deploy/build-image.sh target/release/jono
set -euo pipefail
binary=$1
name=${2:-localhost/jono:dev}
here=$(cd "$(dirname "$0")" && pwd)
container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
root=$(buildah mount "$container")
"$here/image-root.sh" "$binary" "$root"
buildah umount "$container" >/dev/null
buildah config \
    --user 65532:65532 \
    --workingdir /data \
    --env JONO_DATA_DIR=/data \
    --env JONO_LISTEN=0.0.0.0:8080 \
    --port 8080 \
    --volume /data \
    --entrypoint '["/usr/local/bin/jono"]' \
    --cmd serve \
    --label org.opencontainers.image.title=jono \
    "$container"
buildah commit --quiet "$container" "$name"
