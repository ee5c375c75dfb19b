// Tests for thread.hpp: to_thread, run_in_executor, ThreadPool, call_soon_threadsafe, and the
// loop's foreign-thread checks.
#include "support.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ringlet;
using namespace ringlet::test;
using Clock = std::chrono::steady_clock;

/// A one-shot flag a worker can wait on with a bound, so that a failing test cannot hang.
class Gate {
  public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    /// True if the gate opened within `limit`.
    bool wait(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [this] { return open_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

std::string id_text(std::thread::id id) {
    std::ostringstream out;
    out << id;
    return out.str();
}

/// Polls `flag` with real 1 ms sleeps on the loop, at most ~5 s.
Task<bool> wait_until_set(const std::atomic<bool>& flag) {
    for (int i = 0; i < 5000 && !flag.load(); ++i)
        co_await ringlet::sleep(std::chrono::milliseconds(1));
    co_return flag.load();
}

class CustomError : public std::runtime_error {
  public:
    explicit CustomError(int code) : std::runtime_error("custom failure"), code(code) {}
    int code;
};

int square(int x) {
    return x * x;
}

} // namespace

TEST_CASE("to_thread returns the function's value computed on another thread", "[thread]") {
    std::thread::id loop_thread = std::this_thread::get_id();
    std::thread::id worker_thread;
    int result = run_real([&]() -> Task<int> {
        int v = co_await to_thread([&] {
            worker_thread = std::this_thread::get_id();
            return 6 * 7;
        });
        co_return v;
    }());
    CHECK(result == 42);
    CHECK(worker_thread != std::thread::id());
    CHECK(worker_thread != loop_thread);
}

TEST_CASE("to_thread accepts a plain function and arguments", "[thread]") {
    int result = run_real([]() -> Task<int> {
        int v = co_await to_thread(square, 9);
        co_return v;
    }());
    CHECK(result == 81);
}

TEST_CASE("to_thread of a void function runs it and returns", "[thread]") {
    std::atomic<bool> ran{false};
    std::thread::id worker_thread;
    run_real([&]() -> Task<> {
        co_await to_thread([&] {
            worker_thread = std::this_thread::get_id();
            ran = true;
        });
        CHECK(ran.load()); // delivered after the function finished
    }());
    CHECK(ran.load());
    CHECK(worker_thread != std::this_thread::get_id());
}

TEST_CASE("to_thread rethrows the function's exception with its type and message", "[thread]") {
    run_real([]() -> Task<> {
        bool caught_standard = false;
        try {
            co_await to_thread([]() -> int { throw std::out_of_range("index 7 out of range"); });
        } catch (const std::out_of_range& e) {
            caught_standard = true;
            CHECK(std::string(e.what()) == "index 7 out of range");
        }
        CHECK(caught_standard);

        bool caught_custom = false;
        try {
            co_await to_thread([] { throw CustomError(17); });
        } catch (const CustomError& e) {
            caught_custom = true;
            CHECK(e.code == 17);
            CHECK(std::string(e.what()) == "custom failure");
        }
        CHECK(caught_custom);
    }());
}

TEST_CASE("to_thread decay-copies its arguments like std::thread", "[thread]") {
    run_real([]() -> Task<> {
        std::string text = "before";
        Task<std::size_t> pending = to_thread([](const std::string& s) { return s.size(); }, text);
        text = "changed after the call, before the await";
        std::size_t n = co_await pending;
        CHECK(n == std::string("before").size());

        // Move-only arguments are moved into the job and passed as rvalues.
        auto owned = std::make_unique<int>(5);
        int v = co_await to_thread([](std::unique_ptr<int> p) { return *p * 2; }, std::move(owned));
        CHECK(v == 10);

        // std::ref passes a reference, for an object that outlives the call.
        int counter = 1;
        co_await to_thread([](int& c) { c += 41; }, std::ref(counter));
        CHECK(counter == 42);
    }());
}

TEST_CASE("to_thread returns an lvalue reference result as a reference", "[thread]") {
    static int shared_value = 3;
    run_real([]() -> Task<> {
        int& r = co_await to_thread([]() -> int& { return shared_value; });
        CHECK(&r == &shared_value);
    }());
}

TEST_CASE("200 concurrent to_thread calls all return their own results", "[thread]") {
    constexpr int count = 200;
    std::vector<long> results = run_real([]() -> Task<std::vector<long>> {
        std::vector<JoinHandle<long>> handles;
        for (int i = 0; i < count; ++i)
            handles.push_back(spawn(to_thread(
                [](int x) {
                    std::this_thread::sleep_for(std::chrono::microseconds(100));
                    return static_cast<long>(x) * x + 1;
                },
                i)));
        std::vector<long> out;
        for (auto& h : handles) {
            long v = co_await h;
            out.push_back(v);
        }
        co_return out;
    }());
    REQUIRE(results.size() == static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i)
        CHECK(results[i] == static_cast<long>(i) * i + 1);
}

TEST_CASE("cancelling a task awaiting a slow to_thread raises CancelledError before the "
          "function finishes",
          "[thread][cancel]") {
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    Gate gate;
    bool got_cancelled = false;
    bool finished_at_cancel = true;
    bool result_seen = false;
    Clock::duration cancel_latency{};
    run_real([&]() -> Task<> {
        // Named, so that the closure outlives the coroutine that refers to it.
        auto waiter_body = [&]() -> Task<> {
            int v = co_await to_thread([&] {
                started = true;
                gate.wait(); // ~blocks until the test opens the gate (bounded: 5 s)
                finished = true;
                return 1;
            });
            result_seen = v == 1; // must not happen: the task was cancelled
        };
        auto waiter = spawn(waiter_body());
        bool fn_started = co_await wait_until_set(started);
        REQUIRE(fn_started);
        auto cancelled_at = Clock::now();
        waiter.cancel();
        try {
            co_await waiter;
        } catch (const CancelledError&) {
            got_cancelled = true;
        }
        cancel_latency = Clock::now() - cancelled_at;
        finished_at_cancel = finished.load();
        gate.open(); // fn may finish now; its result is dropped
        co_await ringlet::sleep(std::chrono::milliseconds(20));
    }());
    // run() closed the loop, which joined the default executor: fn has completed.
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cancel_latency).count();
    INFO("CancelledError arrived " << ms << " ms after cancel()");
    CHECK(got_cancelled);
    CHECK_FALSE(finished_at_cancel);
    CHECK_FALSE(result_seen);
    CHECK(finished.load());
    CHECK(ms < 1000);
}

TEST_CASE("a to_thread job still running when the loop closes finishes safely", "[thread]") {
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    run_real([&]() -> Task<> {
        // Detached: run() cancels it at close while the function sleeps.
        spawn(to_thread([&] {
            started = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            finished = true;
            return std::string(1000, 'x'); // dropped after the loop closed its inbox
        }));
        bool fn_started = co_await wait_until_set(started);
        CHECK(fn_started);
    }());
    // close() joined the default executor, so the job ran to its end.
    CHECK(finished.load());
}

TEST_CASE("a run_in_executor job may outlive its loop on a user pool", "[thread]") {
    ThreadPool pool(1);
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    Gate gate;
    {
        EventLoop loop(options());
        loop.run_until_complete([&]() -> Task<> {
            spawn(run_in_executor(pool, [&] {
                started = true;
                gate.wait();
                finished = true;
                return std::vector<int>(100, 1);
            }));
            bool fn_started = co_await wait_until_set(started);
            CHECK(fn_started);
        }());
        loop.close(); // cancels the detached task; the job keeps running on the pool
        CHECK_FALSE(finished.load());
    } // the loop is destroyed here
    gate.open();
    pool.shutdown(); // the job posts its result to the closed inbox, which drops it
    CHECK(finished.load());
}

TEST_CASE("a to_thread cancelled before its job started never runs the function",
          "[thread][cancel]") {
    ThreadPool pool(1);
    Gate blocker_gate;
    std::atomic<bool> blocker_running{false};
    std::atomic<bool> ran{false};
    pool.submit([&] {
        blocker_running = true;
        blocker_gate.wait();
    });
    bool got_cancelled = false;
    run_real([&]() -> Task<> {
        bool blocked = co_await wait_until_set(blocker_running);
        REQUIRE(blocked);
        auto waiter = spawn(run_in_executor(pool, [&] { ran = true; }));
        co_await yield_now(); // the waiter submits its job, queued behind the blocker
        CHECK(waiter.state() == "awaiting to_thread");
        waiter.cancel();
        try {
            co_await waiter;
        } catch (const CancelledError&) {
            got_cancelled = true;
        }
    }());
    blocker_gate.open();
    pool.shutdown();
    CHECK(got_cancelled);
    CHECK_FALSE(ran.load());
}

TEST_CASE("a task whose cancel is pending raises CancelledError at to_thread without "
          "submitting",
          "[thread][cancel]") {
    std::atomic<bool> ran{false};
    bool got_cancelled = false;
    run_real([&]() -> Task<> {
        // Named, so that the closure outlives the coroutine that refers to it.
        auto child_body = [&]() -> Task<> {
            current_task().cancel();
            try {
                co_await to_thread([&] { ran = true; });
            } catch (const CancelledError&) {
                got_cancelled = true;
                throw;
            }
        };
        auto child = spawn(child_body());
        try {
            co_await child;
        } catch (const CancelledError&) {
        }
    }());
    CHECK(got_cancelled);
    CHECK_FALSE(ran.load());
}

TEST_CASE("a cancel arriving after the result was delivered returns the result and stays "
          "pending",
          "[thread][cancel]") {
    // One worker runs, in order: a blocker, the awaited job (posts its delivery), and a job
    // posting the cancel. The loop thread is held until both posts are queued, so the loop
    // sees the delivery and then the cancel in the same batch, before the task resumes.
    ThreadPool pool(1);
    Gate blocker_gate;
    std::atomic<bool> cancel_posted{false};
    int value = 0;
    bool cancelled_at_next_suspension = false;
    bool child_cancelled = false;
    run_real([&]() -> Task<> {
        EventLoop& loop = EventLoop::current();
        pool.submit([&] { blocker_gate.wait(); });
        // Named, so that the closure outlives the coroutine that refers to it.
        auto child_body = [&]() -> Task<> {
            value = co_await run_in_executor(pool, [] { return 42; });
            try {
                co_await yield_now();
            } catch (const CancelledError&) {
                cancelled_at_next_suspension = true;
                throw;
            }
        };
        auto child = spawn(child_body());
        co_await yield_now(); // the child submits its job
        TaskHandle* target = &child;
        pool.submit([&loop, &cancel_posted, target] {
            call_soon_threadsafe(loop, [target] { target->cancel(); });
            cancel_posted = true;
        });
        blocker_gate.open();
        for (int i = 0; i < 5000 && !cancel_posted.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1)); // holds the loop
        REQUIRE(cancel_posted.load());
        try {
            co_await child;
        } catch (const CancelledError&) {
            child_cancelled = true;
        }
    }());
    CHECK(value == 42);
    CHECK(cancelled_at_next_suspension);
    CHECK(child_cancelled);
}

