// Tests of ringlet::Generator: lazy range-for, next() and StopIteration, the send-capable form
// (priming, sent values, errors), exceptions from the body, destruction of a suspended body, and
// misuse errors.
#include "support.hpp"

#include <memory>
#include <optional>
#include <ranges>
#include <ringlet/generator.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

using ringlet::Generator;
using ringlet::StopIteration;
using Events = std::vector<std::string>;

// An input range (clang 14 cannot instantiate libstdc++ 12's views over it, so no view test).
static_assert(std::ranges::input_range<Generator<int>>);
static_assert(!std::is_copy_constructible_v<Generator<int>>);
static_assert(!std::is_copy_assignable_v<Generator<int>>);
static_assert(std::is_nothrow_move_constructible_v<Generator<int>>);

/// Records its destruction in `events` (RAII in a generator body).
struct Guard {
    Events& events;
    std::string name;
    ~Guard() { events.push_back("~" + name); }
};

Generator<int> counted(Events& events, int n) {
    Guard guard{events, "counted"};
    for (int i = 1; i <= n; ++i) {
        events.push_back("yield " + std::to_string(i));
        co_yield i;
    }
    events.push_back("return");
}

Generator<int> throws_after(int n) {
    for (int i = 1; i <= n; ++i)
        co_yield i;
    throw std::runtime_error("body failed after " + std::to_string(n));
}

Generator<std::string, int> accumulator(Events& events) {
    int total = 0;
    for (;;) {
        int added = co_yield "total " + std::to_string(total);
        events.push_back("got " + std::to_string(added));
        if (added < 0)
            co_return;
        total += added;
    }
}

} // namespace

TEST_CASE("Generator is lazy and yields its values in order in range-for", "[generator]") {
    Events events;
    auto gen = counted(events, 3);
    CHECK(events.empty()); // nothing runs before begin()
    CHECK_FALSE(gen.started());
    std::vector<int> seen;
    for (int v : gen) {
        events.push_back("loop " + std::to_string(v));
        seen.push_back(v);
    }
    CHECK(seen == std::vector<int>{1, 2, 3});
    CHECK(events == Events{"yield 1", "loop 1", "yield 2", "loop 2", "yield 3", "loop 3", "return",
                           "~counted"});
    CHECK(gen.done());
}

TEST_CASE("Generator with no co_yield gives an empty range", "[generator]") {
    Events events;
    auto gen = counted(events, 0);
    int iterations = 0;
    for (int v : gen) {
        (void)v;
        ++iterations;
    }
    CHECK(iterations == 0);
    CHECK(events == Events{"return", "~counted"});
    // A finished generator is an empty range again.
    for (int v : gen) {
        (void)v;
        ++iterations;
    }
    CHECK(iterations == 0);
}

TEST_CASE("Generator rethrows the body's exception from begin() and from operator++",
          "[generator]") {
    SECTION("before the first co_yield: from begin()") {
        auto gen = throws_after(0);
        CHECK_THROWS_WITH(gen.begin(), "body failed after 0");
        CHECK(gen.done());
    }
    SECTION("after two values: from the increment") {
        auto gen = throws_after(2);
        std::vector<int> seen;
        auto it = gen.begin();
        REQUIRE(it != gen.end());
        seen.push_back(*it);
        ++it;
        seen.push_back(*it);
        CHECK_THROWS_AS(++it, std::runtime_error);
        CHECK(seen == std::vector<int>{1, 2});
        CHECK(gen.done());
        CHECK_THROWS_AS(gen.next(), StopIteration); // finished after the exception
    }
    SECTION("out of a range-for") {
        auto gen = throws_after(3);
        int sum = 0;
        auto loop = [&] {
            for (int v : gen)
                sum += v;
        };
        CHECK_THROWS_WITH(loop(), "body failed after 3");
        CHECK(sum == 6);
    }
}

TEST_CASE("Generator::next() returns the values, then throws StopIteration on every call",
          "[generator]") {
    Events events;
    auto gen = counted(events, 2);
    CHECK(gen.next() == 1);
    CHECK(gen.started());
    CHECK(gen.next() == 2);
    CHECK_FALSE(gen.done());
    CHECK_THROWS_AS(gen.next(), StopIteration); // the body returns during this call
    CHECK(gen.done());
    CHECK_THROWS_AS(gen.next(), StopIteration); // and had returned before this one
    CHECK(events == Events{"yield 1", "yield 2", "return", "~counted"});
}

TEST_CASE("next() and range-for drive the same frame", "[generator]") {
    Events events;
    auto gen = counted(events, 4);
    CHECK(gen.next() == 1);
    std::vector<int> rest;
    for (int v : gen)
        rest.push_back(v);
    CHECK(rest == std::vector<int>{2, 3, 4});
}

