// Tests of EventLoop: run_once (asyncio's _run_once) step by step, call_soon / call_later /
// call_at and their handles, timer compaction, stop / run_forever / run_until_complete / close,
// misuse errors, the exception handler, the clock, stats() and call_soon_threadsafe.
#include "support.hpp"

#include <array>
#include <atomic>
#include <cmath>
#include <fcntl.h>
#include <ringlet/detail/io_awaiter.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::EventLoop;
using ringlet::Handle;
using ringlet::LoopOptions;
using ringlet::Task;
using ringlet::TimerHandle;
namespace test = ringlet::test;

/// A pipe closed at scope exit.
struct Pipe {
    int read_end = -1;
    int write_end = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        ::close(read_end);
        ::close(write_end);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

Task<int> answer() {
    co_return 42;
}

Task<int> fail_with(std::string message) {
    co_await ringlet::yield_now();
    throw std::runtime_error(message);
}

Task<> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

Task<> sleep_forever() {
    co_await ringlet::sleep(std::chrono::hours(24 * 365));
}

/// Sleeps for an hour; on cancellation, sleeps once more before finishing (async cleanup; a
/// handler cannot co_await, so the cleanup runs after it).
Task<> sleep_then_clean_up(bool* cleanup_started, bool* cleanup_done) {
    bool cancelled = false;
    try {
        co_await ringlet::sleep(1h);
    } catch (const ringlet::CancelledError&) {
        cancelled = true;
    }
    if (cancelled) {
        *cleanup_started = true;
        co_await ringlet::sleep(10ms);
        *cleanup_done = true;
        throw ringlet::CancelledError();
    }
}

/// Waits until cancelled: nothing but a cancel ever wakes it.
class Forever final : public ringlet::detail::SuspendPoint {
  public:
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) { return enter(caller); }
    void await_resume() { leave(); }
    void request_cancel(ringlet::detail::TaskState&) noexcept override {
        task_->loop()->ready_queue().push(task_);
        mark_cancelled();
    }
    std::string what_awaited() const override { return "forever"; }
};

/// Catches every CancelledError and waits again: a task that ignores cancellation.
Task<> ignore_cancellation(int* cancels_seen) {
    for (int i = 0; i < 100; ++i) {
        try {
            Forever forever;
            co_await forever;
        } catch (const ringlet::CancelledError&) {
            ++*cancels_seen;
        }
    }
}

/// Awaits `child` and ignores its own cancellation while doing so.
Task<> stubborn_parent(ringlet::JoinHandle<> child, int* cancels_seen) {
    for (int i = 0; i < 100; ++i) {
        try {
            co_await child;
            co_return;
        } catch (const ringlet::CancelledError&) {
            ++*cancels_seen;
        }
    }
}

/// Spawns a child that ignores cancellation (so the parent is the older task) and awaits it.
Task<> spawn_stubborn_child(EventLoop* loop, ringlet::JoinHandle<>* child_out, int* child_cancels,
                            int* parent_cancels) {
    // The loop is named: run_once() driven by hand does not make it the thread's current loop.
    *child_out = ringlet::spawn(*loop, ignore_cancellation(child_cancels), "child");
    co_await stubborn_parent(*child_out, parent_cancels);
}

