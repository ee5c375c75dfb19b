// Helpers shared by the test files: loop options for tests and a bounded runner.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <ringlet/ringlet.hpp>
#include <string>
#include <vector>

namespace ringlet::test {

using namespace std::chrono_literals;

/// Loop options for a test; the ring set-up follows RINGLET_RING_SETUP, which the meson test
/// definitions vary so that every test runs under each io_uring fallback.
inline LoopOptions options(bool virtual_time = false, bool debug = false) {
    LoopOptions o;
    o.virtual_time = virtual_time;
    o.debug = debug;
    return o;
}

/// Runs `main` on a fresh loop with virtual time (timers jump, so tests stay fast).
template <class T>
T run_virtual(Task<T> main) {
    return ringlet::run(std::move(main), options(true));
}

/// Runs `main` on a fresh loop with the real clock.
template <class T>
T run_real(Task<T> main) {
    return ringlet::run(std::move(main), options(false));
}

} // namespace ringlet::test