TEST_CASE("run_in_executor runs jobs concurrently on the given pool's threads", "[thread]") {
    ThreadPool pool(2);
    CHECK(pool.size() == 2);
    std::atomic<int> arrived{0};
    auto rendezvous = [&arrived] {
        ++arrived;
        // Both jobs must run at the same time for this to succeed within the bound.
        for (int i = 0; i < 5000 && arrived.load() < 2; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return std::make_pair(std::this_thread::get_id(), arrived.load() == 2);
    };
    auto [a, b] = run_real(
        [&]()
            -> Task<std::pair<std::pair<std::thread::id, bool>, std::pair<std::thread::id, bool>>> {
            auto first = spawn(run_in_executor(pool, rendezvous));
            auto second = spawn(run_in_executor(pool, rendezvous));
            auto ra = co_await first;
            auto rb = co_await second;
            co_return std::make_pair(ra, rb);
        }());
    CHECK(a.second);
    CHECK(b.second);
    CHECK(a.first != b.first);
    CHECK(a.first != std::this_thread::get_id());
    CHECK(b.first != std::this_thread::get_id());
}

TEST_CASE("run_in_executor on a shut-down pool throws std::logic_error", "[thread]") {
    ThreadPool pool(1);
    pool.shutdown();
    bool threw = false;
    std::string message;
    run_real([&]() -> Task<> {
        try {
            co_await run_in_executor(pool, [] { return 1; });
        } catch (const std::logic_error& e) {
            threw = true;
            message = e.what();
        }
        // The loop and its default executor keep working.
        int v = co_await to_thread([] { return 2; });
        CHECK(v == 2);
    }());
    CHECK(threw);
    CHECK(message.find("shutdown") != std::string::npos);
}

TEST_CASE("ThreadPool of zero threads throws std::invalid_argument", "[thread]") {
    CHECK_THROWS_AS(ThreadPool(0), std::invalid_argument);
}

TEST_CASE("ThreadPool default size is at least 4", "[thread]") {
    CHECK(ThreadPool::default_size() >= 4);
    CHECK(ThreadPool::default_size() >= std::thread::hardware_concurrency());
    ThreadPool pool;
    CHECK(pool.size() == ThreadPool::default_size());
}

TEST_CASE("ThreadPool shutdown runs the queued jobs and rejects new ones", "[thread]") {
    std::atomic<int> done{0};
    ThreadPool pool(2);
    for (int i = 0; i < 50; ++i)
        pool.submit([&done] {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            ++done;
        });
    pool.shutdown();
    CHECK(done.load() == 50);
    CHECK_THROWS_AS(pool.submit([] {}), std::logic_error);
    pool.shutdown(); // idempotent
}

TEST_CASE("ThreadPool shutdown from one of its own jobs does not deadlock", "[thread]") {
    std::atomic<bool> second_ran{false};
    std::atomic<bool> submit_rejected{false};
    {
        ThreadPool pool(1);
        Gate gate;
        pool.submit([&] {
            gate.wait();
            pool.shutdown(); // cannot join itself: only stops accepting jobs
            try {
                pool.submit([] {});
            } catch (const std::logic_error&) {
                submit_rejected = true;
            }
        });
        pool.submit([&] { second_ran = true; }); // queued before the shutdown: still runs
        gate.open();
    } // the destructor joins
    CHECK(submit_rejected.load());
    CHECK(second_ran.load());
}

TEST_CASE("call_soon_threadsafe wakes a loop blocked on a long timer", "[thread]") {
    EventLoop loop(options());
    bool timer_fired = false;
    bool ran = false;
    Clock::time_point posted_at;
    Clock::duration latency{};
    loop.call_later(std::chrono::seconds(10), [&] {
        timer_fired = true;
        loop.stop();
    });
    std::thread poster([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50)); // let the loop block
        posted_at = Clock::now(); // ordered before the callback by the inbox's mutex
        call_soon_threadsafe(loop, [&] {
            latency = Clock::now() - posted_at;
            ran = true;
            loop.stop();
        });
    });
    auto started = Clock::now();
    loop.run_forever();
    auto total = Clock::now() - started;
    poster.join();
    loop.close();
    auto ms = std::chrono::duration<double, std::milli>(latency).count();
    INFO("callback ran " << ms << " ms after call_soon_threadsafe");
    if (ms >= 100)
        WARN("call_soon_threadsafe wake-up took " << ms << " ms (expected < 100 ms)");
    CHECK(ran);
    CHECK_FALSE(timer_fired);
    CHECK(ms < 1000);
    CHECK(total < std::chrono::seconds(5));
}

