// gather and gather_settled (asyncio's test_gather where it pins the same semantics).
#include "support.hpp"

#include <ringlet/gather.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;
using Log = std::vector<std::string>;

Task<int> value_after(Log& log, std::string name, std::chrono::milliseconds delay, int value) {
    co_await ringlet::sleep(delay);
    log.push_back(name);
    co_return value;
}

Task<std::string> text_after(Log& log, std::string name, std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    log.push_back(name);
    co_return name;
}

Task<> nothing_after(Log& log, std::string name, std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    log.push_back(name);
}

Task<int> fail_after(Log& log, std::string name, std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    log.push_back(name + " throws");
    throw std::runtime_error(name);
}

/// Sleeps "forever"; on cancellation logs, cleans up with a co_await, logs, and rethrows.
Task<int> slow_cleanup(Log& log, std::string name) {
    bool cancelled = false;
    try {
        co_await ringlet::sleep(1h);
    } catch (const CancelledError&) {
        cancelled = true;
    }
    if (cancelled) {
        log.push_back(name + " cancelled");
        co_await ringlet::sleep(5ms);
        log.push_back(name + " cleaned up");
        throw CancelledError();
    }
    log.push_back(name + " finished");
    co_return 0;
}

Task<std::string> own_name() {
    co_await ringlet::yield_now();
    co_return ringlet::current_task().name();
}

Task<int> cancel_self() {
    ringlet::current_task().cancel();
    co_await ringlet::yield_now();
    co_return 1;
}

} // namespace

