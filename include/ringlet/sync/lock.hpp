// Lock (asyncio.Lock): FIFO-fair mutual exclusion for tasks; `co_await lock.lock()` returns a
// LockGuard. unlock() hands the lock straight to the first waiter (locked() stays true until it
// runs; asyncio shows the lock free then but lets nobody take it). A waiter handed the lock and
// cancelled before it runs raises CancelledError and the lock goes on, as in asyncio.
// Loop thread only; the Lock must outlive its waits and guards.
#pragma once

#include "ringlet/detail/wait_list.hpp"

#include <coroutine>
#include <stdexcept>
#include <string>
#include <utility>

namespace ringlet {

class Lock;

/// Owns a held Lock and unlocks it when destroyed (std::unique_lock for tasks). Move-only.
class [[nodiscard]] LockGuard {
  public:
    LockGuard() noexcept = default;
    /// Adopts `lock`, which the caller holds.
    explicit LockGuard(Lock& lock) noexcept : lock_(&lock) {}
    LockGuard(LockGuard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
    LockGuard& operator=(LockGuard&& other) noexcept {
        if (this != &other) {
            reset();
            lock_ = std::exchange(other.lock_, nullptr);
        }
        return *this;
    }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;
    ~LockGuard() { reset(); }

    /// Unlocks now; the destructor then does nothing.
    /// Throws: std::logic_error if the guard owns no lock (already unlocked or moved from).
    inline void unlock();
    bool owns_lock() const noexcept { return lock_ != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

  private:
    inline void reset() noexcept;

    Lock* lock_ = nullptr;
};

/// An asyncio-style lock: not owned by a particular task, FIFO among waiters.
class Lock {
  public:
    /// The awaiter of lock() (Guarded: returns a LockGuard) and lock_unguarded() (returns
    /// nothing); it is the wait-list node, in the waiting coroutine's frame.
    template <bool Guarded>
    class Acquire final : public detail::Waiter {
      public:
        explicit Acquire(Lock& lock) noexcept : lock_(&lock) {}
        Acquire(const Acquire&) = delete;
        Acquire& operator=(const Acquire&) = delete;
        ~Acquire() {
            // The frame is destroyed after the lock was handed to us but before we ran.
            if (granted())
                lock_->unlock();
        }

        bool await_ready() noexcept {
            // Unlocked implies nobody waits (unlock() hands over), so this is FIFO-fair.
            if (lock_->locked_)
                return false;
            lock_->locked_ = true;
            return true;
        }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            lock_->waiters_.push_back(*this);
            return true;
        }
        auto await_resume() {
            if (take_grant() && cancelled_)
                lock_->unlock(); // granted, then cancelled before running: pass it on
            leave();
            if constexpr (Guarded)
                return LockGuard(*lock_);
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Lock"; }

      private:
        Lock* lock_;
    };

    Lock() noexcept = default;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    /// `auto guard = co_await lock.lock();` waits until the lock is free (FIFO) and takes it.
    /// Cancellation: a waiter cancelled before it got the lock raises CancelledError and never
    /// holds it; one cancelled after the lock was handed to it, before it ran, raises
    /// CancelledError too and the lock goes to the next waiter.
    [[nodiscard]] Acquire<true> lock() noexcept { return Acquire<true>(*this); }
    /// As lock(), without a guard: the caller must call unlock().
    [[nodiscard]] Acquire<false> lock_unguarded() noexcept { return Acquire<false>(*this); }

    /// Releases the lock, handing it to the first waiting task if there is one.
    /// Throws: std::logic_error if the lock is not locked.
    void unlock() {
        if (!locked_)
            throw std::logic_error("Lock::unlock() called on a Lock that is not locked");
        if (waiters_.empty())
            locked_ = false;
        else
            waiters_.pop_front().grant();
    }

    /// True while some task holds the lock (or it was handed to a task that has yet to run).
    bool locked() const noexcept { return locked_; }

    // Internal, for Condition: takes the lock for `waiter` now if it is free, else queues it;
    // either way the waiter is woken with a grant once it holds the lock.
    void acquire_for(detail::Waiter& waiter) noexcept {
        if (locked_) {
            waiters_.push_back(waiter);
        } else {
            locked_ = true;
            waiter.grant();
        }
    }

  private:
    detail::WaitList waiters_;
    bool locked_ = false;
};

inline void LockGuard::unlock() {
    if (lock_ == nullptr)
        throw std::logic_error("LockGuard::unlock() on a guard that owns no lock");
    std::exchange(lock_, nullptr)->unlock();
}

inline void LockGuard::reset() noexcept {
    // A lock already unlocked behind the guard's back (a Condition wait in a frame destroyed at
    // loop close) is left alone rather than terminating in a destructor.
    if (Lock* lock = std::exchange(lock_, nullptr); lock != nullptr && lock->locked())
        lock->unlock();
}

} // namespace ringlet