TEST_CASE("call_soon_threadsafe from 4 threads runs each of 4000 callbacks exactly once",
          "[thread]") {
    constexpr int threads = 4;
    constexpr int per_thread = 1000;
    EventLoop loop(options());
    std::vector<int> runs(threads * per_thread, 0); // loop thread only
    int total = 0;
    bool timed_out = false;
    loop.call_later(std::chrono::seconds(20), [&] {
        timed_out = true;
        loop.stop();
    });
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                call_soon_threadsafe(loop, [&, slot = t * per_thread + i] {
                    ++runs[slot];
                    if (++total == threads * per_thread)
                        loop.stop();
                });
        });
    loop.run_forever();
    for (auto& p : posters)
        p.join();
    // A last post, FIFO after all others: once it ran, any duplicate would have run too.
    bool marker_ran = false;
    call_soon_threadsafe(loop, [&] {
        marker_ran = true;
        loop.stop();
    });
    loop.run_forever();
    CHECK(marker_ran);
    loop.close();
    CHECK_FALSE(timed_out);
    CHECK(total == threads * per_thread);
    int wrong = 0;
    for (int r : runs)
        wrong += r != 1;
    CHECK(wrong == 0);
}

TEST_CASE("call_soon_threadsafe after close is ignored", "[thread]") {
    EventLoop loop(options());
    loop.close();
    std::atomic<int> ran{0};
    call_soon_threadsafe(loop, [&] { ++ran; });
    std::thread other([&] { call_soon_threadsafe(loop, [&] { ++ran; }); });
    other.join();
    CHECK(ran.load() == 0);
    CHECK(loop.is_closed());
}

