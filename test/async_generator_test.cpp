// Tests of ringlet::AsyncGenerator: co_await inside the body (sleep, Tasks), the end of the
// sequence, exceptions, the body running on the consumer's task, cancellation reaching the body
// (with its destructors run), destruction of a suspended body, and misuse errors.
#include "support.hpp"

#include <memory>
#include <optional>
#include <ringlet/async_generator.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::AsyncGenerator;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;
using Log = std::vector<std::string>;

static_assert(!std::is_copy_constructible_v<AsyncGenerator<int>>);
static_assert(std::is_nothrow_move_constructible_v<AsyncGenerator<int>>);

/// Records its destruction in `log` (RAII in a generator body).
struct Guard {
    Log& log;
    std::string name;
    ~Guard() { log.push_back("~" + name); }
};

Task<int> twice(int x) {
    co_await ringlet::sleep(1s);
    co_return 2 * x;
}

/// Yields 2, 4, ... 2n, one per second of loop time. Lifetime: `log` must outlive it.
AsyncGenerator<int> ticks(Log& log, int n) {
    Guard guard{log, "ticks"};
    for (int i = 1; i <= n; ++i) {
        int value = co_await twice(i); // awaits a Task, which sleeps
        log.push_back("yield " + std::to_string(value));
        co_yield value;
    }
    log.push_back("return");
}

/// Sleeps for an hour before its first value, logging a cancellation. Lifetime: `log`.
AsyncGenerator<int> slow(Log& log) {
    Guard guard{log, "slow"};
    try {
        co_await ringlet::sleep(1h);
    } catch (const CancelledError&) {
        log.push_back("body cancelled");
        throw;
    }
    co_yield 1;
}

} // namespace

TEST_CASE("AsyncGenerator's body co_awaits Tasks and sleeps between its yields",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto start = loop.time();
        auto gen = ticks(l, 3);
        CHECK(l.empty()); // lazy
        std::vector<int> values;
        while (auto v = co_await gen.next()) {
            l.push_back("got " + std::to_string(*v));
            values.push_back(*v);
            CHECK(values.size() <= 3);
        }
        CHECK(values == std::vector<int>{2, 4, 6});
        CHECK(loop.time() - start == 3s); // one sleep of one second per value
        CHECK(gen.done());
    }(log));
    CHECK(log ==
          Log{"yield 2", "got 2", "yield 4", "got 4", "yield 6", "got 6", "return", "~ticks"});
}

TEST_CASE("AsyncGenerator::next() returns nullopt at the end and on every later call",
          "[async_generator]") {
    run_virtual([]() -> Task<> {
        auto gen = []() -> AsyncGenerator<std::string> { co_yield "only"; }();
        auto first = co_await gen.next();
        REQUIRE(first.has_value());
        CHECK(*first == "only");
        for (int i = 0; i < 3; ++i) {
            auto again = co_await gen.next();
            CHECK_FALSE(again.has_value());
        }
    }());
}

TEST_CASE("an exception of the AsyncGenerator body propagates out of next(), once",
          "[async_generator]") {
    run_virtual([]() -> Task<> {
        auto gen = []() -> AsyncGenerator<int> {
            co_yield 1;
            co_await ringlet::sleep(10ms);
            throw std::runtime_error("generator body failed");
        }();
        auto first = co_await gen.next();
        CHECK(first == 1);
        std::string error;
        try {
            co_await gen.next();
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
        CHECK(error == "generator body failed");
        CHECK(gen.done());
        auto after = co_await gen.next();
        CHECK_FALSE(after.has_value());
    }());
}

TEST_CASE("the AsyncGenerator body runs on the consumer's task", "[async_generator]") {
    run_virtual([]() -> Task<> {
        std::vector<std::uint64_t> seen;
        auto consumer = [](std::vector<std::uint64_t>& out) -> Task<std::uint64_t> {
            auto gen = [](std::vector<std::uint64_t>& o) -> AsyncGenerator<int> {
                o.push_back(ringlet::current_task().id());
                co_await ringlet::sleep(1ms);
                o.push_back(ringlet::current_task().id());
                co_yield 0;
            }(out);
            auto v = co_await gen.next();
            CHECK(v == 0);
            co_return ringlet::current_task().id();
        };
        auto handle = ringlet::spawn(consumer(seen));
        std::uint64_t consumer_id = co_await handle;
        CHECK(seen == std::vector<std::uint64_t>{consumer_id, consumer_id});
    }());
}

TEST_CASE("cancelling the consumer cancels the AsyncGenerator body at its sleep; destructors "
          "run and the consumer sees CancelledError",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto consumer = [](Log& lg) -> Task<> {
            auto gen = slow(lg);
            try {
                auto v = co_await gen.next();
                lg.push_back("consumer got a value");
                (void)v;
            } catch (const CancelledError&) {
                lg.push_back("consumer cancelled");
                throw;
            }
        };
        auto handle = ringlet::spawn(consumer(l));
        co_await ringlet::sleep(1s); // the consumer is now in next(), the body in its sleep
        CHECK(l.empty());
        CHECK(handle.state() == "awaiting sleep");
        CHECK(handle.cancel());
        bool cancelled = false;
        try {
            co_await handle;
        } catch (const CancelledError&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(handle.cancelled());
    }(log));
    // The body's guard ran while CancelledError unwound it, before the consumer saw it.
    CHECK(log == Log{"body cancelled", "~slow", "consumer cancelled"});
}

