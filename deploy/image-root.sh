#!/usr/bin/env bash
# The root file system of Jono's image, from nothing: the `jono` binary, the shared libraries it
# links (glibc's few, read from the binary itself with ldd), a non-root user, and /data for the
# embedded store. Used by the Dockerfile's last build stage and by build-image.sh, which builds
# the image with buildah without pulling any base image.
#
#   deploy/image-root.sh BINARY ROOT
set -euo pipefail
binary=$1
root=$2
[[ -x $binary ]] || { echo "no executable at $binary" >&2; exit 1; }
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp" "$root/etc"
install -m 0755 "$binary" "$root/usr/local/bin/jono"
# Every library the loader would open, at the path it would open it from, and the loader itself.
ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
done
# uid/gid 65532 ("nonroot"), owner of the data folder; /tmp for uploads in flight.
echo 'nonroot:x:65532:65532:jono:/data:/sbin/nologin' >"$root/etc/passwd"
echo 'nonroot:x:65532:' >"$root/etc/group"
chown 65532:65532 "$root/data"
chmod 1777 "$root/tmp"