TEST_CASE("send-capable Generator: co_yield evaluates to the value passed to send()",
          "[generator]") {
    Events events;
    auto gen = accumulator(events);
    CHECK(gen.next() == "total 0"); // priming: runs to the first co_yield
    CHECK(events.empty());
    CHECK(gen.send(5) == "total 5");
    CHECK(gen.send(10) == "total 15");
    CHECK(events == Events{"got 5", "got 10"});
    CHECK_THROWS_AS(gen.send(-1), StopIteration); // the body returns after receiving -1
    CHECK(events.back() == "got -1");
    CHECK(gen.done());
}

TEST_CASE("send() to a just-started Generator throws std::logic_error and does not run it",
          "[generator]") {
    Events events;
    auto gen = accumulator(events);
    CHECK_THROWS_MATCHES(
        gen.send(1), std::logic_error,
        Catch::Matchers::Message("can't send a value to a just-started ringlet::Generator: call "
                                 "next() first to run it to its first co_yield"));
    CHECK_FALSE(gen.started());
    CHECK(gen.next() == "total 0"); // still usable: the prime works afterwards
    CHECK(gen.send(2) == "total 2");
}

TEST_CASE("send() and next() on a finished Generator throw StopIteration", "[generator]") {
    Events events;
    auto gen = accumulator(events);
    gen.next();
    CHECK_THROWS_AS(gen.send(-1), StopIteration);
    CHECK_THROWS_AS(gen.send(3), StopIteration);
    CHECK_THROWS_AS(gen.next(), StopIteration);
    CHECK(events == Events{"got -1"}); // the body did not run again
    CHECK(std::string(StopIteration().what()).find("finished") != std::string::npos);
}

TEST_CASE("next() on a started send-capable Generator sends Send{} (Python's None)",
          "[generator]") {
    std::vector<std::optional<int>> received;
    auto gen = [](std::vector<std::optional<int>>& out) -> Generator<int, std::optional<int>> {
        for (int i = 0; i < 3; ++i)
            out.push_back(co_yield i);
    }(received);
    CHECK(gen.next() == 0);
    CHECK(gen.send(7) == 1);
    CHECK(gen.next() == 2);
    CHECK_THROWS_AS(gen.send(8), StopIteration);
    CHECK(received == std::vector<std::optional<int>>{7, std::nullopt, 8});
}

TEST_CASE("a send-capable Generator yielding std::monostate is Python's bare `yield`",
          "[generator]") {
    std::vector<int> eaten;
    auto consumer = [](std::vector<int>& out) -> Generator<std::monostate, int> {
        for (;;)
            out.push_back(co_yield {});
    }(eaten);
    consumer.next();
    for (int n = 1; n <= 3; ++n)
        consumer.send(n * 10);
    CHECK(eaten == std::vector<int>{10, 20, 30});
}

TEST_CASE("destroying a suspended Generator runs the destructors of its body", "[generator]") {
    Events events;
    {
        auto gen = counted(events, 10);
        for (int v : gen)
            if (v == 2)
                break;
        CHECK(events == Events{"yield 1", "yield 2"});
    }
    CHECK(events == Events{"yield 1", "yield 2", "~counted"});

    // A never-started generator has run nothing and destroys nothing of its body.
    events.clear();
    { auto unused = counted(events, 10); }
    CHECK(events.empty());
}

TEST_CASE("a moved Generator continues where it was; the moved-from one throws logic_error",
          "[generator]") {
    Events events;
    auto a = counted(events, 3);
    CHECK(a.next() == 1);
    Generator<int> b = std::move(a);
    CHECK(b.next() == 2);
    CHECK(a.done());
    CHECK_THROWS_AS(a.next(), std::logic_error);
    CHECK_THROWS_AS(a.begin(), std::logic_error);
    a = std::move(b); // move assignment back
    CHECK(a.next() == 3);
    Generator<int> empty;
    CHECK_THROWS_WITH(empty.next(), "use of an empty or moved-from ringlet::Generator");
}

TEST_CASE("resuming a Generator from its own body throws std::logic_error", "[generator]") {
    Generator<int>* self = nullptr;
    std::string error;
    auto gen = [](Generator<int>*& me, std::string& err) -> Generator<int> {
        co_yield 1;
        try {
            me->next();
        } catch (const std::logic_error& e) {
            err = e.what();
        }
        co_yield 2;
    }(self, error);
    self = &gen;
    CHECK(gen.next() == 1);
    CHECK(gen.next() == 2);
    CHECK_THAT(error, Catch::Contains("already executing"));
}

TEST_CASE("Generator values are moved out, so move-only types work", "[generator]") {
    auto gen = []() -> Generator<std::unique_ptr<int>> {
        for (int i = 0; i < 3; ++i)
            co_yield std::make_unique<int>(i);
    }();
    int sum = 0;
    for (std::unique_ptr<int>& p : gen)
        sum += *p;
    CHECK(sum == 3);
    auto gen2 = []() -> Generator<std::unique_ptr<int>> { co_yield std::make_unique<int>(9); }();
    std::unique_ptr<int> taken = gen2.next();
    CHECK(*taken == 9);
}
