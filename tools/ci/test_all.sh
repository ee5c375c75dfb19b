#!/usr/bin/env bash
# ringlet's whole test suite; .ci/run runs exactly this. Installs the Debian packages that are
# missing (nothing when all are there), then, in fresh build directories build-ci-*:
#   gcc    g++ -Dwerror=true (debugoptimized)
#   clang  clang++ -Dwerror=true
#   asan   g++ -Db_sanitize=address,undefined (LeakSanitizer on, UBSan halts on error)
# For each: build everything (library, tests, samples, benchmarks), `meson test` (the Catch2
# binary once per io_uring set-up, junit XML in meson-logs/), then the echo_demo sample
# (every echo verified). Then: clang-format check, each public header compiled alone, and the three consumer
# projects (pkg-config, CMake, meson subproject). A Catch2 test case counts as one test, and
# so does each other check. Keeps going after a failure; exits non-zero if anything failed.
# The last line printed is `N passed, N failed`.
# Usage: tools/ci/test_all.sh [CONFIG...]   (default: gcc clang asan)
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
jobs=${JOBS:-2}
start_all=$SECONDS

bash "$root/tools/ci/ensure_packages.sh" g++ clang meson ninja-build pkg-config liburing-dev \
    libfmt-dev catch2 cmake clang-format || {
    echo "could not install the packages the tests need"
    echo "0 passed, 1 failed"
    exit 1
}

passed=0
failed=0
summaries=()

# count_check NAME COMMAND...: runs a non-Catch2 check; it counts as one test.
count_check() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
        summaries+=("$name: passed ($((SECONDS - t0)) s)")
    else
        failed=$((failed + 1))
        summaries+=("$name: FAILED ($((SECONDS - t0)) s)")
    fi
}

# check_demo BUILD_DIR: the README's first command's sample, echo_demo, verifies every echo.
check_demo() {
    local out
    out=$(timeout 60 "$1/samples/echo_demo") || {
        echo "echo_demo failed:"
        echo "$out"
        return 1
    }
    echo "$out" | tail -n 1
}

# run_config NAME COMPILER TIMEOUT_MULTIPLIER MESON_OPTION...
run_config() {
    local name=$1 cxx=$2 multiplier=$3
    shift 3
    local dir=$root/build-ci-$name t0=$SECONDS
    local log=$dir-logs
    echo "== config $name: CXX=$cxx meson setup $*"
    rm -rf "$dir" "$log"
    mkdir -p "$log"
    if ! CXX=$cxx meson setup "$dir" --buildtype=debugoptimized "$@" >"$log/setup.log" 2>&1 ||
        ! ninja -C "$dir" -j"$jobs" >"$log/build.log" 2>&1; then
        cat "$log/setup.log" "$log/build.log" 2>/dev/null | grep -E -A5 'error|ERROR|FAILED' |
            head -n 60
        echo "config $name: build FAILED"
        failed=$((failed + 1))
        summaries+=("config $name: build FAILED ($((SECONDS - t0)) s)")
        return
    fi
    echo "   built in $((SECONDS - t0)) s; meson test..."
    meson test -C "$dir" --num-processes 1 --timeout-multiplier "$multiplier" \
        >"$log/test.log" 2>&1
    grep -E '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' "$log/test.log" |
        tr -s '\n ' ' ' | sed 's/^/   meson test: /;s/ *$/\n/'
    local counts p f
    counts=$(python3 "$root/tools/ci/count_tests.py" "$dir")
    echo "$counts" | sed '$d'
    read -r p f <<<"$(echo "$counts" | tail -n 1)"
    if ! [[ $p =~ ^[0-9]+$ && $f =~ ^[0-9]+$ ]]; then
        echo "   could not count the test results of $dir: one failure"
        p=0 f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    local demo=passed
    if check_demo "$dir"; then
        passed=$((passed + 1))
    else
        demo=FAILED
        failed=$((failed + 1))
    fi
    summaries+=("config $name: $p Catch2 test cases passed, $f failed; echo_demo $demo ($((SECONDS - t0)) s)")
}

# test/meson.build gives each Catch2 run 600 s; the multipliers make that 150 s (300 s under
# ASan). The whole suite takes seconds, and a hanging test in every configuration must still
# leave the run well inside CI's time (3 set-ups x 3 configurations run one at a time).
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(gcc clang asan)
for config in "${configs[@]}"; do
    case $config in
    gcc) run_config gcc g++ 0.25 -Dwerror=true ;;
    clang) run_config clang clang++ 0.25 -Dwerror=true ;;
    asan)
        ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            run_config asan g++ 0.5 -Db_sanitize=address,undefined -Db_lundef=false
        ;;
    *) echo "unknown configuration $config (gcc, clang, asan)" && failed=$((failed + 1)) ;;
    esac
done

count_check format bash tools/ci/check_format.sh
count_check headers bash tools/ci/check_headers.sh g++ clang++

echo "== consumers"
t0=$SECONDS
consumers_out=$(bash test/consumers/run.sh 2>&1)
echo "$consumers_out"
for name in consumer-pkgconfig consumer-cmake consumer-meson_subproject; do
    if grep -q "^PASS $name\$" <<<"$consumers_out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
summaries+=("consumers: $(grep -c '^PASS ' <<<"$consumers_out") of 3 passed ($((SECONDS - t0)) s)")

echo "== summary ($((SECONDS - start_all)) s)"
printf '%s\n' "${summaries[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
