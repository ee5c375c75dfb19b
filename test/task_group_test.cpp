// TaskGroup and task_group (asyncio's test_taskgroups where it pins the same semantics).
#include "support.hpp"

#include <ringlet/task_group.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;
using ringlet::TaskGroup;
using Log = std::vector<std::string>;

Task<int> value_after(Log& log, std::string name, std::chrono::milliseconds delay, int value) {
    co_await ringlet::sleep(delay);
    log.push_back(name);
    co_return value;
}

Task<> fail_after(Log& log, std::string name, std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    log.push_back(name + " throws");
    throw std::runtime_error(name);
}

/// Sleeps "forever"; on cancellation logs, cleans up with a co_await, logs and rethrows.
Task<> slow_cleanup(Log& log, std::string name) {
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
}

/// Counts the exceptions reported to the running loop's handler.
int* count_reported_exceptions() {
    static int count;
    count = 0;
    EventLoop::current().set_exception_handler(
        [](EventLoop&, const ringlet::ExceptionContext&) { ++count; });
    return &count;
}

} // namespace

TEST_CASE("task_group waits for all children", "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        auto start = EventLoop::current().time();
        co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
            g.spawn(value_after(log, "a", 30ms, 1));
            g.spawn(value_after(log, "b", 10ms, 2), "b");
            g.spawn(value_after(log, "c", 20ms, 3));
            log.push_back("body done");
            co_return;
        });
        log.push_back("group done");
        CHECK(log == Log{"body done", "b", "c", "a", "group done"});
        CHECK(EventLoop::current().time() - start == 30ms);
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group children may spawn more children into the group", "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        auto parent = [](TaskGroup& g, Log& log) -> Task<> {
            co_await ringlet::sleep(10ms);
            g.spawn(value_after(log, "grandchild", 20ms, 0));
            log.push_back("child done");
        };
        co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
            g.spawn(parent(g, log));
            co_return;
        });
        log.push_back("group done");
        CHECK(log == Log{"child done", "grandchild", "group done"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group returns the value of its body", "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        int sum = co_await ringlet::task_group([&](TaskGroup& g) -> Task<int> {
            auto a = g.spawn(value_after(log, "a", 10ms, 20));
            auto b = g.spawn(value_after(log, "b", 5ms, 22));
            int x = co_await a;
            int y = co_await b;
            co_return x + y;
        });
        CHECK(sum == 42);
        CHECK(log == Log{"b", "a"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group names its body after the running task", "[task_group]") {
    auto main = []() -> Task<> {
        std::string name = co_await ringlet::task_group(
            [](TaskGroup&) -> Task<std::string> { co_return ringlet::current_task().name(); });
        CHECK(name == "main.task_group");
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group cancels the rest on the first failure and rethrows it", "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        int* reported = count_reported_exceptions();
        auto start = EventLoop::current().time();
        try {
            co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                g.spawn(slow_cleanup(log, "x"));
                g.spawn(fail_after(log, "boom", 10ms));
                g.spawn(slow_cleanup(log, "y"));
                // The body is cancelled too while it still runs.
                bool cancelled = false;
                try {
                    co_await ringlet::sleep(1h);
                } catch (const CancelledError&) {
                    cancelled = true;
                }
                log.push_back(cancelled ? "body cancelled" : "body finished");
                if (cancelled)
                    throw CancelledError();
            });
            FAIL("task_group did not throw");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "boom");
            log.push_back("group threw");
        }
        CHECK(log == Log{"boom throws", "body cancelled", "x cancelled", "y cancelled",
                         "x cleaned up", "y cleaned up", "group threw"});
        CHECK(EventLoop::current().time() - start == 15ms);
        CHECK(EventLoop::current().stats().live_tasks == 1);
        CHECK(*reported == 0); // the child's exception was retrieved by the group
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group rethrows a failure of its body after cancelling the children",
          "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        try {
            co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                g.spawn(slow_cleanup(log, "child"));
                co_await ringlet::sleep(10ms);
                throw std::logic_error("body failed");
            });
            FAIL("task_group did not throw");
        } catch (const std::logic_error& e) {
            CHECK(std::string(e.what()) == "body failed");
        }
        CHECK(log == Log{"child cancelled", "child cleaned up"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group cancelled from outside cancels everything and raises CancelledError",
          "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            try {
                co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                    g.spawn(slow_cleanup(log, "a"));
                    g.spawn(slow_cleanup(log, "b"));
                    co_await slow_cleanup(log, "body");
                });
            } catch (const CancelledError&) {
                log.push_back("group raised CancelledError");
                throw;
            }
        };
        auto handle = ringlet::spawn(outer(log), "outer");
        co_await ringlet::sleep(10ms);
        CHECK(EventLoop::current().stats().live_tasks == 5);
        handle.cancel();
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(handle.cancelled());
        CHECK(log == Log{"body cancelled", "a cancelled", "b cancelled", "body cleaned up",
                         "a cleaned up", "b cleaned up", "group raised CancelledError"});
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("a task of the group cancelled alone does not fail the group", "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
            auto victim = g.spawn(slow_cleanup(log, "victim"));
            g.spawn(value_after(log, "survivor", 20ms, 0));
            co_await ringlet::sleep(5ms);
            victim.cancel();
            CHECK_THROWS_AS(co_await victim, CancelledError);
            log.push_back("body done");
        });
        CHECK(log == Log{"victim cancelled", "victim cleaned up", "body done", "survivor"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("awaiting a failing child's handle in the body gives its exception to both",
          "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        int* reported = count_reported_exceptions();
        try {
            co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                auto failing = g.spawn(fail_after(log, "child", 5ms));
                try {
                    co_await failing;
                } catch (const std::runtime_error&) {
                    log.push_back("body saw the failure");
                }
            });
            FAIL("task_group did not throw");
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "child");
        }
        CHECK(log == Log{"child throws", "body saw the failure"});
        CHECK(*reported == 0);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("spawning into a task_group that is shutting down throws std::logic_error",
          "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        auto stubborn = [](TaskGroup& g, Log& log) -> Task<> {
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                try {
                    g.spawn(value_after(log, "late", 1ms, 0));
                } catch (const std::logic_error&) {
                    log.push_back("spawn refused");
                }
                throw;
            }
        };
        CHECK_THROWS_AS(co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                            g.spawn(stubborn(g, log));
                            g.spawn(fail_after(log, "boom", 5ms));
                            co_return;
                        }),
                        std::runtime_error);
        CHECK(log == Log{"boom throws", "spawn refused"});
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group with an empty body returns once the body finished", "[task_group]") {
    auto main = []() -> Task<> {
        auto start = EventLoop::current().time();
        co_await ringlet::task_group([](TaskGroup& g) -> Task<> {
            CHECK(g.size() == 1);
            CHECK(g.pending() == 1);
            co_return;
        });
        CHECK(EventLoop::current().time() == start);
    };
    ringlet::test::run_virtual(main());
}

TEST_CASE("task_group in a task with a pending cancellation raises CancelledError",
          "[task_group]") {
    auto main = []() -> Task<> {
        Log log;
        auto outer = [](Log& log) -> Task<> {
            ringlet::current_task().cancel();
            co_await ringlet::task_group([&](TaskGroup& g) -> Task<> {
                log.push_back("body ran");
                g.spawn(value_after(log, "child", 1ms, 0));
                co_return;
            });
        };
        auto handle = ringlet::spawn(outer(log));
        CHECK_THROWS_AS(co_await handle, CancelledError);
        CHECK(log.empty());
        CHECK(EventLoop::current().stats().live_tasks == 1);
    };
    ringlet::test::run_virtual(main());
}
