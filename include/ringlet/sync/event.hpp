// Event (asyncio.Event): a flag that tasks wait on; set() wakes every waiter, clear() resets it.
// A waiter woken by set() and cancelled before it runs raises CancelledError (as in asyncio);
// a cancelled waiter leaves nothing behind. Loop thread only; the Event must outlive its waits.
#pragma once

#include "ringlet/detail/wait_list.hpp"

#include <coroutine>
#include <string>

namespace ringlet {

/// An asyncio-style event flag, initially clear.
class Event {
  public:
    /// The awaiter of wait(); it is the wait-list node, in the waiting coroutine's frame.
    class Wait final : public detail::Waiter {
      public:
        explicit Wait(Event& event) noexcept : event_(&event) {}
        bool await_ready() const noexcept { return event_->set_; }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            event_->waiters_.push_back(*this);
            return true;
        }
        void await_resume() {
            take_grant();
            leave();
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Event"; }

      private:
        Event* event_;
    };

    Event() noexcept = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// Sets the flag and wakes every waiting task (each resumes on a later loop step).
    void set() noexcept;
    /// Resets the flag; tasks already woken by set() still return from wait().
    void clear() noexcept { set_ = false; }
    bool is_set() const noexcept { return set_; }
    /// `co_await event.wait()` returns at once if the flag is set, else when set() is called.
    /// Cancellation: raises CancelledError, also when set() had already woken the waiter.
    [[nodiscard]] Wait wait() noexcept { return Wait(*this); }

  private:
    detail::WaitList waiters_;
    bool set_ = false;
};

inline void Event::set() noexcept {
    if (set_)
        return;
    set_ = true;
    while (!waiters_.empty())
        waiters_.pop_front().grant();
}

} // namespace ringlet
