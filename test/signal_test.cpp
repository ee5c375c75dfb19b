// Tests of wait_signal: the signal number comes back whether the signal is raised at the thread
// from a loop callback, sent by another thread, or already pending; the thread's signal mask is
// restored afterwards (and left alone for signals it blocked itself), also after cancellation
// and with overlapping waits; bad signal sets are rejected at the call.
#include "support.hpp"

#include <csignal>
#include <pthread.h>
#include <ringlet/signal.hpp>
#include <ringlet/wait_for.hpp>
#include <thread>

namespace {

using namespace ringlet::test;
using ringlet::EventLoop;
using ringlet::Task;

bool blocked(int signal) {
    sigset_t current;
    pthread_sigmask(SIG_SETMASK, nullptr, &current);
    return sigismember(&current, signal) == 1;
}

/// Yields until the task behind `handle` is suspended in its signalfd read.
Task<> until_waiting(const ringlet::TaskHandle& handle) {
    for (int i = 0; i < 100 && handle.state().find("signal") == std::string::npos; ++i)
        co_await ringlet::yield_now();
    REQUIRE_THAT(handle.state(), Catch::Contains("signal"));
}

} // namespace

TEST_CASE("wait_signal returns the number of a signal raised at the thread by a callback",
          "[signal]") {
    REQUIRE_FALSE(blocked(SIGUSR2));
    struct Seen {
        int signal = 0;
        bool blocked_while_waiting = false;
    } seen;
    run_real([](Seen& s) -> Task<> {
        auto waiter = ringlet::spawn(ringlet::wait_signal({SIGUSR1, SIGUSR2}));
        co_await until_waiting(waiter);
        s.blocked_while_waiting = blocked(SIGUSR1) && blocked(SIGUSR2);
        EventLoop::current().call_soon([] { ::raise(SIGUSR2); });
        s.signal = co_await ringlet::wait_for(std::move(waiter), 10s);
    }(seen));
    CHECK(seen.blocked_while_waiting);
    CHECK(seen.signal == SIGUSR2);
    CHECK_FALSE(blocked(SIGUSR1));
    CHECK_FALSE(blocked(SIGUSR2));
}

TEST_CASE("wait_signal returns a signal another thread sends with pthread_kill", "[signal]") {
    int got = 0;
    run_real([](int& got) -> Task<> {
        auto waiter = ringlet::spawn(ringlet::wait_signal({SIGTERM}));
        co_await until_waiting(waiter);
        pthread_t loop_thread = pthread_self();
        std::thread sender([loop_thread] { pthread_kill(loop_thread, SIGTERM); });
        got = co_await ringlet::wait_for(std::move(waiter), 10s);
        sender.join();
    }(got));
    CHECK(got == SIGTERM);
    CHECK_FALSE(blocked(SIGTERM));
}

TEST_CASE("wait_signal returns at once a signal that was pending before it started, and "
          "leaves a signal the thread blocked itself blocked",
          "[signal]") {
    sigset_t usr1, previous;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &previous);
    ::raise(SIGUSR1); // stays pending: blocked
    int got = run_real(ringlet::wait_signal({SIGUSR1}));
    bool still_blocked = blocked(SIGUSR1);
    sigset_t pending;
    sigpending(&pending);
    bool still_pending = sigismember(&pending, SIGUSR1) == 1;
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    CHECK(got == SIGUSR1);
    CHECK(still_blocked);
    CHECK_FALSE(still_pending); // the wait consumed it
}

TEST_CASE("a cancelled wait_signal raises CancelledError and unblocks its signals",
          "[signal][cancel]") {
    bool cancelled = false;
    bool blocked_while_waiting = false;
    run_real([](bool& cancelled, bool& was_blocked) -> Task<> {
        auto waiter = ringlet::spawn(ringlet::wait_signal({SIGUSR1}));
        co_await until_waiting(waiter);
        was_blocked = blocked(SIGUSR1);
        waiter.cancel();
        try {
            co_await waiter;
        } catch (const ringlet::CancelledError&) {
            cancelled = true;
        }
    }(cancelled, blocked_while_waiting));
    CHECK(blocked_while_waiting);
    CHECK(cancelled);
    CHECK_FALSE(blocked(SIGUSR1));
}

TEST_CASE("overlapping waits keep a signal blocked until the last of them finishes", "[signal]") {
    struct Seen {
        bool blocked_after_first_ended = false;
        int second = 0;
    } seen;
    run_real([](Seen& s) -> Task<> {
        auto first = ringlet::spawn(ringlet::wait_signal({SIGUSR1}));
        auto second = ringlet::spawn(ringlet::wait_signal({SIGUSR1, SIGUSR2}));
        co_await until_waiting(first);
        co_await until_waiting(second);
        first.cancel();
        try {
            co_await first;
        } catch (const ringlet::CancelledError&) {
        }
        s.blocked_after_first_ended = blocked(SIGUSR1);
        EventLoop::current().call_soon([] { ::raise(SIGUSR1); });
        s.second = co_await ringlet::wait_for(std::move(second), 10s);
    }(seen));
    CHECK(seen.blocked_after_first_ended);
    CHECK(seen.second == SIGUSR1);
    CHECK_FALSE(blocked(SIGUSR1));
    CHECK_FALSE(blocked(SIGUSR2));
}

TEST_CASE("wait_signal rejects an empty set and signals that cannot be caught at the call",
          "[signal]") {
    CHECK_THROWS_WITH(ringlet::wait_signal({}), Catch::Contains("empty signal set"));
    CHECK_THROWS_WITH(ringlet::wait_signal({SIGINT, SIGKILL}),
                      Catch::Contains("signal " + std::to_string(SIGKILL)));
    CHECK_THROWS_AS(ringlet::wait_signal({SIGSTOP}), std::invalid_argument);
    CHECK_THROWS_AS(ringlet::wait_signal({0}), std::invalid_argument);
    CHECK_THROWS_AS(ringlet::wait_signal({NSIG}), std::invalid_argument);
}
