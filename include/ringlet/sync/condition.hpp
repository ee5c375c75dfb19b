// Condition (asyncio.Condition): tasks wait, with a Lock held, until notified. wait() releases
// the lock and re-acquires it before returning -- also when cancelled, as asyncio does -- so
// the caller's LockGuard stays valid. notify() moves the waiter straight to the lock's queue.
// A waiter notified and then cancelled raises CancelledError and passes the notification on.
// Loop thread only; the Condition (and a Lock passed to it) must outlive every wait on it.
#pragma once

#include "ringlet/detail/wait_list.hpp"
#include "ringlet/sync/lock.hpp"
#include "ringlet/task.hpp"

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace ringlet {

/// An asyncio-style condition variable over a Lock (its own, or one shared with others).
class Condition {
  public:
    /// The awaiter of wait(); it is one wait-list node that moves from the condition's queue to
    /// the lock's queue, in the waiting coroutine's frame.
    class Wait final : public detail::Waiter {
      public:
        explicit Wait(Condition& condition) noexcept : condition_(&condition) {}
        bool await_ready() const {
            if (!condition_->lock_->locked())
                throw std::logic_error("Condition::wait() called without holding the lock");
            return false;
        }
        bool await_suspend(std::coroutine_handle<> caller) {
            // With a cancel pending we return at once, lock still held: as if we never waited.
            if (!enter(caller))
                return false;
            condition_->waiters_.push_back(*this);
            condition_->lock_->unlock();
            return true;
        }
        void await_resume() {
            // Here we hold the lock again (granted), or never gave it up (cancelled on entry).
            take_grant();
            if (cancelled_ && notified_)
                condition_->notify(1); // the notification we cannot use goes to another waiter
            leave();
        }
        void request_cancel(detail::TaskState&) noexcept override {
            cancelled_ = true;
            // Still waiting for a notification: queue for the lock instead. Already queued for
            // the lock (or holding it): the lock is re-acquired first, then CancelledError.
            if (in(condition_->waiters_)) {
                condition_->waiters_.remove(*this);
                condition_->lock_->acquire_for(*this);
            }
        }
        std::string what_awaited() const override {
            return in(condition_->waiters_) ? "Condition" : "Condition (re-acquiring its lock)";
        }

        // Called by notify(): the waiter now queues for the lock.
        void on_notify() noexcept {
            notified_ = true;
            condition_->lock_->acquire_for(*this);
        }

      private:
        Condition* condition_;
        bool notified_ = false;
    };

    /// A condition with its own lock.
    Condition() noexcept : lock_(&own_lock_) {}
    /// A condition over `lock`. Lifetime: `lock` must outlive the condition.
    explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    /// `auto guard = co_await cond.lock();` acquires the underlying lock (see Lock::lock()).
    [[nodiscard]] Lock::Acquire<true> lock() noexcept { return lock_->lock(); }
    /// Acquires the underlying lock without a guard.
    [[nodiscard]] Lock::Acquire<false> lock_unguarded() noexcept { return lock_->lock_unguarded(); }
    /// Releases the underlying lock. Throws: std::logic_error if it is not locked.
    void unlock() { lock_->unlock(); }
    bool locked() const noexcept { return lock_->locked(); }
    Lock& underlying_lock() noexcept { return *lock_; }

    /// `co_await cond.wait()` releases the lock, waits for notify(), re-acquires the lock.
    /// Throws: std::logic_error if the lock is not held.
    /// Cancellation: raises CancelledError once the lock is held again; a notification already
    /// received is passed to the next waiter.
    [[nodiscard]] Wait wait() noexcept { return Wait(*this); }

    /// Waits until `predicate()` is true (checked with the lock held) and returns its value.
    /// Throws: std::logic_error if the lock is not held when a wait is needed.
    /// Lifetime: the condition must outlive the returned Task.
    template <class Predicate>
    Task<std::decay_t<std::invoke_result_t<Predicate&>>> wait_for(Predicate predicate) {
        auto result = predicate();
        while (!result) {
            Wait waiting = wait();
            co_await waiting;
            result = predicate();
        }
        co_return result;
    }

    /// Wakes up to `n` waiting tasks (FIFO); each returns from wait() once it holds the lock.
    /// Throws: std::logic_error if the lock is not held.
    void notify(std::size_t n = 1) {
        if (!lock_->locked())
            throw std::logic_error("Condition::notify() called without holding the lock");
        for (; n > 0 && !waiters_.empty(); --n)
            static_cast<Wait&>(waiters_.pop_front()).on_notify();
    }
    /// Wakes every waiting task. Throws: std::logic_error if the lock is not held.
    void notify_all() { notify(waiters_.size()); }

  private:
    Lock own_lock_;
    Lock* lock_;
    detail::WaitList waiters_;
};

} // namespace ringlet