Task<int> read_one(int fd) {
    std::array<std::byte, 16> buffer{};
    std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
    co_return n;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// call_soon and run_once step 6

TEST_CASE("call_soon runs callbacks in FIFO order") {
    EventLoop loop(test::options());
    std::vector<int> order;
    for (int i = 0; i < 5; ++i)
        loop.call_soon([&order, i] { order.push_back(i); });
    loop.run_once();
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(loop.stats().handles_run == 5);
    CHECK(loop.stats().iterations == 1);
}

TEST_CASE("a callback scheduled by a callback runs in the next iteration, not the current one") {
    EventLoop loop(test::options());
    std::vector<std::string> order;
    loop.call_soon([&] {
        order.push_back("a");
        loop.call_soon([&] {
            order.push_back("c");
            loop.call_soon([&] { order.push_back("e"); });
        });
    });
    loop.call_soon([&] {
        order.push_back("b");
        loop.call_soon([&] { order.push_back("d"); });
    });

    loop.run_once();
    CHECK(order == std::vector<std::string>{"a", "b"});
    loop.run_once();
    CHECK(order == std::vector<std::string>{"a", "b", "c", "d"});
    loop.run_once();
    CHECK(order == std::vector<std::string>{"a", "b", "c", "d", "e"});
    CHECK(loop.stats().handles_run == 5);
    CHECK(loop.stats().iterations == 3);
}

TEST_CASE("a callback scheduled by a due timer's callback waits for the next iteration") {
    // asyncio's test__run_once_schedule_handle.
    EventLoop loop(test::options());
    bool processed = false;
    bool scheduled_ran = false;
    loop.call_at(loop.time() - 1s, [&] {
        processed = true;
        loop.call_soon([&] { scheduled_ran = true; });
    });
    loop.run_once();
    CHECK(processed);
    CHECK_FALSE(scheduled_ran);
    loop.run_once();
    CHECK(scheduled_ran);
}

// ---------------------------------------------------------------------------------------------
// call_later / call_at

TEST_CASE("call_later and call_at fire in deadline order and equal deadlines in scheduling order") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    std::vector<std::string> order;
    std::vector<EventLoop::duration> fired_at;
    auto record = [&](std::string name) {
        return [&, name] {
            order.push_back(name);
            fired_at.push_back(loop.time() - t0);
        };
    };
    loop.call_later(30ms, record("c"));
    loop.call_at(t0 + 20ms, record("b1"));
    loop.call_later(10ms, record("a"));
    loop.call_later(20ms, record("b2")); // virtual clock: the same deadline as b1
    loop.call_at(t0 + 20ms, record("b3"));
    loop.call_later(40ms, [&] { loop.stop(); });
    loop.run_forever();

    CHECK(order == std::vector<std::string>{"a", "b1", "b2", "b3", "c"});
    // The virtual clock jumps exactly to each deadline.
    CHECK(fired_at == std::vector<EventLoop::duration>{10ms, 20ms, 20ms, 20ms, 30ms});
    CHECK(loop.stats().timers_scheduled == 6);
    CHECK(loop.stats().timers_pending == 0);
}

TEST_CASE("call_later on the real clock fires no earlier than its delay") {
    EventLoop loop(test::options());
    auto started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point fired{};
    loop.call_later(20ms, [&] {
        fired = std::chrono::steady_clock::now();
        loop.stop();
    });
    loop.run_forever();
    CHECK(fired - started >= 20ms);
    CHECK(fired - started < 5s);
}

TEST_CASE("call_later with a negative delay acts as zero") {
    EventLoop loop(test::options());
    bool ran = false;
    TimerHandle h = loop.call_later(-1h, [&] { ran = true; });
    CHECK(h.when() <= loop.time());
    loop.run_once();
    CHECK(ran);
}

TEST_CASE("TimerHandle::when is the deadline of call_at") {
    EventLoop loop(test::options());
    auto deadline = loop.time() + 5s;
    TimerHandle h = loop.call_at(deadline, [] {});
    CHECK(h.when() == deadline);
    h.cancel();
}

// ---------------------------------------------------------------------------------------------
// Handle::cancel / TimerHandle::cancel

TEST_CASE("Handle::cancel prevents a call_soon callback from running") {
    EventLoop loop(test::options());
    std::vector<int> ran;
    Handle a = loop.call_soon([&] { ran.push_back(1); });
    Handle b = loop.call_soon([&] { ran.push_back(2); });
    Handle c = loop.call_soon([&] { ran.push_back(3); });
    CHECK_FALSE(b.cancelled());
    b.cancel();
    CHECK(b.cancelled());
    b.cancel(); // idempotent
    loop.run_once();
    CHECK(ran == std::vector<int>{1, 3});
    // call_soon handles are not timers.
    CHECK(loop.stats().timers_cancelled == 0);
}

TEST_CASE("a callback cancelled by an earlier callback of the same iteration does not run") {
    EventLoop loop(test::options());
    std::vector<int> ran;
    Handle second;
    loop.call_soon([&] {
        ran.push_back(1);
        second.cancel();
    });
    second = loop.call_soon([&] { ran.push_back(2); });
    loop.run_once();
    CHECK(ran == std::vector<int>{1});
}

