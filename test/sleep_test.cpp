// Tests of sleep, sleep_until and yield_now: zero, negative and past delays yield exactly once
// through the ready queue, timers fire in deadline order, and a real sleep lasts its duration.
#include "support.hpp"

#include <functional>
#include <string>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::EventLoop;
using ringlet::Task;

using Log = std::vector<std::string>;

/// Appends "<name>1".."<name>3" to `log`, pausing with `pause()` (an awaitable) after each.
/// Lifetime: `log` must outlive the task.
template <class Pause>
Task<> step_three_times(Log& log, std::string name, Pause pause) {
    for (int i = 1; i <= 3; ++i) {
        log.push_back(name + std::to_string(i));
        auto awaiter = pause();
        co_await awaiter;
    }
}

/// Runs two tasks A and B that step three times each, pausing with `pause`.
template <class Pause>
Log interleave(Pause pause) {
    Log log;
    run_virtual([](Log& l, Pause p) -> Task<> {
        auto a = ringlet::spawn(step_three_times(l, "A", p));
        auto b = ringlet::spawn(step_three_times(l, "B", p));
        co_await a;
        co_await b;
    }(log, std::move(pause)));
    return log;
}

const Log alternating{"A1", "B1", "A2", "B2", "A3", "B3"};

/// Lifetime: `log` must outlive the task.
Task<> sleep_then_log(Log& log, std::string name, EventLoop::duration delay) {
    EventLoop& loop = EventLoop::current();
    auto start = loop.time();
    co_await ringlet::sleep(delay);
    CHECK(loop.time() - start >= delay);
    log.push_back(name);
}

} // namespace

TEST_CASE("yield_now yields exactly once: two yielding tasks alternate", "[sleep]") {
    CHECK(interleave([] { return ringlet::yield_now(); }) == alternating);
}

TEST_CASE("sleep(0ms) yields exactly once: two sleeping tasks alternate", "[sleep]") {
    CHECK(interleave([] { return ringlet::sleep(0ms); }) == alternating);
}

TEST_CASE("a negative sleep acts as a zero sleep", "[sleep]") {
    CHECK(interleave([] { return ringlet::sleep(-5s); }) == alternating);
    run_virtual([]() -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto before = loop.time();
        auto iterations = loop.stats().iterations;
        co_await ringlet::sleep(-1h);
        CHECK(loop.time() == before); // no timer: virtual time did not move
        CHECK(loop.stats().iterations == iterations + 1);
        CHECK(loop.stats().timers_scheduled == 0);
    }());
}

TEST_CASE("sleep_until a past time yields exactly once", "[sleep]") {
    CHECK(interleave([] { return ringlet::sleep_until(EventLoop::current().time() - 1h); }) ==
          alternating);
    CHECK(interleave([] { return ringlet::sleep_until(EventLoop::current().time()); }) ==
          alternating);
}

TEST_CASE("sleeping tasks wake in deadline order and equal deadlines in scheduling order",
          "[sleep]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto start = loop.time();
        auto a = ringlet::spawn(sleep_then_log(l, "a30", 30ms));
        auto b = ringlet::spawn(sleep_then_log(l, "b10", 10ms));
        auto c = ringlet::spawn(sleep_then_log(l, "c20", 20ms));
        auto d = ringlet::spawn(sleep_then_log(l, "d10", 10ms));
        auto e = ringlet::spawn(sleep_then_log(l, "e1h", 1h));
        co_await a;
        co_await b;
        co_await c;
        co_await d;
        co_await e;
        CHECK(loop.time() - start >= 1h);
        CHECK(loop.stats().timers_pending == 0);
    }(log));
    CHECK(log == Log{"b10", "d10", "c20", "a30", "e1h"});
}

TEST_CASE("sleep_until wakes at its deadline in virtual time", "[sleep]") {
    run_virtual([]() -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto deadline = loop.time() + 90min;
        co_await ringlet::sleep_until(deadline);
        CHECK(loop.time() >= deadline);
    }());
}

TEST_CASE("a real-time sleep of 20 ms lasts at least 20 ms", "[sleep]") {
    auto elapsed = run_real([]() -> Task<EventLoop::duration> {
        auto start = std::chrono::steady_clock::now();
        co_await ringlet::sleep(20ms);
        co_return std::chrono::steady_clock::now() - start;
    }());
    CHECK(elapsed >= 20ms);
    CHECK(elapsed < 10s); // generous: only catches a sleep that never ends on time
}
