#!/usr/bin/env bash
# Checks the three ways to depend on ringlet: builds ringlet, installs it into a temporary
# prefix, then builds and runs the consumer projects beside this script against it:
#   pkgconfig/         pkg-config --cflags --libs ringlet (shared and static library)
#   cmake/             find_package(ringlet) + ringlet::ringlet (and ringlet::ringlet_static)
#   meson_subproject/  dependency('ringlet') from subprojects/ringlet (a link to this checkout)
# Prints one `PASS consumer-x` or `FAIL consumer-x` line per consumer (with the end of the
# failing log) and exits non-zero if any failed.
# Usage: test/consumers/run.sh   Environment: CXX (default g++), KEEP_WORK=1 keeps the temp dir.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CXX=${CXX:-g++}
jobs=${JOBS:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/ringlet-consumers.XXXXXX")
if [[ ${KEEP_WORK:-0} != 1 ]]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "work dir: $work"
fi
prefix=$work/prefix
logs=$work/logs
mkdir -p "$logs"

failed=0
# check NAME COMMAND...: runs COMMAND with its output in a log; prints PASS/FAIL NAME.
check() {
    local name=$1
    shift
    if "$@" >"$logs/$name.log" 2>&1; then
        echo "PASS $name"
    else
        echo "FAIL $name (log: $logs/$name.log)"
        tail -n 40 "$logs/$name.log" | sed 's/^/    /'
        failed=1
    fi
}

install_ringlet() {
    meson setup "$work/build" "$root" --prefix="$prefix" --buildtype=debugoptimized \
        -Dtests=false -Dsamples=false -Dbenchmarks=false &&
        ninja -C "$work/build" -j"$jobs" &&
        meson install -C "$work/build" --quiet
}

consumer_pkgconfig() {
    local pcdir
    pcdir=$(dirname "$(find "$prefix" -name ringlet.pc | head -n 1)")
    [[ -f $pcdir/ringlet.pc ]] || { echo "no ringlet.pc under $prefix"; return 1; }
    echo "pkg-config --cflags --libs ringlet: $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs ringlet)"
    echo "pkg-config --static --libs ringlet: $(PKG_CONFIG_PATH=$pcdir pkg-config --static --libs ringlet)"
    PKG_CONFIG_PATH=$pcdir bash "$here/pkgconfig/build.sh" "$work/pkgconfig" || return 1
    if readelf -d "$work/pkgconfig/consumer-static" | grep -q 'libringlet\.so'; then
        echo "consumer-static is linked against libringlet.so, not libringlet.a"
        return 1
    fi
    "$work/pkgconfig/consumer-shared" && "$work/pkgconfig/consumer-static"
}

consumer_cmake() {
    cmake -S "$here/cmake" -B "$work/cmake" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        cmake --build "$work/cmake" -j "$jobs" &&
        "$work/cmake/consumer" && "$work/cmake/consumer_static"
}

consumer_meson_subproject() {
    cp -a "$here/meson_subproject" "$work/meson_subproject" &&
        ln -s "$root" "$work/meson_subproject/subprojects/ringlet" &&
        meson setup "$work/meson_subproject/build" "$work/meson_subproject" \
            --wrap-mode=nodownload --force-fallback-for=ringlet &&
        ninja -C "$work/meson_subproject/build" -j"$jobs" &&
        "$work/meson_subproject/build/consumer"
}

if ! install_ringlet >"$logs/install.log" 2>&1; then
    echo "meson install into $prefix failed:"
    tail -n 40 "$logs/install.log" | sed 's/^/    /'
    for name in consumer-pkgconfig consumer-cmake consumer-meson_subproject; do
        echo "FAIL $name (ringlet did not build or install)"
    done
    exit 1
fi

check consumer-pkgconfig consumer_pkgconfig
check consumer-cmake consumer_cmake
check consumer-meson_subproject consumer_meson_subproject
exit $failed