TEST_CASE("TimerHandle::cancel prevents the callback and moves timers_cancelled and "
          "timers_pending") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    std::vector<int> ran;
    TimerHandle a = loop.call_later(10ms, [&] { ran.push_back(1); });
    TimerHandle b = loop.call_later(20ms, [&] { ran.push_back(2); });
    TimerHandle c = loop.call_later(30ms, [&] { ran.push_back(3); });
    auto s = loop.stats();
    CHECK(s.timers_scheduled == 3);
    CHECK(s.timers_pending == 3);
    CHECK(s.timers_cancelled == 0);

    b.cancel();
    s = loop.stats();
    CHECK(b.cancelled());
    CHECK(s.timers_cancelled == 1);
    CHECK(s.timers_pending == 2);
    CHECK(s.timer_heap_size == 3); // lazy removal: still in the heap

    b.cancel(); // a second cancel changes nothing
    CHECK(loop.stats().timers_cancelled == 1);
    CHECK(loop.stats().timers_pending == 2);

    for (int i = 0; i < 10 && loop.stats().timers_pending > 0; ++i)
        loop.run_once();
    CHECK(ran == std::vector<int>{1, 3});
    s = loop.stats();
    CHECK(s.timers_pending == 0);
    CHECK(s.timer_heap_size == 0);
    CHECK(s.timers_cancelled == 1);
}

TEST_CASE("cancelling a timer after it fired is harmless and cancels no newer timer") {
    EventLoop loop(test::options());
    int first_runs = 0;
    int second_runs = 0;
    TimerHandle first = loop.call_later(0ms, [&] { ++first_runs; });
    loop.run_once();
    REQUIRE(first_runs == 1);
    // The new timer takes the heap slot the fired one left.
    TimerHandle second = loop.call_later(0ms, [&] { ++second_runs; });
    first.cancel();
    first.cancel();
    auto s = loop.stats();
    CHECK(s.timers_cancelled == 0);
    CHECK(s.timers_pending == 1);
    loop.run_once();
    CHECK(first_runs == 1);
    CHECK(second_runs == 1);
    CHECK_FALSE(second.cancelled());
}

TEST_CASE("a timer cancelled by an earlier timer callback of the same iteration does not run") {
    // Both timers are due in the same iteration and already moved to the ready queue when the
    // first one cancels the second (asyncio skips a cancelled handle when it is popped).
    EventLoop loop(test::options());
    std::vector<int> ran;
    TimerHandle second;
    auto when = loop.time() - 1ms;
    loop.call_at(when, [&] {
        ran.push_back(1);
        second.cancel();
    });
    second = loop.call_at(when, [&] { ran.push_back(2); });
    loop.run_once();
    CHECK(ran == std::vector<int>{1});
    CHECK(second.cancelled());
    auto s = loop.stats();
    CHECK(s.timers_pending == 0);
    CHECK(s.timer_heap_size == 0);
    loop.close();
}

TEST_CASE("a callback cancelling its own handle while it runs is harmless") {
    EventLoop loop(test::options());
    int runs = 0;
    TimerHandle self;
    self = loop.call_later(0ms, [&] {
        ++runs;
        self.cancel();
    });
    loop.run_once();
    loop.call_soon([] {}); // keeps the next run_once from waiting
    loop.run_once();
    CHECK(runs == 1);
    CHECK(loop.stats().timers_cancelled == 0);
}

TEST_CASE("handles may outlive their loop") {
    Handle soon;
    Handle soon_ran;
    TimerHandle later;
    TimerHandle later_cancelled;
    int runs = 0;
    {
        EventLoop loop(test::options());
        soon = loop.call_soon([&] { ++runs; });
        loop.run_once();
        soon_ran = soon;
        soon = loop.call_soon([&] { ++runs; });
        later = loop.call_later(1h, [&] { ++runs; });
        later_cancelled = loop.call_later(1h, [&] { ++runs; });
        later_cancelled.cancel();
    } // closed and destroyed with a queued callback and a pending timer
    CHECK(runs == 1);
    soon.cancel();
    soon_ran.cancel();
    later.cancel();
    later_cancelled.cancel();
    CHECK(later.cancelled());
    CHECK(soon.cancelled());
}

// ---------------------------------------------------------------------------------------------
// Timer housekeeping (run_once step 1)

TEST_CASE("run_once pops cancelled timers off the top and waits for the earliest live one") {
    // asyncio's test__run_once: the cancelled 5 s timer is dropped, the poll waits for the
    // 10 s one. On the virtual clock, "waits" shows as a jump straight to 10 s.
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    bool h1_ran = false;
    bool h2_ran = false;
    TimerHandle h1 = loop.call_later(5s, [&] { h1_ran = true; });
    TimerHandle h2 = loop.call_later(10s, [&] { h2_ran = true; });
    h1.cancel();
    CHECK(loop.stats().timer_heap_size == 2);
    loop.run_once();
    CHECK_FALSE(h1_ran);
    CHECK(h2_ran);
    CHECK(loop.time() - t0 == 10s);
    CHECK(loop.stats().timer_heap_size == 0);
}

