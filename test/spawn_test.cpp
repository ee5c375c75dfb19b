// Tests of spawn, JoinHandle, TaskHandle, current_task, all_tasks and ringlet::run: when a
// spawned task starts, what awaiting its handle yields, detached tasks, the reporting of
// exceptions nobody retrieved, and the cancellation of leftover tasks when run() returns.
#include "support.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::ExceptionContext;
using ringlet::JoinHandle;
using ringlet::Task;
using ringlet::TaskHandle;

/// Counts the loop's exception handler calls. Install it from inside the loop.
struct ReportLog {
    int calls = 0;
    std::vector<std::string> task_names;
    std::vector<std::string> messages;
    std::vector<std::string> whats;

    void install() {
        EventLoop::current().set_exception_handler(
            [this](EventLoop&, const ExceptionContext& context) {
                ++calls;
                task_names.push_back(context.task_name);
                messages.push_back(context.message);
                try {
                    std::rethrow_exception(context.exception);
                } catch (const std::exception& e) {
                    whats.emplace_back(e.what());
                } catch (...) {
                    whats.emplace_back("?");
                }
            });
    }
};

Task<int> value_after_yield(int v) {
    co_await ringlet::yield_now();
    co_return v;
}

Task<int> fails_after_yield(std::string message) {
    co_await ringlet::yield_now();
    throw std::runtime_error(message);
}

std::vector<std::string> two_words() {
    return {"a", "b"};
}

Task<std::vector<std::string>> words_after_yield() {
    co_await ringlet::yield_now();
    co_return two_words();
}

Task<> sleeps_forever() {
    co_await ringlet::sleep(24h);
}

/// Lifetime: `flag` must outlive the task.
Task<> set_flag(bool& flag) {
    flag = true;
    co_return;
}

/// Lifetime: `steps` must outlive the task.
Task<> counts_steps(int& steps, int total) {
    for (int i = 0; i < total; ++i) {
        co_await ringlet::sleep(10ms);
        ++steps;
    }
}

} // namespace

TEST_CASE("a spawned task starts on the next loop iteration and not inline", "[spawn]") {
    run_virtual([]() -> Task<> {
        bool started = false;
        auto handle = ringlet::spawn(set_flag(started));
        CHECK_FALSE(started);
        CHECK_FALSE(handle.done());
        co_await ringlet::yield_now();
        CHECK(started);
        CHECK(handle.done());
    }());
}

TEST_CASE("co_await on a JoinHandle yields the task's value", "[spawn]") {
    int got = run_virtual([]() -> Task<int> {
        auto handle = ringlet::spawn(value_after_yield(5));
        int v = co_await handle;
        co_return v;
    }());
    CHECK(got == 5);
}

TEST_CASE("co_await on a JoinHandle rethrows the task's exception", "[spawn]") {
    std::string what;
    run_virtual([](std::string& out) -> Task<> {
        auto handle = ringlet::spawn(fails_after_yield("child failed"));
        try {
            (void)co_await handle;
        } catch (const std::runtime_error& e) {
            out = e.what();
        }
    }(what));
    CHECK(what == "child failed");
}

TEST_CASE("done and cancelled and name describe a spawned task", "[spawn]") {
    run_virtual([]() -> Task<> {
        auto finished = ringlet::spawn(value_after_yield(1), "worker");
        auto cancelled = ringlet::spawn(sleeps_forever());
        CHECK(finished.name() == "worker");
        CHECK(cancelled.name() == "Task-" + std::to_string(cancelled.id()));
        CHECK_FALSE(finished.done());
        CHECK_FALSE(finished.cancelled());

        int v = co_await finished;
        CHECK(v == 1);
        CHECK(finished.done());
        CHECK_FALSE(finished.cancelled());
        CHECK(finished.result() == 1);

        CHECK(cancelled.cancel());
        try {
            co_await cancelled;
            FAIL("awaiting a cancelled task must throw CancelledError");
        } catch (const CancelledError&) {
        }
        CHECK(cancelled.done());
        CHECK(cancelled.cancelled());
    }());
}

TEST_CASE("default task names are Task-N with distinct numbers", "[spawn]") {
    run_virtual([]() -> Task<> {
        auto a = ringlet::spawn(value_after_yield(1));
        auto b = ringlet::spawn(value_after_yield(2));
        CHECK(a.name().rfind("Task-", 0) == 0);
        CHECK(b.name().rfind("Task-", 0) == 0);
        CHECK(a.name() != b.name());
        (void)co_await a;
        (void)co_await b;
    }());
}

