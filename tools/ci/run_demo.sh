#!/usr/bin/env bash
# The README's first command: installs the Debian packages that are missing (nothing when all
# are there), builds ringlet and its first sample in build-demo/, and runs the sample.
# The sample is echo_demo: an echo server and 100 concurrent clients in one thread.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash tools/ci/ensure_packages.sh g++ meson ninja-build pkg-config liburing-dev libfmt-dev
if [[ ! -f build-demo/build.ninja ]]; then
    rm -rf build-demo
    meson setup build-demo -Dtests=false -Dbenchmarks=false
fi
ninja -C build-demo -j"${JOBS:-2}" samples/echo_demo
exec build-demo/samples/echo_demo
