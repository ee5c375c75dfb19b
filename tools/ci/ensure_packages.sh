#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed yet; does nothing
# (and needs no network) when all of them are. Used by run_demo.sh and test_all.sh.
# Usage: tools/ci/ensure_packages.sh PACKAGE...   (as root, or with sudo available)
set -euo pipefail

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing missing packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "error: not root and no sudo; install as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y "${missing[@]}"