TEST_CASE("200 timers with 150 cancelled are compacted to 50 by one run_once") {
    EventLoop loop(test::options());
    std::vector<TimerHandle> handles;
    for (int i = 0; i < 200; ++i)
        handles.push_back(loop.call_later(1h + std::chrono::seconds(i), [] {}));
    // Cancel from the end, so that no cancelled timer sits at the top of the heap.
    for (int i = 199; i >= 50; --i)
        handles[static_cast<std::size_t>(i)].cancel();
    auto s = loop.stats();
    CHECK(s.timer_heap_size == 200);
    CHECK(s.timers_pending == 50);
    CHECK(s.timers_cancelled == 150);

    loop.call_soon([] {}); // something ready: the poll does not wait for the timers
    loop.run_once();
    s = loop.stats();
    CHECK(s.timer_heap_size == 50);
    CHECK(s.timers_pending == 50);
    loop.close();
}

TEST_CASE("with 100 timers or fewer, cancelled timers are only popped from the top") {
    // asyncio's test__run_once_cancelled_event_cleanup.
    EventLoop loop(test::options());
    auto cb = [] {};
    // One live timer in front keeps later cancelled ones off the top of the heap.
    loop.call_later(3000s, cb);
    for (int i = 0; i < 2; ++i)
        loop.call_later(3600s, cb).cancel(); // behind the live one: stay
    for (int i = 0; i < 2; ++i)
        loop.call_later(100s, cb).cancel(); // at the top: popped
    auto s = loop.stats();
    CHECK(s.timer_heap_size == 5);
    CHECK(s.timer_heap_size - s.timers_pending == 4);

    loop.call_soon(cb);
    loop.run_once();
    s = loop.stats();
    CHECK(s.timer_heap_size == 3); // the two cancelled ones behind the live one remain
    CHECK(s.timers_pending == 1);

    // Enough cancelled timers to pass half of more than 100: compaction on the next run_once.
    const int add_cancel = static_cast<int>(std::ceil(100 * 0.5)) + 1; // 51
    const int add_live = 100 - add_cancel;                             // 49
    for (int i = 0; i < add_live; ++i)
        loop.call_later(3600s, cb);
    for (int i = 0; i < add_cancel; ++i)
        loop.call_later(3600s, cb).cancel();
    s = loop.stats();
    CHECK(s.timer_heap_size == 3 + 49 + 51); // all still in the heap
    CHECK(s.timers_pending == 50);

    loop.call_soon(cb);
    loop.run_once();
    s = loop.stats();
    CHECK(s.timer_heap_size == 50); // only live timers remain
    CHECK(s.timers_pending == 50);
    loop.close();
}

// ---------------------------------------------------------------------------------------------
// stop / run_forever / run_until_complete

TEST_CASE("stop() makes run_forever return after the current iteration") {
    EventLoop loop(test::options());
    std::vector<std::string> order;
    loop.call_soon([&] {
        order.push_back("a");
        loop.stop();
        loop.call_soon([&] {
            order.push_back("c");
            loop.stop();
        });
    });
    loop.call_soon([&] { order.push_back("b"); }); // same iteration: still runs
    loop.run_forever();
    CHECK(order == std::vector<std::string>{"a", "b"});
    CHECK(loop.stats().iterations == 1);
    CHECK_FALSE(loop.is_running());

    // The loop can run again; the stop request was consumed.
    loop.run_forever();
    CHECK(order == std::vector<std::string>{"a", "b", "c"});
    CHECK(loop.stats().iterations == 2);
}

TEST_CASE("stop() before run_forever makes it run exactly one iteration without waiting") {
    EventLoop loop(test::options());
    bool ran = false;
    loop.call_soon([&] { ran = true; });
    loop.call_later(1h, [] {});
    loop.stop();
    auto started = std::chrono::steady_clock::now();
    loop.run_forever();
    CHECK(std::chrono::steady_clock::now() - started < 5s);
    CHECK(ran);
    CHECK(loop.stats().iterations == 1);
    loop.close();
}

TEST_CASE("run_until_complete returns the task's value") {
    EventLoop loop(test::options());
    CHECK(loop.run_until_complete(answer()) == 42);
    CHECK(loop.stats().live_tasks == 0);
    // The loop can be reused.
    CHECK(loop.run_until_complete(answer()) == 42);
}

