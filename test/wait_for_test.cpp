// wait_for and shield (asyncio's test_waitfor and shield tests where they pin the same
// semantics).
#include "support.hpp"

#include <array>
#include <cstring>
#include <fcntl.h>
#include <ringlet/detail/io_awaiter.hpp>
#include <ringlet/wait_for.hpp>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;
using ringlet::TimeoutError;
using Log = std::vector<std::string>;

Task<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await ringlet::sleep(delay);
    co_return value;
}

/// Sleeps "forever"; on cancellation logs, cleans up with a co_await, logs and rethrows.
Task<int> slow_cleanup(Log& log) {
    bool cancelled = false;
    try {
        co_await ringlet::sleep(1h);
    } catch (const CancelledError&) {
        cancelled = true;
    }
    if (cancelled) {
        log.push_back("inner cancelled");
        co_await ringlet::sleep(5ms);
        log.push_back("inner cleaned up");
        throw CancelledError();
    }
    co_return 0;
}

/// Catches the cancellation and returns a value anyway.
Task<int> returns_when_cancelled(Log& log) {
    try {
        co_await ringlet::sleep(1h);
    } catch (const CancelledError&) {
        log.push_back("inner cancelled");
    }
    co_await ringlet::sleep(2ms);
    co_return 42;
}

Task<int> fail_after(std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    throw std::runtime_error("inner failure");
}

/// A pipe closed at scope exit.
struct Pipe {
    Pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC) == 0); }
    ~Pipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    int fds[2] = {-1, -1};
};

} // namespace

