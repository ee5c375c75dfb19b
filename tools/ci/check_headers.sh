#!/usr/bin/env bash
# Compiles every header under include/ringlet (detail/ included) on its own: one generated
# translation unit per header, which includes it twice (the second include checks
# `#pragma once`). The list is globbed at run time, so new headers are checked at once.
# Usage: tools/ci/check_headers.sh [COMPILER...]   (default: g++, and clang++ if installed)
# Prints one FAIL line (and the errors) per header that does not compile, then a summary line;
# exits non-zero if any failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
jobs=${JOBS:-2}
if [[ $# -gt 0 ]]; then
    compilers=("$@")
else
    compilers=(g++)
    command -v clang++ >/dev/null && compilers+=(clang++)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ringlet-headers.XXXXXX")
trap 'rm -rf "$work"' EXIT

mapfile -t headers < <(cd "$root/include" && find ringlet -name '*.hpp' | LC_ALL=C sort)
if [[ ${#headers[@]} -eq 0 ]]; then
    echo "FAIL headers: no header found under $root/include/ringlet"
    exit 1
fi

# compile_one COMPILER HEADER: prints "ok" or "FAIL ..." plus the first errors.
compile_one() {
    local cxx=$1 header=$2
    local tu
    tu="$work/$(echo "$cxx-$header" | tr '/+' '_p').cpp"
    printf '#include <%s>\n#include <%s>\n' "$header" "$header" >"$tu"
    if out=$("$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Wno-pedantic -Werror \
        -I"$root/include" "$tu" 2>&1); then
        echo "ok $cxx $header"
    else
        echo "FAIL $cxx $header"
        echo "$out" | head -n 15 | sed 's/^/    /'
    fi
}
export -f compile_one
export root work

results=$(for cxx in "${compilers[@]}"; do
    for header in "${headers[@]}"; do printf '%s\0%s\0' "$cxx" "$header"; done
done | xargs -0 -n 2 -P "$jobs" bash -c 'compile_one "$0" "$1"')

echo "$results" | grep -v '^ok ' || true
checked=$(echo "$results" | grep -c -E '^(ok|FAIL) ')
failed=$(echo "$results" | grep -c '^FAIL ')
echo "headers: ${#headers[@]} headers x ${#compilers[@]} compilers (${compilers[*]}):" \
    "$((checked - failed)) compiled alone, $failed failed"
[[ $failed -eq 0 ]]
