#!/usr/bin/env bash
# Makes a virtualenv of Debian's Python with the pinned test tools of requirements.lock:
#
#   scripts/python/venv.sh DIR     (DIR/bin/python and DIR/bin/schemathesis afterwards)
#
# Debian's /usr/bin/python3 only, never the first python3 on the PATH (a pyenv build may shadow
# it), at the version the lock was made for; python3-venv is installed when missing (as root).
# Every package is installed from the lock with its hash checked and no resolution (--no-deps),
# so the same lock installs the same files every time.
set -euo pipefail

PYTHON=/usr/bin/python3
EXPECTED=3.11

here=$(cd "$(dirname "$0")" && pwd)
(($# == 1)) || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1

apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "venv.sh: missing $*: install it (apt-get install $*) or run as root" >&2
        exit 1
    fi
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$@" >/dev/null
}

[[ -x $PYTHON ]] || apt_install python3
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $version != "$EXPECTED" ]]; then
    echo "venv.sh: $PYTHON is Python $version; requirements.lock was made for $EXPECTED (Debian 12)." >&2
    echo "venv.sh: regenerate the lock for this Python (scripts/python/README.md)." >&2
    exit 1
fi
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv

"$PYTHON" -m venv "$dir"
# No index look-ups beyond the locked files, no pip self-upgrade notice, no resolution.
timeout 600 "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps --only-binary=:all: -r "$here/requirements.lock"
"$dir/bin/pip" check >/dev/null