TEST_CASE("wait_for returns the value when the task finishes in time", "[wait_for]") {
    auto main = []() -> Task<> {
        auto start = EventLoop::current().time();
        int v = co_await ringlet::wait_for(value_after(10ms, 5), 1s);
        CHECK(v == 5);
        CHECK(EventLoop::current().time() - start == 10ms);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for throws TimeoutError after the inner task finished its cleanup", "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto start = EventLoop::current().time();
        try {
            co_await ringlet::wait_for(slow_cleanup(log), 20ms);
            FAIL("wait_for did not time out");
        } catch (const TimeoutError&) {
            log.push_back("TimeoutError");
        }
        CHECK(log == Log{"inner cancelled", "inner cleaned up", "TimeoutError"});
        CHECK(EventLoop::current().time() - start == 25ms);
        CHECK(EventLoop::current().stats().live_tasks == 1); // the inner task has finished
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for returns the inner value when the inner work catches the cancellation",
          "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        int v = co_await ringlet::wait_for(returns_when_cancelled(log), 10ms);
        CHECK(v == 42);
        CHECK(log == Log{"inner cancelled"});
        // The running task was not cancelled: it can still suspend.
        co_await ringlet::sleep(1ms);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for propagates the exception of the inner work", "[wait_for]") {
    auto main = []() -> Task<> {
        CHECK_THROWS_AS(co_await ringlet::wait_for(fail_after(5ms), 1s), std::runtime_error);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for with a non-positive timeout cancels unfinished work at once", "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto start = EventLoop::current().time();
        CHECK_THROWS_AS(co_await ringlet::wait_for(value_after(10ms, 1), 0s), TimeoutError);
        CHECK(EventLoop::current().time() == start);
        auto handle = ringlet::spawn(value_after(0ms, 9));
        co_await ringlet::sleep(1ms);
        REQUIRE(handle.done());
        // Finished work is returned even with a negative timeout (asyncio does the same).
        int v = co_await ringlet::wait_for(handle, -5ms);
        CHECK(v == 9);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for with a JoinHandle returns its value or cancels its task on timeout",
          "[wait_for]") {
    auto main = []() -> Task<> {
        auto quick = ringlet::spawn(value_after(5ms, 3), "quick");
        int v = co_await ringlet::wait_for(quick, 1s);
        CHECK(v == 3);

        Log log;
        auto slow = ringlet::spawn(slow_cleanup(log), "slow");
        CHECK_THROWS_AS(co_await ringlet::wait_for(slow, 10ms), TimeoutError);
        CHECK(slow.done());
        CHECK(slow.cancelled());
        CHECK(log == Log{"inner cancelled", "inner cleaned up"});
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for returns the value of a task that finishes in the iteration its timer fires",
          "[wait_for]") {
    // The task's timer and wait_for's share a deadline and fire in one iteration, the task's
    // first: the task finishes after the timer queued the waiter, which must run once only.
    auto main = []() -> Task<> {
        auto handle = ringlet::spawn(value_after(10ms, 7));
        co_await ringlet::yield_now(); // the task starts and arms its timer first
        int v = co_await ringlet::wait_for(handle, 10ms);
        CHECK(v == 7);
        CHECK(EventLoop::current().stats().timers_pending == 0);
        co_await ringlet::sleep(1ms);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for accepts any awaitable such as sleep", "[wait_for]") {
    auto main = []() -> Task<> {
        auto start = EventLoop::current().time();
        co_await ringlet::wait_for(ringlet::sleep(10ms), 1s);
        CHECK(EventLoop::current().time() - start == 10ms);
        CHECK_THROWS_AS(co_await ringlet::wait_for(ringlet::sleep(1h), 10ms), TimeoutError);
        CHECK(EventLoop::current().time() - start == 20ms);
        CHECK(EventLoop::current().stats().timers_pending == 0);
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for on a pipe read that times out throws TimeoutError", "[wait_for]") {
    auto main = []() -> Task<> {
        Pipe pipe;
        std::array<std::byte, 16> buffer{};
        auto started = std::chrono::steady_clock::now();
        CHECK_THROWS_AS(
            co_await ringlet::wait_for(ringlet::detail::read_some(pipe.fds[0], buffer), 20ms),
            TimeoutError);
        CHECK(std::chrono::steady_clock::now() - started >= 20ms);
        // The read was cancelled and its completion reaped before wait_for threw.
        CHECK(EventLoop::current().stats().io_in_flight == 0);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_real(main());
}

TEST_CASE("wait_for on a pipe read returns the bytes written in time", "[wait_for]") {
    auto main = []() -> Task<> {
        Pipe pipe;
        auto writer = [](int fd) -> Task<> {
            co_await ringlet::sleep(5ms);
            static constexpr char text[] = "hello";
            auto bytes = std::as_bytes(std::span(text, 5));
            std::int32_t n = co_await ringlet::detail::write_some(fd, bytes);
            CHECK(n == 5);
        };
        auto handle = ringlet::spawn(writer(pipe.fds[1]));
        std::array<std::byte, 16> buffer{};
        std::int32_t n =
            co_await ringlet::wait_for(ringlet::detail::read_some(pipe.fds[0], buffer), 10s);
        REQUIRE(n == 5);
        CHECK(std::memcmp(buffer.data(), "hello", 5) == 0);
        co_await handle;
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_real(main());
}

TEST_CASE("cancelling the task awaiting wait_for cancels the inner work and waits for it",
          "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            try {
                co_await ringlet::wait_for(slow_cleanup(log), 1h);
            } catch (const CancelledError&) {
                log.push_back("wait_for raised CancelledError");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(log));
        co_await ringlet::sleep(10ms);
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log == Log{"inner cancelled", "inner cleaned up", "wait_for raised CancelledError"});
        CHECK(EventLoop::current().stats().live_tasks == 1);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("shield keeps the inner task running when the awaiting task is cancelled", "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto inner = ringlet::spawn(value_after(50ms, 11), "inner");
        auto outer = [](ringlet::JoinHandle<int> inner, Log& log) -> Task<> {
            try {
                co_await ringlet::shield(inner);
            } catch (const CancelledError&) {
                log.push_back("outer cancelled");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(inner, log));
        co_await ringlet::sleep(10ms);
        auto cancelled_at = EventLoop::current().time();
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        // The awaiter gave up at once; the shielded task is untouched.
        CHECK(EventLoop::current().time() == cancelled_at);
        CHECK(log == Log{"outer cancelled"});
        CHECK_FALSE(inner.done());
        int v = co_await inner;
        CHECK(v == 11);
        CHECK_FALSE(inner.cancelled());
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("shield returns the result when the awaiting task is not cancelled", "[wait_for]") {
    auto main = []() -> Task<> {
        auto inner = ringlet::spawn(value_after(5ms, 4));
        int v = co_await ringlet::shield(inner);
        CHECK(v == 4);
        // Finished already: shield returns at once.
        auto done = ringlet::spawn(value_after(0ms, 8));
        co_await ringlet::sleep(1ms);
        int w = co_await ringlet::shield(done);
        CHECK(w == 8);
        auto failing = ringlet::spawn(fail_after(1ms));
        CHECK_THROWS_AS(co_await ringlet::shield(failing), std::runtime_error);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for delivers a value produced after the outer cancellation, which stays pending",
          "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            int v = co_await ringlet::wait_for(returns_when_cancelled(log), 1h);
            log.push_back("returned " + std::to_string(v));
            try {
                co_await ringlet::sleep(1ms);
            } catch (const CancelledError&) {
                log.push_back("cancelled at the next suspension point");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(log));
        co_await ringlet::sleep(10ms);
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log ==
              Log{"inner cancelled", "returned 42", "cancelled at the next suspension point"});
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for in a task with a pending cancellation cancels the inner work before it runs",
          "[wait_for]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            ringlet::current_task().cancel();
            co_await ringlet::wait_for(slow_cleanup(log), 1s);
            log.push_back("not cancelled");
        };
        auto handle = ringlet::spawn(outer(log));
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log.empty());
        CHECK(EventLoop::current().stats().live_tasks == 1);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for of a shielded task times out without cancelling the task", "[wait_for]") {
    auto main = []() -> Task<> {
        auto inner = ringlet::spawn(value_after(50ms, 6), "inner");
        CHECK_THROWS_AS(co_await ringlet::wait_for(ringlet::shield(inner), 10ms), TimeoutError);
        CHECK_FALSE(inner.done());
        int v = co_await inner;
        CHECK(v == 6);
        CHECK(EventLoop::current().stats().timers_pending == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("wait_for and shield on a handle another task awaits throw logic_error naming the task",
          "[wait_for]") {
    ringlet::test::run_virtual([]() -> Task<> {
        auto inner = ringlet::spawn(value_after(50ms, 6), "watched");
        auto awaiter = [](ringlet::JoinHandle<int> h) -> Task<int> { co_return co_await h; };
        auto first = ringlet::spawn(awaiter(inner));
        co_await ringlet::yield_now(); // `first` now awaits `inner`
        CHECK_THROWS_AS(co_await ringlet::wait_for(inner, 1s), std::logic_error);
        CHECK_THROWS_WITH(co_await ringlet::wait_for(inner, 1s),
                          Catch::Matchers::Contains("'watched' is already awaited"));
        CHECK_THROWS_AS(co_await ringlet::shield(inner), std::logic_error);
        CHECK_THROWS_WITH(co_await ringlet::shield(inner),
                          Catch::Matchers::Contains("'watched' is already awaited"));
        CHECK(co_await first == 6); // the first awaiter still gets its wake-up
        CHECK(co_await ringlet::wait_for(inner, 1s) == 6);
        CHECK(co_await ringlet::shield(inner) == 6);
    }());
}
