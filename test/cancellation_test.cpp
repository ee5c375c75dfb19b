// Tests of task cancellation (TaskHandle::cancel): where CancelledError is raised (at the
// current suspension point, or the next one for a running task), that it is raised once per
// cancel, that a task may clean up and return a value, that a timer does not outlive a
// cancelled sleep, and that cancelling a parent cancels the child it awaits and waits for it.
#include "support.hpp"

#include <string>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;

using Log = std::vector<std::string>;

/// Sleeps for an hour, logging where it was cancelled. Lifetime: `log` must outlive the task.
Task<> sleep_logging(Log& log) {
    try {
        co_await ringlet::sleep(1h);
        log.push_back("slept");
    } catch (const CancelledError&) {
        log.push_back("cancelled at sleep");
        throw;
    }
}

/// Lifetime: `ran` must outlive the task.
Task<> mark_ran(bool& ran) {
    ran = true;
    co_return;
}

/// Awaits a chain `depth` levels deep that sleeps at the bottom; counts the levels that saw
/// CancelledError pass. Lifetime: `unwound` must outlive the task.
Task<> nested_sleeper(int depth, int& unwound) {
    try {
        if (depth == 0) {
            co_await ringlet::sleep(1h);
        } else {
            Task<> next = nested_sleeper(depth - 1, unwound);
            co_await next;
        }
    } catch (const CancelledError&) {
        ++unwound;
        throw;
    }
}

} // namespace

TEST_CASE("cancelling a sleeping task raises CancelledError at the sleep and drops its timer",
          "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto start = loop.time();
        auto handle = ringlet::spawn(sleep_logging(l));
        co_await ringlet::yield_now();
        CHECK(loop.stats().timers_pending == 1);
        CHECK(handle.cancel());
        CHECK_FALSE(handle.done()); // the task learns it on its next step, not inline
        try {
            co_await handle;
            FAIL("the cancelled task must end in CancelledError");
        } catch (const CancelledError&) {
        }
        CHECK(handle.cancelled());
        CHECK(loop.stats().timers_pending == 0);
        CHECK(loop.stats().timers_cancelled == 1);
        CHECK(loop.time() - start < 1h); // virtual time never jumped to the hour
    }(log));
    CHECK(log == Log{"cancelled at sleep"});
}

TEST_CASE("a task cancelled before its first step never runs its body", "[cancel]") {
    bool ran = false;
    run_virtual([](bool& r) -> Task<> {
        auto handle = ringlet::spawn(mark_ran(r));
        CHECK(handle.cancel());
        try {
            co_await handle;
            FAIL("the cancelled task must end in CancelledError");
        } catch (const CancelledError&) {
        }
        CHECK(handle.done());
        CHECK(handle.cancelled());
    }(ran));
    CHECK_FALSE(ran);
}

TEST_CASE("a running task that cancels itself gets CancelledError at its next suspension",
          "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto self_cancelling = [](Log& l2) -> Task<> {
            l2.push_back("before cancel");
            CHECK(ringlet::current_task().cancel());
            l2.push_back("still running after cancel");
            try {
                co_await ringlet::yield_now();
                l2.push_back("yield returned");
            } catch (const CancelledError&) {
                l2.push_back("cancelled at yield");
                throw;
            }
        };
        auto handle = ringlet::spawn(self_cancelling(l));
        try {
            co_await handle;
        } catch (const CancelledError&) {
            l.push_back("parent saw CancelledError");
        }
        CHECK(handle.cancelled());
    }(log));
    CHECK(log == Log{"before cancel", "still running after cancel", "cancelled at yield",
                     "parent saw CancelledError"});
}

TEST_CASE("a cancelled task can clean up with co_await and return a value", "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto stubborn = [](Log& l2) -> Task<int> {
            bool cancelled = false;
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                cancelled = true;
            }
            REQUIRE(cancelled);
            co_await ringlet::sleep(10ms); // cleanup that suspends: works normally
            l2.push_back("cleaned up");
            co_return 99;
        };
        auto handle = ringlet::spawn(stubborn(l));
        co_await ringlet::yield_now();
        CHECK(handle.cancel());
        int v = co_await handle;
        CHECK(v == 99);
        CHECK(handle.done());
        CHECK_FALSE(handle.cancelled());
    }(log));
    CHECK(log == Log{"cleaned up"});
}

TEST_CASE("cancelling a parent that awaits a JoinHandle cancels the child and waits for it",
          "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto child = [](Log& l2) -> Task<int> {
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                l2.push_back("child cancelled");
            }
            co_await ringlet::sleep(20ms);
            l2.push_back("child cleanup done");
            throw CancelledError();
        };
        auto parent = [](Log& l2, auto make_child) -> Task<> {
            auto handle = ringlet::spawn(make_child(l2), "child");
            try {
                (void)co_await handle;
                l2.push_back("parent got a value");
            } catch (const CancelledError&) {
                l2.push_back(handle.done() ? "parent cancelled after child finished"
                                           : "parent cancelled while child runs");
                throw;
            }
        };
        auto handle = ringlet::spawn(parent(l, child), "parent");
        co_await ringlet::sleep(1ms);
        CHECK(handle.cancel());
        try {
            co_await handle;
        } catch (const CancelledError&) {
            l.push_back("main saw the parent cancelled");
        }
        CHECK(handle.cancelled());
    }(log));
    CHECK(log == Log{"child cancelled", "child cleanup done",
                     "parent cancelled after child finished", "main saw the parent cancelled"});
}