TEST_CASE("in debug mode a loop touched from a foreign thread throws std::logic_error naming "
          "the threads",
          "[thread][debug]") {
    EventLoop loop(options(false, true));
    REQUIRE(loop.debug());
    std::string owner = id_text(std::this_thread::get_id());
    std::string foreign;
    std::vector<std::string> messages;
    int non_logic_errors = 0;
    std::thread intruder([&] {
        foreign = id_text(std::this_thread::get_id());
        auto attempt = [&](auto&& touch) {
            try {
                touch();
                messages.emplace_back(); // no exception
            } catch (const std::logic_error& e) {
                messages.emplace_back(e.what());
            } catch (...) {
                ++non_logic_errors;
            }
        };
        attempt([&] { loop.call_soon([] {}); });
        attempt([&] { loop.call_later(std::chrono::seconds(1), [] {}); });
        attempt([&] { spawn(loop, []() -> Task<> { co_return; }()); });
    });
    intruder.join();
    CHECK(non_logic_errors == 0);
    REQUIRE(messages.size() == 3);
    CHECK(messages[0].find("call_soon") != std::string::npos);
    CHECK(messages[1].find("call_at") != std::string::npos);
    CHECK(messages[2].find("spawn") != std::string::npos);
    for (const std::string& m : messages) {
        INFO(m);
        CHECK(m.find(foreign) != std::string::npos);
        CHECK(m.find(owner) != std::string::npos);
    }
    // Nothing was scheduled by the rejected calls; the owner thread still may.
    CHECK(loop.stats().timers_pending == 0);
    CHECK(loop.stats().live_tasks == 0);
    bool owner_ran = false;
    loop.call_soon([&] { owner_ran = true; });
    loop.run_once();
    CHECK(owner_ran);
    CHECK(loop.stats().handles_run == 1);
    loop.close();
}