TEST_CASE("run_until_complete rethrows the task's exception") {
    EventLoop loop(test::options());
    CHECK_THROWS_WITH(loop.run_until_complete(fail_with("boom")), "boom");
    CHECK(loop.stats().live_tasks == 0);
}

TEST_CASE("run_until_complete throws std::logic_error when the loop stops before the task") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    loop.call_soon([&] { loop.stop(); });
    CHECK_THROWS_AS(loop.run_until_complete(sleep_forever()), std::logic_error);
    loop.close();
    CHECK(loop.stats().live_tasks == 0);
}

TEST_CASE("run_forever and run_until_complete on a closed loop throw std::logic_error") {
    EventLoop loop(test::options());
    loop.close();
    CHECK_THROWS_AS(loop.run_forever(), std::logic_error);
    bool ran = false;
    CHECK_THROWS_AS(loop.run_until_complete(set_flag(&ran)), std::logic_error);
    CHECK_FALSE(ran);
}

TEST_CASE("run_forever and run_until_complete on a running loop throw std::logic_error and run "
          "nothing") {
    EventLoop loop(test::options());
    bool forever_threw = false;
    bool until_threw = false;
    bool task_ran = false;
    loop.call_soon([&] {
        try {
            loop.run_forever();
        } catch (const std::logic_error&) {
            forever_threw = true;
        }
        try {
            loop.run_until_complete(set_flag(&task_ran));
        } catch (const std::logic_error&) {
            until_threw = true;
        }
        loop.stop();
    });
    loop.run_forever();
    CHECK(forever_threw);
    CHECK(until_threw);
    // asyncio checks before it wraps the coroutine in a task: the task was never scheduled.
    for (int i = 0; i < 3; ++i) {
        loop.call_soon([] {}); // keeps run_once from waiting when nothing else is ready
        loop.run_once();
    }
    CHECK_FALSE(task_ran);
    CHECK(loop.stats().live_tasks == 0);
}

TEST_CASE("run_forever and run_until_complete throw std::logic_error while another loop runs on "
          "the thread") {
    EventLoop outer(test::options());
    EventLoop inner(test::options());
    bool forever_threw = false;
    bool until_threw = false;
    bool task_ran = false;
    outer.call_soon([&] {
        try {
            inner.run_forever();
        } catch (const std::logic_error&) {
            forever_threw = true;
        }
        try {
            inner.run_until_complete(set_flag(&task_ran));
        } catch (const std::logic_error&) {
            until_threw = true;
        }
        outer.stop();
    });
    outer.run_forever();
    CHECK(forever_threw);
    CHECK(until_threw);
    CHECK_FALSE(inner.is_running());
    CHECK(inner.stats().live_tasks == 0);
    CHECK_FALSE(task_ran);
}

TEST_CASE("closing a second loop inside a running loop leaves the running loop current") {
    // Regression: close() marked its own loop as the thread's running loop while draining and
    // then cleared the mark, so the outer loop was no longer current.
    EventLoop outer(test::options());
    EventLoop* current_after_close = nullptr;
    bool task_ran = false;
    outer.call_soon([&] {
        outer.stop();
        {
            EventLoop inner(test::options());
            inner.call_soon([] {});
        }
        current_after_close = EventLoop::current_or_null();
        ringlet::spawn(set_flag(&task_ran)); // needs EventLoop::current()
    });
    outer.run_forever();
    CHECK(current_after_close == &outer);
    outer.call_soon([] {}); // keeps run_once from waiting if the spawn failed
    outer.run_once();
    CHECK(task_ran);
}

TEST_CASE("ringlet::run inside a running loop throws std::logic_error") {
    struct Probe {
        static Task<bool> body() {
            try {
                ringlet::run(answer());
            } catch (const std::logic_error&) {
                co_return true;
            }
            co_return false;
        }
    };
    CHECK(test::run_virtual(Probe::body()));
}

TEST_CASE("EventLoop::current names the running loop and throws when none runs") {
    CHECK(EventLoop::current_or_null() == nullptr);
    CHECK_THROWS_AS(EventLoop::current(), std::logic_error);
    EventLoop loop(test::options());
    EventLoop* seen = nullptr;
    loop.call_soon([&] {
        seen = &EventLoop::current();
        loop.stop();
    });
    loop.run_forever();
    CHECK(seen == &loop);
    CHECK(EventLoop::current_or_null() == nullptr);
}

// ---------------------------------------------------------------------------------------------
// close, is_running, is_closed