TEST_CASE("a detached task keeps running to completion", "[spawn]") {
    int steps = 0;
    run_virtual([](int& s) -> Task<> {
        ringlet::spawn(counts_steps(s, 3)); // handle dropped at once
        CHECK(EventLoop::current().stats().live_tasks == 2);
        co_await ringlet::sleep(1s);
        CHECK(EventLoop::current().stats().live_tasks == 1);
    }(steps));
    CHECK(steps == 3);
}

TEST_CASE("a detached task's exception reaches the exception handler once with its name",
          "[spawn]") {
    ReportLog log;
    run_virtual([](ReportLog& l) -> Task<> {
        l.install();
        ringlet::spawn(fails_after_yield("nobody listens"), "orphan");
        for (int i = 0; i < 5; ++i)
            co_await ringlet::yield_now();
        CHECK(l.calls == 1);
    }(log));
    REQUIRE(log.calls == 1);
    CHECK(log.task_names[0] == "orphan");
    CHECK(log.whats[0] == "nobody listens");
    CHECK(log.messages[0].find("never retrieved") != std::string::npos);
}

TEST_CASE("a JoinHandle dropped after its task failed unobserved reports exactly once", "[spawn]") {
    ReportLog log;
    run_virtual([](ReportLog& l) -> Task<> {
        l.install();
        {
            auto handle = ringlet::spawn(fails_after_yield("dropped"), "failing");
            for (int i = 0; i < 3; ++i)
                co_await ringlet::yield_now();
            CHECK(handle.done());
            CHECK(l.calls == 0); // the handle could still retrieve it
        }
        CHECK(l.calls == 1);
        co_await ringlet::yield_now();
    }(log));
    REQUIRE(log.calls == 1);
    CHECK(log.task_names[0] == "failing");
    CHECK(log.whats[0] == "dropped");
}

TEST_CASE("an exception retrieved by awaiting the JoinHandle is not reported", "[spawn]") {
    ReportLog log;
    run_virtual([](ReportLog& l) -> Task<> {
        l.install();
        auto awaited = ringlet::spawn(fails_after_yield("seen"));
        try {
            (void)co_await awaited;
        } catch (const std::runtime_error&) {
        }
        auto via_result = ringlet::spawn(fails_after_yield("seen too"));
        for (int i = 0; i < 3; ++i)
            co_await ringlet::yield_now();
        CHECK_THROWS_AS(via_result.result(), std::runtime_error);
    }(log));
    CHECK(log.calls == 0);
}

TEST_CASE("cancelled tasks are not reported to the exception handler", "[spawn]") {
    ReportLog log;
    run_virtual([](ReportLog& l) -> Task<> {
        l.install();
        {
            auto handle = ringlet::spawn(sleeps_forever());
            co_await ringlet::yield_now();
            handle.cancel();
        }
        auto never_started = ringlet::spawn(sleeps_forever());
        never_started.cancel();
        ringlet::spawn(sleeps_forever()); // left for run() to cancel
        co_await ringlet::sleep(1s);
    }(log));
    CHECK(log.calls == 0);
}

TEST_CASE("ringlet::run returns the value of main", "[spawn]") {
    CHECK(run_virtual(value_after_yield(42)) == 42);
    CHECK(run_real(value_after_yield(7)) == 7);
}

TEST_CASE("ringlet::run cancels tasks still alive at the end and waits for their cleanup",
          "[spawn]") {
    struct Seen {
        bool cleanup_started = false;
        bool cleanup_finished = false;
        TaskHandle lingering;
        TaskHandle sleeper;
    } seen;
    auto lingering = [](Seen& s) -> Task<> {
        try {
            co_await ringlet::sleep(24h);
        } catch (const CancelledError&) {
            s.cleanup_started = true;
        }
        co_await ringlet::sleep(50ms); // cleanup that suspends again
        s.cleanup_finished = true;
        throw CancelledError();
    };
    int result = run_virtual([](Seen& s, auto make) -> Task<int> {
        s.lingering = ringlet::spawn(make(s), "lingering");
        s.sleeper = ringlet::spawn(sleeps_forever(), "sleeper");
        co_await ringlet::yield_now();
        CHECK(EventLoop::current().stats().live_tasks == 3);
        co_return 3;
    }(seen, lingering));
    CHECK(result == 3);
    CHECK(seen.cleanup_started);
    CHECK(seen.cleanup_finished);
    CHECK(seen.lingering.done());
    CHECK(seen.lingering.cancelled());
    CHECK(seen.sleeper.cancelled());
}

