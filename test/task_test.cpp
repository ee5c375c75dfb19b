// Tests of Task<T>: laziness, result types (void, values, references, move-only), exception
// propagation through nested co_await, misuse (moved-from or twice-awaited Task) and deep
// chains of nested tasks resumed by symmetric transfer.
#include "support.hpp"

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

using namespace ringlet::test;
using ringlet::Task;

// Symmetric transfer must not grow the stack: clang emits it as a guaranteed tail call at every
// optimization level (ASan included) and g++ 12 does in optimized builds, where a chain of a
// million nested tasks runs in constant stack. g++ does not at -O0 or under ASan, where every
// level costs stack like a nested call. Measured with the default 8 MiB stack (a chain that
// completes synchronously, the case below that goes least deep):
//   g++ -O2 and clang -O0/-O2, with or without ASan+UBSan: 1,000,000 levels ok
//   g++ -O2 ASan+UBSan: ok at 5,554, overflow at 5,584 (ASan alone: overflow at 6,561)
//   g++ -O0: ok at 52,367, overflow at 52,397 (ASan+UBSan: overflow at 20,171)
// Those builds use a depth comfortably below their limit.
#if defined(__SANITIZE_ADDRESS__)
#define RINGLET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGLET_TEST_ASAN 1
#endif
#endif

#if defined(__clang__)
constexpr std::size_t chain_depth = 1'000'000;
#elif defined(RINGLET_TEST_ASAN)
constexpr std::size_t chain_depth = 2'000;
#elif !defined(__OPTIMIZE__)
constexpr std::size_t chain_depth = 10'000;
#else
constexpr std::size_t chain_depth = 1'000'000;
#endif

/// Lifetime: `counter` must outlive the task.
Task<> bump(int& counter) {
    ++counter;
    co_return;
}

Task<int> answer(int& counter) {
    ++counter;
    co_return 42;
}

/// Lifetime: `target` must outlive the task.
Task<std::string&> pick(std::string& target) {
    co_return target;
}

Task<std::unique_ptr<int>> make_owned(int value) {
    co_return std::make_unique<int>(value);
}

class CustomError : public std::runtime_error {
  public:
    CustomError(std::string what, int code) : std::runtime_error(std::move(what)), code(code) {}
    int code;
};

Task<int> throws_at_bottom() {
    throw CustomError("failed at the bottom", 7);
    co_return 0;
}

Task<int> middle() {
    Task<int> inner = throws_at_bottom();
    int v = co_await inner;
    co_return v + 1;
}

Task<int> top() {
    Task<int> inner = middle();
    int v = co_await inner;
    co_return v + 1;
}

Task<std::size_t> nested(std::size_t depth) {
    if (depth == 0)
        co_return 0;
    Task<std::size_t> next = nested(depth - 1);
    std::size_t below = co_await next;
    co_return below + 1;
}

Task<std::size_t> nested_sleeping(std::size_t depth) {
    if (depth == 0) {
        co_await ringlet::sleep(0ms);
        co_return 0;
    }
    Task<std::size_t> next = nested_sleeping(depth - 1);
    std::size_t below = co_await next;
    co_return below + 1;
}

} // namespace

TEST_CASE("a Task does not run its body until it is awaited", "[task]") {
    int counter = 0;
    {
        Task<> never = bump(counter);
        CHECK(never.valid());
    }
    CHECK(counter == 0); // created and destroyed without being awaited: the body never ran

    run_virtual([](int& c) -> Task<> {
        Task<> t = bump(c);
        CHECK(c == 0);
        co_await ringlet::yield_now();
        CHECK(c == 0); // not started by the loop either
        co_await t;
        CHECK(c == 1);
    }(counter));
    CHECK(counter == 1);
}

TEST_CASE("Task<void> completes and Task<int> yields its value", "[task]") {
    int counter = 0;
    int got = run_virtual([](int& c) -> Task<int> {
        co_await bump(c);
        int v = co_await answer(c);
        co_return v;
    }(counter));
    CHECK(got == 42);
    CHECK(counter == 2);
}

TEST_CASE("Task<T&> returns a reference to the very object the coroutine named", "[task]") {
    std::string outer = "outer";
    std::string* seen = nullptr;
    run_virtual([](std::string& target, std::string*& address) -> Task<> {
        std::string& ref = co_await pick(target);
        address = &ref;
        ref += " changed through the reference";
    }(outer, seen));
    CHECK(seen == &outer);
    CHECK(outer == "outer changed through the reference");
}

TEST_CASE("Task<std::unique_ptr<int>> moves a move-only result out", "[task]") {
    int value = run_virtual([]() -> Task<int> {
        Task<std::unique_ptr<int>> t = make_owned(17);
        std::unique_ptr<int> owned = co_await t;
        REQUIRE(owned != nullptr);
        co_return *owned;
    }());
    CHECK(value == 17);
}

TEST_CASE("an exception propagates through nested co_await with its type and message", "[task]") {
    bool caught = false;
    run_virtual([](bool& caught_it) -> Task<> {
        try {
            Task<int> t = top();
            (void)co_await t;
        } catch (const CustomError& e) {
            caught_it = true;
            CHECK(std::string(e.what()) == "failed at the bottom");
            CHECK(e.code == 7);
        }
    }(caught));
    CHECK(caught);

    // Uncaught, it leaves ringlet::run with its type too.
    CHECK_THROWS_AS(run_virtual(top()), CustomError);
    CHECK_THROWS_WITH(run_virtual(top()), "failed at the bottom");
}

TEST_CASE("awaiting a moved-from Task throws std::logic_error", "[task]") {
    int counter = 0;
    bool threw = false;
    run_virtual([](int& c, bool& threw_it) -> Task<> {
        Task<> t = bump(c);
        Task<> moved = std::move(t);
        CHECK_FALSE(t.valid());
        try {
            co_await t;
        } catch (const std::logic_error&) {
            threw_it = true;
        }
        co_await moved; // the moved-to Task still works
    }(counter, threw));
    CHECK(threw);
    CHECK(counter == 1);
}

TEST_CASE("awaiting a Task twice throws std::logic_error and does not rerun it", "[task]") {
    int counter = 0;
    bool threw = false;
    run_virtual([](int& c, bool& threw_it) -> Task<> {
        Task<int> t = answer(c);
        int first = co_await t;
        CHECK(first == 42);
        try {
            (void)co_await t;
        } catch (const std::logic_error& e) {
            threw_it = true;
            CHECK(std::string(e.what()).find("awaited twice") != std::string::npos);
        }
    }(counter, threw));
    CHECK(threw);
    CHECK(counter == 1);
}

TEST_CASE("a deep chain of nested tasks completes without overflowing the stack", "[task]") {
    CAPTURE(chain_depth);
    std::size_t depth = run_virtual(nested(chain_depth));
    CHECK(depth == chain_depth);
}

TEST_CASE("a deep chain of nested tasks that suspends at the bottom completes", "[task]") {
    CAPTURE(chain_depth);
    std::size_t depth = run_virtual(nested_sleeping(chain_depth));
    CHECK(depth == chain_depth);
}