TEST_CASE("is_running is true only while the loop runs and is_closed only after close") {
    EventLoop loop(test::options());
    CHECK_FALSE(loop.is_running());
    CHECK_FALSE(loop.is_closed());
    bool running_inside = false;
    loop.call_soon([&] {
        running_inside = loop.is_running();
        loop.stop();
    });
    loop.run_forever();
    CHECK(running_inside);
    CHECK_FALSE(loop.is_running());
    loop.close();
    CHECK(loop.is_closed());
    CHECK_FALSE(loop.is_running());
}

TEST_CASE("close is idempotent") {
    EventLoop loop(test::options());
    loop.close();
    CHECK(loop.is_closed());
    CHECK_NOTHROW(loop.close());
    CHECK(loop.is_closed());
}

TEST_CASE("close cancels live tasks and waits for their asynchronous cleanup") {
    EventLoop loop(test::options());
    bool started = false;
    bool done = false;
    auto handle = ringlet::spawn(loop, sleep_then_clean_up(&started, &done), "cleaner");
    loop.run_once(); // the task starts and sleeps for an hour
    REQUIRE(loop.stats().live_tasks == 1);
    REQUIRE_FALSE(started);
    auto before = std::chrono::steady_clock::now();
    loop.close();
    CHECK(std::chrono::steady_clock::now() - before < 5s);
    CHECK(started);
    CHECK(done);
    CHECK(handle.done());
    CHECK(handle.cancelled());
    CHECK(loop.stats().live_tasks == 0);
    CHECK(loop.stats().io_in_flight == 0);
}

TEST_CASE("close keeps the virtual clock moving when a callback calls stop() during the drain") {
    // Regression: stop() called while close() drained (here by a timer that fires during the
    // cleanup) left the loop "stopping", so the poll never waited and the virtual clock never
    // jumped to the cleanup's timer: close() spun forever.
    EventLoop loop(test::options(/*virtual_time=*/true));
    bool started = false;
    bool done = false;
    auto handle = ringlet::spawn(loop, sleep_then_clean_up(&started, &done));
    loop.run_once(); // sleeps for an hour
    int stops = 0;
    loop.call_later(5ms, [&] { // due before the 10 ms cleanup sleep ends
        ++stops;
        loop.stop();
    });
    auto before = std::chrono::steady_clock::now();
    loop.close();
    CHECK(std::chrono::steady_clock::now() - before < 5s);
    CHECK(stops == 1);
    CHECK(done);
    CHECK(handle.cancelled());
}

TEST_CASE("close cancels a task that never started without running its body") {
    EventLoop loop(test::options());
    bool ran = false;
    auto handle = ringlet::spawn(loop, set_flag(&ran));
    loop.close();
    CHECK_FALSE(ran);
    CHECK(handle.cancelled());
    CHECK(loop.stats().live_tasks == 0);
}

TEST_CASE("close cancels a task blocked on a pipe read and drains the read") {
    Pipe pipe;
    EventLoop loop(test::options());
    auto handle = ringlet::spawn(loop, read_one(pipe.read_end));
    loop.run_once();
    REQUIRE(loop.stats().io_in_flight == 1);
    loop.close();
    CHECK(handle.cancelled());
    CHECK(loop.stats().io_in_flight == 0);
}

TEST_CASE("close gives up on a task that keeps ignoring cancellation") {
    EventLoop loop(test::options());
    std::vector<std::string> logged;
    loop.set_log_handler([&](std::string_view line) { logged.emplace_back(line); });
    int cancels_seen = 0;
    auto handle = ringlet::spawn(loop, ignore_cancellation(&cancels_seen), "stubborn");
    loop.run_once();
    auto before = std::chrono::steady_clock::now();
    loop.close();
    CHECK(std::chrono::steady_clock::now() - before < 5s);
    CHECK(cancels_seen == 3); // three rounds of cancellation, then the loop gives up
    CHECK(handle.done());
    CHECK(handle.cancelled());
    CHECK(loop.stats().live_tasks == 0);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("'stubborn' ignored cancellation") != std::string::npos);
}

