// sleep, sleep_until, yield_now: suspend the current task on the loop's timer heap.
// A sleeping task costs its frame plus one heap entry. Cancellation removes the timer at once
// (lazily in the heap) and raises CancelledError. Loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/event_loop.hpp"

#include <chrono>

namespace ringlet {
namespace detail {

class SleepAwaiter final : public SuspendPoint {
  public:
    using time_point = EventLoop::time_point;

    static SleepAwaiter until(time_point deadline) noexcept { return SleepAwaiter(deadline, {}); }
    static SleepAwaiter after(EventLoop::duration delay) noexcept {
        return SleepAwaiter(std::nullopt, delay);
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) {
        if (!enter(caller))
            return false;
        EventLoop& loop = *task_->loop();
        time_point now = loop.time();
        time_point deadline = deadline_ ? *deadline_ : now + delay_;
        if (deadline <= now) {
            // sleep(0) and past deadlines yield exactly once, through the ready queue.
            loop.ready_queue().push(task_);
            queued_ = true;
        } else {
            timer_ = loop.add_timer(deadline, task_);
        }
        return true;
    }
    void await_resume() { leave(); }

    void request_cancel() noexcept override {
        EventLoop& loop = *task_->loop();
        // If the timer already fired, the task is queued already: never enqueue it twice.
        if (!queued_ && loop.cancel_timer(timer_))
            loop.ready_queue().push(task_);
        mark_cancelled();
    }
    std::string what_awaited() const override { return queued_ ? "yield" : "sleep"; }

  private:
    SleepAwaiter(std::optional<time_point> deadline, EventLoop::duration delay) noexcept
        : deadline_(deadline), delay_(delay) {}

    std::optional<time_point> deadline_;
    EventLoop::duration delay_{};
    TimerId timer_;
    bool queued_ = false;
};

} // namespace detail

/// Suspends the current task for `delay` (negative acts as zero; zero yields exactly once).
/// Cancellation: raises CancelledError and removes the timer.
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return detail::SleepAwaiter::after(std::chrono::duration_cast<EventLoop::duration>(delay));
}

/// Suspends the current task until the loop's clock reaches `deadline`.
inline detail::SleepAwaiter sleep_until(EventLoop::time_point deadline) noexcept {
    return detail::SleepAwaiter::until(deadline);
}

/// Lets every other ready task run once, then resumes (asyncio's `await sleep(0)`).
inline detail::SleepAwaiter yield_now() noexcept {
    return detail::SleepAwaiter::after(EventLoop::duration::zero());
}

} // namespace ringlet