TEST_CASE("run_forever and close from a foreign thread throw even without debug mode",
          "[thread][debug]") {
    EventLoop loop(options(false, false));
    loop.set_debug(false);
    std::string run_error;
    std::string close_error;
    std::thread intruder([&] {
        try {
            loop.run_forever();
        } catch (const std::logic_error& e) {
            run_error = e.what();
        }
        try {
            loop.close();
        } catch (const std::logic_error& e) {
            close_error = e.what();
        }
    });
    intruder.join();
    CHECK(run_error.find("run_forever") != std::string::npos);
    CHECK(close_error.find("close") != std::string::npos);
    CHECK_FALSE(loop.is_closed());
    loop.close();
    CHECK(loop.is_closed());
}

TEST_CASE("virtual time does not jump past a timer while a to_thread job runs",
          "[thread][virtual_time]") {
    std::vector<std::string> events;
    run_virtual([&]() -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto start = loop.time();
        auto timer = loop.call_later(std::chrono::hours(1), [&] { events.push_back("timer"); });
        // Named, so that the closure outlives the coroutine that refers to it.
        auto sleeper_body = [&]() -> Task<> {
            co_await ringlet::sleep(std::chrono::hours(1));
            events.push_back("sleeper");
        };
        auto sleeper = spawn(sleeper_body());
        int v = co_await to_thread([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return 7;
        });
        events.push_back("result " + std::to_string(v));
        CHECK(loop.time() - start < std::chrono::minutes(1));
        // With the job delivered, nothing external remains: the clock jumps to the timers.
        co_await sleeper;
        CHECK(loop.time() - start >= std::chrono::hours(1));
        co_await yield_now();
        timer.cancel();
    }());
    REQUIRE(events.size() == 3);
    CHECK(events[0] == "result 7");
}