TEST_CASE("close gives up on stubborn tasks that await each other without waking a finished "
          "one") {
    // Regression: the child abandoned at close woke its (already abandoned) parent through the
    // join observer, and close() then abandoned the parent a second time from the ready queue.
    for (bool child_first : {true, false}) {
        CAPTURE(child_first);
        EventLoop loop(test::options());
        loop.set_log_handler([](std::string_view) {});
        int child_cancels = 0;
        int parent_cancels = 0;
        ringlet::JoinHandle<> child;
        ringlet::JoinHandle<> parent;
        if (child_first) {
            child = ringlet::spawn(loop, ignore_cancellation(&child_cancels), "child");
            parent = ringlet::spawn(loop, stubborn_parent(child, &parent_cancels), "parent");
        } else {
            parent = ringlet::spawn(
                loop, spawn_stubborn_child(&loop, &child, &child_cancels, &parent_cancels),
                "parent");
        }
        for (int i = 0; i < 2; ++i) {
            loop.call_soon([] {}); // keeps run_once from waiting once both are suspended
            loop.run_once();
        }
        REQUIRE(loop.stats().live_tasks == 2);
        loop.close();
        CHECK(child.cancelled());
        CHECK(parent.cancelled());
        CHECK(loop.stats().live_tasks == 0);
        CHECK(child_cancels >= 1);
    }
}

TEST_CASE("close does not run callbacks still queued or timers still pending") {
    EventLoop loop(test::options());
    int runs = 0;
    loop.call_soon([&] { ++runs; });
    loop.call_later(0ms, [&] { ++runs; });
    loop.call_later(1h, [&] { ++runs; });
    loop.close();
    CHECK(runs == 0);
    CHECK(loop.stats().timers_pending == 0);
}

TEST_CASE("call_soon, call_later and call_at after close throw std::logic_error") {
    EventLoop loop(test::options());
    loop.close();
    CHECK_THROWS_AS(loop.call_soon([] {}), std::logic_error);
    CHECK_THROWS_AS(loop.call_later(1s, [] {}), std::logic_error);
    CHECK_THROWS_AS(loop.call_at(loop.time(), [] {}), std::logic_error);
    CHECK_THROWS_AS(ringlet::spawn(loop, answer()), std::logic_error);
}

TEST_CASE("close inside the running loop throws std::logic_error") {
    EventLoop loop(test::options());
    bool threw = false;
    loop.call_soon([&] {
        try {
            loop.close();
        } catch (const std::logic_error&) {
            threw = true;
        }
        loop.stop();
    });
    loop.run_forever();
    CHECK(threw);
    CHECK_FALSE(loop.is_closed());
}

// ---------------------------------------------------------------------------------------------
// Exception handler

TEST_CASE("an exception thrown by a callback goes to the exception handler once and the loop "
          "keeps running") {
    EventLoop loop(test::options());
    std::vector<std::string> reports;
    loop.set_exception_handler([&](EventLoop& l, const ringlet::ExceptionContext& context) {
        CHECK(&l == &loop);
        std::string what;
        try {
            std::rethrow_exception(context.exception);
        } catch (const std::exception& e) {
            what = e.what();
        }
        reports.push_back(context.message + ": " + what);
    });
    bool after_soon = false;
    bool after_timer = false;
    loop.call_soon([] { throw std::runtime_error("soon failed"); });
    loop.call_soon([&] { after_soon = true; });
    loop.run_once();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "Exception in callback: soon failed");
    CHECK(after_soon);

    loop.call_later(0ms, [] { throw std::runtime_error("timer failed"); });
    loop.call_later(0ms, [&] { after_timer = true; });
    loop.run_once(); // both are due: they run in this iteration
    REQUIRE(reports.size() == 2);
    CHECK(reports[1] == "Exception in callback: timer failed");
    CHECK(after_timer);
}

TEST_CASE("an exception handler that throws does not stop the loop") {
    EventLoop loop(test::options());
    loop.set_exception_handler(
        [](EventLoop&, const ringlet::ExceptionContext&) { throw std::runtime_error("handler"); });
    bool later_ran = false;
    loop.call_soon([] { throw std::runtime_error("callback"); });
    loop.call_soon([&] { later_ran = true; });
    CHECK_NOTHROW(loop.run_once());
    CHECK(later_ran);
}

// ---------------------------------------------------------------------------------------------
// Clock and stats

TEST_CASE("time() is monotonic on the real and the virtual clock") {
    for (bool virtual_time : {false, true}) {
        EventLoop loop(test::options(virtual_time));
        auto previous = loop.time();
        bool monotonic = true;
        int fired = 0;
        for (int i = 0; i < 20; ++i)
            loop.call_later(std::chrono::milliseconds(i % 5), [&] {
                ++fired;
                auto now = loop.time();
                monotonic = monotonic && now >= previous;
                previous = now;
            });
        for (int i = 0; i < 100 && fired < 20; ++i) {
            loop.run_once();
            auto now = loop.time();
            monotonic = monotonic && now >= previous;
            previous = now;
        }
        CHECK(fired == 20);
        CHECK(monotonic);
    }
}