TEST_CASE("cancel on a finished task returns false", "[cancel]") {
    run_virtual([]() -> Task<> {
        bool ran = false;
        auto handle = ringlet::spawn(mark_ran(ran));
        co_await handle;
        CHECK(ran);
        CHECK_FALSE(handle.cancel());
        CHECK_FALSE(handle.cancelled());
        CHECK_FALSE(ringlet::TaskHandle().cancel()); // an empty handle too
    }());
}

TEST_CASE("cancelling twice before the task resumes raises CancelledError once", "[cancel]") {
    int raised = 0;
    int completed = 0;
    run_virtual([](int& r, int& c) -> Task<> {
        auto twice = [](int& r2, int& c2) -> Task<> {
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                ++r2;
            }
            for (int i = 0; i < 3; ++i) {
                try {
                    co_await ringlet::sleep(1ms);
                    ++c2;
                } catch (const CancelledError&) {
                    ++r2;
                }
            }
        };
        auto handle = ringlet::spawn(twice(r, c));
        co_await ringlet::yield_now();
        CHECK(handle.cancel());
        CHECK(handle.cancel());
        co_await handle;
        CHECK_FALSE(handle.cancelled());
    }(raised, completed));
    CHECK(raised == 1);
    CHECK(completed == 3);
}

TEST_CASE("CancelledError is raised once per cancel and later awaits work normally", "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto resilient = [](Log& l2) -> Task<int> {
            int cancels = 0;
            for (int round = 0; round < 6; ++round) {
                try {
                    co_await ringlet::sleep(10ms);
                    l2.push_back("slept");
                } catch (const CancelledError&) {
                    l2.push_back("cancelled");
                    ++cancels;
                }
            }
            co_return cancels;
        };
        auto handle = ringlet::spawn(resilient(l));
        co_await ringlet::sleep(5ms); // t = 5 ms: inside round 0 (0..10 ms)
        handle.cancel();
        co_await ringlet::sleep(12ms); // t = 17 ms: inside round 2 (15..25 ms)
        handle.cancel();
        int cancels = co_await handle;
        CHECK(cancels == 2);
    }(log));
    CHECK(log == Log{"cancelled", "slept", "cancelled", "slept", "slept", "slept"});
}

TEST_CASE("a parent whose cancel is pending when it awaits a JoinHandle cancels the child and "
          "waits for it",
          "[cancel]") {
    Log log;
    run_virtual([](Log& l) -> Task<> {
        auto child = [](Log& l2) -> Task<int> {
            try {
                co_await ringlet::sleep(1h);
            } catch (const CancelledError&) {
                l2.push_back("child cancelled");
            }
            co_await ringlet::sleep(20ms);
            l2.push_back("child cleanup done");
            throw CancelledError();
        };
        auto parent = [](Log& l2, auto make_child) -> Task<> {
            auto handle = ringlet::spawn(make_child(l2), "child");
            co_await ringlet::yield_now();
            ringlet::current_task().cancel(); // pending: the parent is running
            try {
                (void)co_await handle;
                l2.push_back("parent got a value");
            } catch (const CancelledError&) {
                l2.push_back(handle.done() ? "parent cancelled after child finished"
                                           : "parent cancelled while child runs");
                throw;
            }
        };
        auto handle = ringlet::spawn(parent(l, child), "parent");
        try {
            co_await handle;
        } catch (const CancelledError&) {
            l.push_back("main saw the parent cancelled");
        }
        CHECK(handle.cancelled());
        co_await ringlet::sleep(1s); // a child left running would log its cleanup here
    }(log));
    CHECK(log == Log{"child cancelled", "child cleanup done",
                     "parent cancelled after child finished", "main saw the parent cancelled"});
}

TEST_CASE("cancelling a task suspended deep in nested tasks raises at the bottom and unwinds "
          "every level",
          "[cancel]") {
    constexpr int depth = 1000;
    int unwound = 0;
    run_virtual([](int& u) -> Task<> {
        auto handle = ringlet::spawn(nested_sleeper(depth, u), "deep");
        co_await ringlet::yield_now();
        CHECK(handle.state() == "awaiting sleep");
        CHECK(handle.cancel());
        try {
            co_await handle;
        } catch (const CancelledError&) {
        }
        CHECK(handle.cancelled());
        CHECK(EventLoop::current().stats().timers_pending == 0);
    }(unwound));
    CHECK(unwound == depth + 1);
}
