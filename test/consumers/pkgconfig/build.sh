#!/usr/bin/env bash
# Builds main.cpp against an installed ringlet found through pkg-config, twice: with the shared
# library (what `pkg-config --libs ringlet` gives) and with libringlet.a (whose private
# dependency, liburing, comes from `pkg-config --static --libs ringlet`).
# Usage: PKG_CONFIG_PATH=PREFIX/lib/<multiarch>/pkgconfig build.sh OUTDIR   (CXX: the compiler)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
cxx=${CXX:-g++}
mkdir -p "$out"

libdir=$(pkg-config --variable=libdir ringlet)
# shellcheck disable=SC2046 # pkg-config output is a list of flags: split it.
"$cxx" -std=c++20 -o "$out/consumer-shared" "$here/main.cpp" \
    $(pkg-config --cflags --libs ringlet) -Wl,-rpath,"$libdir"

static_libs=$(pkg-config --static --libs ringlet)
static_libs=${static_libs//-lringlet/}
# shellcheck disable=SC2086
"$cxx" -std=c++20 -o "$out/consumer-static" "$here/main.cpp" \
    $(pkg-config --cflags ringlet) "$libdir/libringlet.a" $static_libs