TEST_CASE("gather returns results in argument order while children complete in another order",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto start = EventLoop::current().time();
        auto [a, b, c] =
            co_await ringlet::gather(value_after(log, "a", 30ms, 1), text_after(log, "b", 10ms),
                                     value_after(log, "c", 20ms, 3));
        CHECK(a == 1);
        CHECK(b == "b");
        CHECK(c == 3);
        CHECK(log == Log{"b", "c", "a"});
        // Concurrent: the slowest child sets the pace, not the sum.
        CHECK(EventLoop::current().time() - start == 30ms);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather of a tuple gives std::monostate for a void child", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto result = co_await ringlet::gather(nothing_after(log, "void", 10ms),
                                               value_after(log, "int", 5ms, 7));
        static_assert(std::is_same_v<decltype(result), std::tuple<std::monostate, int>>);
        CHECK(std::get<1>(result) == 7);
        CHECK(log == Log{"int", "void"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather of a vector returns the results in the order of the vector", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        std::vector<Task<int>> tasks;
        for (int i = 0; i < 5; ++i)
            tasks.push_back(
                value_after(log, std::to_string(i), std::chrono::milliseconds(50 - 10 * i), i * i));
        std::vector<int> results = co_await ringlet::gather(std::move(tasks));
        CHECK(results == std::vector<int>{0, 1, 4, 9, 16});
        CHECK(log == Log{"4", "3", "2", "1", "0"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather of a vector of void tasks waits for all of them", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        std::vector<Task<>> tasks;
        tasks.push_back(nothing_after(log, "slow", 20ms));
        tasks.push_back(nothing_after(log, "fast", 10ms));
        co_await ringlet::gather(std::move(tasks));
        CHECK(log == Log{"fast", "slow"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather of an empty vector returns an empty result at once", "[gather]") {
    auto main = []() -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto start = loop.time();
        auto iterations = loop.stats().iterations;
        std::vector<int> results = co_await ringlet::gather(std::vector<Task<int>>{});
        CHECK(results.empty());
        CHECK(loop.stats().iterations == iterations);
        CHECK(loop.time() == start);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather names its children after the running task", "[gather]") {
    auto main = []() -> Task<> {
        auto [first, second] = co_await ringlet::gather(own_name(), own_name());
        CHECK(first == "main.gather[0]");
        CHECK(second == "main.gather[1]");
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather cancels siblings when one child fails and waits for their cleanup", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        int unretrieved = 0;
        EventLoop::current().set_exception_handler(
            [&](EventLoop&, const ringlet::ExceptionContext&) { ++unretrieved; });
        auto start = EventLoop::current().time();
        try {
            co_await ringlet::gather(slow_cleanup(log, "x"), fail_after(log, "boom", 10ms),
                                     slow_cleanup(log, "y"));
            FAIL("gather did not throw");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "boom");
            log.push_back("gather threw");
        }
        CHECK(log == Log{"boom throws", "x cancelled", "y cancelled", "x cleaned up",
                         "y cleaned up", "gather threw"});
        CHECK(EventLoop::current().time() - start == 15ms);
        CHECK(EventLoop::current().stats().live_tasks == 1); // only main
        CHECK(unretrieved == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather rethrows the first exception when a cancelled sibling fails too", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        int unretrieved = 0;
        EventLoop::current().set_exception_handler(
            [&](EventLoop&, const ringlet::ExceptionContext&) { ++unretrieved; });
        auto second = [](Log& log) -> Task<int> {
            bool cancelled = false;
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                cancelled = true;
            }
            if (cancelled) {
                co_await ringlet::sleep(1ms);
                log.push_back("second throws");
                throw std::logic_error("second");
            }
            co_return 0;
        };
        try {
            co_await ringlet::gather(fail_after(log, "first", 10ms), second(log));
            FAIL("gather did not throw");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "first");
        }
        CHECK(log == Log{"first throws", "second throws"});
        CHECK(unretrieved == 0); // the later exception is retrieved by gather, not reported
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("cancelling the task awaiting gather cancels all children and waits for them",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            try {
                co_await ringlet::gather(slow_cleanup(log, "a"), slow_cleanup(log, "b"));
            } catch (const CancelledError&) {
                log.push_back("gather raised CancelledError");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(log), "outer");
        co_await ringlet::sleep(10ms);
        CHECK(EventLoop::current().stats().live_tasks == 4);
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(handle.cancelled());
        CHECK(log == Log{"a cancelled", "b cancelled", "a cleaned up", "b cleaned up",
                         "gather raised CancelledError"});
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather treats a child cancelled from outside as failed with CancelledError",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        try {
            co_await ringlet::gather(slow_cleanup(log, "sibling"), cancel_self());
            FAIL("gather did not throw");
        } catch (const CancelledError&) {
            log.push_back("CancelledError");
        }
        CHECK(log == Log{"sibling cancelled", "sibling cleaned up", "CancelledError"});
        // The CancelledError came from the child: the running task can still suspend.
        co_await ringlet::sleep(1ms);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather with an empty Task throws std::logic_error and the other child never runs",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        CHECK_THROWS_AS(co_await ringlet::gather(value_after(log, "ok", 1ms, 1), Task<int>{}),
                        std::logic_error);
        CHECK(log.empty());
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather_settled returns values and exceptions in argument order", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto [a, b, c, d] = co_await ringlet::gather_settled(
            value_after(log, "a", 20ms, 1), fail_after(log, "b", 10ms), cancel_self(),
            nothing_after(log, "d", 30ms));
        REQUIRE(a.has_value());
        CHECK(a.value() == 1);
        CHECK_FALSE(a.exception());
        REQUIRE_FALSE(b.has_value());
        CHECK_FALSE(b.cancelled());
        CHECK_THROWS_AS(std::rethrow_exception(b.exception()), std::runtime_error);
        CHECK_THROWS_AS(b.value(), std::runtime_error);
        REQUIRE_FALSE(c.has_value());
        CHECK(c.cancelled());
        CHECK_THROWS_AS(std::rethrow_exception(c.exception()), CancelledError);
        CHECK(d.has_value());
        static_assert(std::is_same_v<decltype(d.value()), std::monostate&>);
        // A failure does not cancel the siblings.
        CHECK(log == Log{"b throws", "a", "d"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather_settled of a vector returns one outcome per task", "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        std::vector<Task<int>> tasks;
        tasks.push_back(value_after(log, "a", 10ms, 10));
        tasks.push_back(fail_after(log, "b", 5ms));
        tasks.push_back(Task<int>{}); // cannot be spawned: its outcome is the logic_error
        std::vector<ringlet::Settled<int>> results =
            co_await ringlet::gather_settled(std::move(tasks));
        REQUIRE(results.size() == 3);
        CHECK(results[0].value() == 10);
        CHECK_THROWS_AS(results[1].value(), std::runtime_error);
        CHECK_THROWS_AS(results[2].value(), std::logic_error);
        CHECK(log == Log{"b throws", "a"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("cancelling the task awaiting gather_settled raises CancelledError after the children",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            auto results = co_await ringlet::gather_settled(slow_cleanup(log, "a"),
                                                            value_after(log, "b", 1ms, 2));
            log.push_back("returned");
            (void)results;
        };
        auto handle = ringlet::spawn(outer(log));
        co_await ringlet::sleep(10ms);
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log == Log{"b", "a cancelled", "a cleaned up"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("gather in a task with a pending cancellation cancels the children before they run",
          "[gather]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            ringlet::current_task().cancel();
            try {
                co_await ringlet::gather(value_after(log, "a", 1ms, 1),
                                         nothing_after(log, "b", 1ms));
            } catch (const CancelledError&) {
                log.push_back("CancelledError");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(log));
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log == Log{"CancelledError"});
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}
