// sleep, sleep_until, yield_now: suspend the current task on the loop's timer heap.
// A sleeping task costs its frame plus one timer entry: the awaiter is one word (the delay or
// deadline before the suspension, the timer after it), the timer targets the task itself, and
// the task state knows a sleep without a vtable (TaskState::suspend_on_timer). Cancellation
// (TaskState::cancel) removes the timer at once (lazily in the heap) and queues the task, which
// raises CancelledError. Loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/event_loop.hpp"

#include <chrono>
#include <cstdint>

namespace ringlet {
namespace detail {

/// Sleeps until a deadline (Until) or for a delay from the moment it is awaited.
template <bool Until>
class SleepAwaiter {
  public:
    explicit SleepAwaiter(EventLoop::duration ticks) noexcept : ticks_(ticks.count()) {}

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) {
        TaskState* task = task_awaiting();
        if (task->cancel_requested())
            return false; // await_resume raises CancelledError
        EventLoop& loop = *task->loop();
        const std::int64_t ticks = ticks_;
        if (!Until && ticks <= 0) {
            // sleep(0) and negative delays yield exactly once, through the ready queue, without
            // reading the clock.
            loop.ready_queue().push(task);
            timer_ = TimerId{};
        } else {
            EventLoop::time_point now = loop.time();
            EventLoop::time_point deadline = Until
                                                 ? EventLoop::time_point(EventLoop::duration(ticks))
                                                 : now + EventLoop::duration(ticks);
            if (deadline <= now) {
                loop.ready_queue().push(task);
                timer_ = TimerId{};
            } else {
                timer_ = loop.add_timer(deadline, task);
            }
        }
        task->suspend_on_timer(&timer_, caller);
        return true;
    }
    void await_resume() {
        TaskState* task = current_task_state;
        task->clear_suspension();
        if (task->cancel_requested()) {
            task->clear_cancel_request();
            throw CancelledError();
        }
    }

  private:
    // The delay or deadline in clock ticks until the suspension, then the timer.
    union {
        std::int64_t ticks_;
        TimerId timer_;
    };
};

} // namespace detail

/// Suspends the current task for `delay` (negative acts as zero; zero yields exactly once).
/// Cancellation: raises CancelledError and removes the timer.
template <class Rep, class Period>
detail::SleepAwaiter<false> sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return detail::SleepAwaiter<false>(std::chrono::duration_cast<EventLoop::duration>(delay));
}

/// Suspends the current task until the loop's clock reaches `deadline`.
inline detail::SleepAwaiter<true> sleep_until(EventLoop::time_point deadline) noexcept {
    return detail::SleepAwaiter<true>(deadline.time_since_epoch());
}

/// Lets every other ready task run once, then resumes (asyncio's `await sleep(0)`).
inline detail::SleepAwaiter<false> yield_now() noexcept {
    return detail::SleepAwaiter<false>(EventLoop::duration::zero());
}

} // namespace ringlet