TEST_CASE("an AsyncGenerator body may catch the cancellation, clean up with co_await and end",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto consumer = [](Log& lg) -> Task<int> {
            auto gen = [](Log& g) -> AsyncGenerator<int> {
                Guard guard{g, "body"};
                bool cancelled = false;
                try {
                    co_await ringlet::sleep(1h);
                } catch (const CancelledError&) {
                    cancelled = true; // no co_await inside a catch block (g++ 12)
                }
                if (cancelled) {
                    co_await ringlet::sleep(5ms); // asynchronous clean-up
                    g.push_back("cleaned up");
                    co_return;
                }
                co_yield 1;
            }(lg);
            int count = 0;
            while (auto v = co_await gen.next())
                ++count;
            lg.push_back("consumer saw the end");
            co_return count;
        };
        auto handle = ringlet::spawn(consumer(l));
        co_await ringlet::sleep(1s);
        handle.cancel();
        int count = co_await handle; // the consumer finished normally
        CHECK(count == 0);
        CHECK_FALSE(handle.cancelled());
    }(log));
    CHECK(log == Log{"cleaned up", "~body", "consumer saw the end"});
}

TEST_CASE("destroying an AsyncGenerator suspended at co_yield runs its body's destructors",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        {
            auto gen = ticks(l, 100);
            auto v = co_await gen.next();
            CHECK(v == 2);
            l.push_back("consumer stops");
        }
        l.push_back("after scope");
    }(log));
    CHECK(log == Log{"yield 2", "consumer stops", "~ticks", "after scope"});
}

TEST_CASE("a consumer still in next() when run() ends is cancelled there and its generator "
          "destroyed",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto consumer = [](Log& lg) -> Task<> {
            auto gen = slow(lg);
            auto v = co_await gen.next();
            (void)v;
            lg.push_back("unreachable");
        };
        ringlet::spawn(consumer(l)); // detached
        co_await ringlet::sleep(1s);
        l.push_back("main returns");
    }(log));
    CHECK(log == Log{"main returns", "body cancelled", "~slow"});
}

TEST_CASE("two concurrent next() calls on one AsyncGenerator: the second throws "
          "std::logic_error",
          "[async_generator]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto gen = ticks(l, 2);
        auto first = [](AsyncGenerator<int>& g) -> Task<std::optional<int>> {
            std::optional<int> v = co_await g.next();
            co_return v;
        };
        auto handle = ringlet::spawn(first(gen)); // will sit in the body's sleep
        co_await ringlet::sleep(100ms);
        std::string error;
        try {
            co_await gen.next();
        } catch (const std::logic_error& e) {
            error = e.what();
        }
        CHECK_THAT(error, Catch::Contains("another next() of the same generator is in progress"));
        auto value = co_await handle; // the first next() is unaffected
        CHECK(value == 2);
        auto second = co_await gen.next(); // and the generator is usable again
        CHECK(second == 4);
    }(log));
}

TEST_CASE("next() on an empty or moved-from AsyncGenerator throws std::logic_error",
          "[async_generator]") {
    run_virtual([]() -> Task<> {
        AsyncGenerator<int> empty;
        CHECK(empty.done());
        bool threw = false;
        try {
            co_await empty.next();
        } catch (const std::logic_error&) {
            threw = true;
        }
        CHECK(threw);

        auto a = []() -> AsyncGenerator<int> { co_yield 7; }();
        AsyncGenerator<int> b = std::move(a);
        threw = false;
        try {
            co_await a.next();
        } catch (const std::logic_error&) {
            threw = true;
        }
        CHECK(threw);
        auto v = co_await b.next();
        CHECK(v == 7);
    }());
}

TEST_CASE("AsyncGenerator moves its values out, so move-only types work", "[async_generator]") {
    run_virtual([]() -> Task<> {
        auto gen = []() -> AsyncGenerator<std::unique_ptr<int>> {
            for (int i = 1; i <= 3; ++i) {
                co_await ringlet::yield_now();
                co_yield std::make_unique<int>(i);
            }
        }();
        int sum = 0;
        int rounds = 0;
        while (auto p = co_await gen.next()) {
            sum += **p;
            REQUIRE(++rounds <= 3);
        }
        CHECK(sum == 6);
    }());
}