TEST_CASE("stats count iterations, handles, completions, timers and live tasks") {
    Pipe pipe;
    REQUIRE(::write(pipe.write_end, "x", 1) == 1);
    EventLoop loop(test::options());
    auto s = loop.stats();
    CHECK(s.iterations == 0);
    CHECK(s.handles_run == 0);
    CHECK(s.completions == 0);
    CHECK(s.timers_scheduled == 0);
    CHECK(s.live_tasks == 0);
    CHECK(s.io_in_flight == 0);

    auto reader = ringlet::spawn(loop, read_one(pipe.read_end));
    CHECK(loop.stats().live_tasks == 1);
    loop.run_once(); // the task runs and submits its read...
    s = loop.stats();
    CHECK(s.iterations == 1);
    CHECK(s.handles_run == 1);
    CHECK(s.io_in_flight == 1);
    loop.run_once(); // ...which completes at once: the task is queued and finishes
    s = loop.stats();
    CHECK(s.iterations == 2);
    CHECK(s.completions >= 1);
    CHECK(s.handles_run == 2);
    CHECK(s.io_in_flight == 0);
    CHECK(s.live_tasks == 0);
    CHECK(reader.result() == 1);

    TimerHandle t1 = loop.call_later(1h, [] {});
    loop.call_later(0ms, [] {});
    t1.cancel();
    s = loop.stats();
    CHECK(s.timers_scheduled == 2);
    CHECK(s.timers_cancelled == 1);
    CHECK(s.timers_pending == 1);
    loop.run_once();
    s = loop.stats();
    CHECK(s.iterations == 3);
    CHECK(s.handles_run == 3);
    CHECK(s.timers_pending == 0);
}

// ---------------------------------------------------------------------------------------------
// call_soon_threadsafe

TEST_CASE("call_soon_threadsafe wakes a loop blocked in the kernel") {
    EventLoop loop(test::options());
    // The only timer is 10 s away: the loop blocks in io_uring_enter until woken.
    TimerHandle far = loop.call_later(10s, [&] { loop.stop(); });
    std::atomic<std::int64_t> posted_ns{0};
    std::chrono::steady_clock::time_point ran_at{};
    std::thread poster([&] {
        std::this_thread::sleep_for(50ms); // let the loop block
        posted_ns = std::chrono::steady_clock::now().time_since_epoch().count();
        loop.call_soon_threadsafe([&] {
            ran_at = std::chrono::steady_clock::now();
            loop.stop();
        });
    });
    auto started = std::chrono::steady_clock::now();
    loop.run_forever();
    poster.join();
    auto posted = std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(posted_ns.load()));
    auto latency = ran_at - posted;
    double latency_ms = std::chrono::duration<double>(latency).count() * 1000;
    WARN("call_soon_threadsafe wake-up latency: " << latency_ms << " ms");
    CHECK(ran_at != std::chrono::steady_clock::time_point{});
    CHECK(latency < 1s);
    CHECK(ran_at - started < 5s);
    CHECK(loop.stats().timers_pending == 1); // woken by the post, not by the timer
    far.cancel();
}

TEST_CASE("call_soon_threadsafe callbacks posted by several threads all run on the loop thread") {
    EventLoop loop(test::options());
    constexpr int threads = 4;
    constexpr int per_thread = 250;
    int received = 0;
    bool all_on_loop_thread = true;
    auto loop_thread = std::this_thread::get_id();
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&] {
            for (int i = 0; i < per_thread; ++i)
                loop.call_soon_threadsafe([&] {
                    ++received;
                    all_on_loop_thread =
                        all_on_loop_thread && std::this_thread::get_id() == loop_thread;
                });
        });
    TimerHandle deadline = loop.call_later(10s, [&] { loop.stop(); });
    loop.call_soon([&] {
        // Poll until everything arrived, from the loop itself.
        struct Poll {
            static void check(EventLoop& l, int& r) {
                if (r == threads * per_thread)
                    l.stop();
                else
                    l.call_later(1ms, [&l, &r] { check(l, r); });
            }
        };
        Poll::check(loop, received);
    });
    loop.run_forever();
    for (auto& t : posters)
        t.join();
    CHECK(received == threads * per_thread);
    CHECK(all_on_loop_thread);
    deadline.cancel();
}