TEST_CASE("current_task names the running task and is empty outside any task", "[spawn]") {
    CHECK_FALSE(ringlet::current_task());
    struct Seen {
        std::string main_name;
        std::string child_name;
        bool child_matches_handle = false;
        bool empty_in_callback = false;
    } seen;
    run_virtual([](Seen& s) -> Task<> {
        s.main_name = ringlet::current_task().name();
        auto child = [](Seen& s2) -> Task<ringlet::TaskHandle> {
            s2.child_name = ringlet::current_task().name();
            co_return ringlet::current_task();
        };
        auto handle = ringlet::spawn(child(s), "child");
        TaskHandle inside = co_await handle;
        s.child_matches_handle = inside == handle;
        EventLoop::current().call_soon([&s] { s.empty_in_callback = !ringlet::current_task(); });
        co_await ringlet::yield_now();
        co_await ringlet::yield_now();
    }(seen));
    CHECK(seen.main_name == "main");
    CHECK(seen.child_name == "child");
    CHECK(seen.child_matches_handle);
    CHECK(seen.empty_in_callback);
    CHECK_FALSE(ringlet::current_task());
}

TEST_CASE("all_tasks lists the unfinished tasks oldest first", "[spawn]") {
    std::vector<std::string> names;
    run_virtual([](std::vector<std::string>& out) -> Task<> {
        auto a = ringlet::spawn(sleeps_forever(), "a");
        auto quick = ringlet::spawn(value_after_yield(0), "quick");
        auto b = ringlet::spawn(sleeps_forever(), "b");
        for (int i = 0; i < 3; ++i)
            co_await ringlet::yield_now();
        CHECK(quick.done());
        for (const TaskHandle& t : ringlet::all_tasks())
            out.push_back(t.name());
        a.cancel();
        b.cancel();
    }(names));
    CHECK(names == std::vector<std::string>{"main", "a", "b"});
}

TEST_CASE("a second task awaiting a JoinHandle already awaited gets std::logic_error", "[spawn]") {
    // Regression: the second awaiter took the task's only wake-up slot and the first one
    // stayed suspended forever.
    run_virtual([]() -> Task<> {
        auto handle = ringlet::spawn(value_after_yield(8), "awaited");
        auto waiter = [](JoinHandle<int> h) -> Task<int> {
            int v = co_await h;
            co_return v;
        };
        auto first = ringlet::spawn(waiter(handle));
        auto second = ringlet::spawn(waiter(handle));
        int v = co_await first;
        CHECK(v == 8);
        bool threw = false;
        try {
            (void)co_await second;
        } catch (const std::logic_error& e) {
            threw = true;
            CHECK(std::string(e.what()).find("'awaited' is already awaited") != std::string::npos);
        }
        CHECK(threw);
        int again = co_await handle; // once finished, it can be awaited again
        CHECK(again == 8);
    }());
}

TEST_CASE("a finished task gives the same result to every await and result() call", "[spawn]") {
    // g++ 12 rejects a braced list of string literals inside a coroutine ("array used as
    // initializer"), hence the vector built in plain functions.
    run_virtual([]() -> Task<> {
        auto handle = ringlet::spawn(words_after_yield());
        const std::vector<std::string> expected = two_words();
        CHECK(co_await handle == expected);
        CHECK(co_await handle == expected);
        CHECK(handle.result() == expected);
        CHECK(handle.result() == expected);
        auto failing = ringlet::spawn(fails_after_yield("twice"));
        CHECK_THROWS_WITH(co_await failing, "twice");
        CHECK_THROWS_WITH(failing.result(), "twice");
    }());
}

TEST_CASE("a move-only result is moved out by the first read; a second read throws logic_error "
          "naming the task",
          "[spawn]") {
    run_virtual([]() -> Task<> {
        auto boxed = [](int v) -> Task<std::unique_ptr<int>> {
            co_await ringlet::yield_now();
            co_return std::make_unique<int>(v);
        };
        std::unique_ptr<int> direct = co_await ringlet::spawn(boxed(3));
        REQUIRE(direct != nullptr);
        CHECK(*direct == 3);

        auto handle = ringlet::spawn(boxed(4), "boxer");
        std::unique_ptr<int> first = co_await handle;
        REQUIRE(first != nullptr);
        CHECK(*first == 4);
        CHECK_THROWS_AS(handle.result(), std::logic_error);
        CHECK_THROWS_WITH(handle.result(),
                          Catch::Matchers::Contains("'boxer' was already moved out"));
    }());
}

TEST_CASE("co_await std::move(handle) moves the result out and later reads throw", "[spawn]") {
    run_virtual([]() -> Task<> {
        auto words = []() -> Task<std::string> {
            co_await ringlet::yield_now();
            co_return std::string(100, 'x');
        };
        auto handle = ringlet::spawn(words(), "mover");
        std::string s = co_await std::move(handle);
        CHECK(s == std::string(100, 'x'));
        CHECK_THROWS_AS(handle.result(), std::logic_error);
        CHECK_THROWS_WITH(handle.result(),
                          Catch::Matchers::Contains("'mover' was already moved out"));
    }());
}
