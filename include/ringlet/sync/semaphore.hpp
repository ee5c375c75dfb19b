// Semaphore and BoundedSemaphore (asyncio's): permits that tasks acquire, waiting in FIFO order
// while none is free. release() hands a permit straight to the first waiter; one handed a permit
// and cancelled before it runs raises CancelledError and the permit goes to the next waiter (or
// back to the counter), as in asyncio. Loop thread only; the semaphore outlives waits and guards.
#pragma once

#include "ringlet/detail/wait_list.hpp"

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace ringlet {

class Semaphore;

/// Owns one permit of a Semaphore and releases it when destroyed. Move-only.
class [[nodiscard]] SemaphoreGuard {
  public:
    SemaphoreGuard() noexcept = default;
    /// Adopts one permit of `semaphore`, which the caller acquired.
    explicit SemaphoreGuard(Semaphore& semaphore) noexcept : semaphore_(&semaphore) {}
    SemaphoreGuard(SemaphoreGuard&& other) noexcept
        : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
    SemaphoreGuard& operator=(SemaphoreGuard&& other) noexcept {
        if (this != &other) {
            reset();
            semaphore_ = std::exchange(other.semaphore_, nullptr);
        }
        return *this;
    }
    SemaphoreGuard(const SemaphoreGuard&) = delete;
    SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;
    ~SemaphoreGuard() { reset(); }

    /// Releases the permit now; the destructor then does nothing.
    /// Throws: std::logic_error if the guard owns no permit (released already or moved from).
    inline void release();
    bool owns_permit() const noexcept { return semaphore_ != nullptr; }
    explicit operator bool() const noexcept { return owns_permit(); }

  private:
    inline void reset() noexcept;

    Semaphore* semaphore_ = nullptr;
};

/// An asyncio-style semaphore. The permit count never goes below zero.
class Semaphore {
  public:
    /// The awaiter of acquire() (Guarded: returns a SemaphoreGuard) and acquire_unguarded()
    /// (returns nothing); it is the wait-list node, in the waiting coroutine's frame.
    template <bool Guarded>
    class Acquire final : public detail::Waiter {
      public:
        explicit Acquire(Semaphore& semaphore) noexcept : semaphore_(&semaphore) {}
        Acquire(const Acquire&) = delete;
        Acquire& operator=(const Acquire&) = delete;
        ~Acquire() {
            // The frame is destroyed after a permit was handed to us but before we ran.
            if (granted())
                semaphore_->give_back();
        }

        bool await_ready() noexcept {
            // A free permit implies nobody waits (release() hands over), so this is FIFO-fair.
            if (semaphore_->value_ == 0)
                return false;
            --semaphore_->value_;
            return true;
        }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            semaphore_->waiters_.push_back(*this);
            return true;
        }
        auto await_resume() {
            if (take_grant() && cancelled_)
                semaphore_->give_back(); // granted, then cancelled before running: pass it on
            leave();
            if constexpr (Guarded)
                return SemaphoreGuard(*semaphore_);
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Semaphore"; }

      private:
        Semaphore* semaphore_;
    };

    /// Throws: std::invalid_argument if `value` is negative.
    explicit Semaphore(std::ptrdiff_t value = 1) : Semaphore(value, -1, "Semaphore") {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    /// `auto permit = co_await sem.acquire();` takes a permit, waiting (FIFO) while none is free.
    /// Cancellation: raises CancelledError and takes no permit, also when a permit had already
    /// been handed to the waiter (it goes to the next waiter or back to the counter).
    [[nodiscard]] Acquire<true> acquire() noexcept { return Acquire<true>(*this); }
    /// As acquire(), without a guard: the caller must call release().
    [[nodiscard]] Acquire<false> acquire_unguarded() noexcept { return Acquire<false>(*this); }

    /// Returns a permit: to the first waiting task if there is one, else to the counter.
    /// Throws: std::logic_error for a BoundedSemaphore whose value would exceed its initial value.
    void release() {
        if (bound_ >= 0 && value_ >= bound_)
            throw std::logic_error("BoundedSemaphore released too many times (value " +
                                   std::to_string(value_) + " is its initial value)");
        give_back();
    }

    /// True if acquire() would wait.
    bool locked() const noexcept { return value_ == 0; }
    /// The permits free now (permits handed to woken tasks that have yet to run are not).
    std::ptrdiff_t value() const noexcept { return value_; }

  protected:
    Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound, const char* kind)
        : value_(value), bound_(bound) {
        if (value < 0)
            throw std::invalid_argument(std::string(kind) + " initial value must be >= 0, got " +
                                        std::to_string(value));
    }

  private:
    void give_back() noexcept {
        if (waiters_.empty())
            ++value_;
        else
            waiters_.pop_front().grant();
    }

    detail::WaitList waiters_;
    std::ptrdiff_t value_;
    std::ptrdiff_t bound_; // the initial value of a BoundedSemaphore, else -1
};

/// A Semaphore whose release() throws std::logic_error rather than exceed the initial value.
class BoundedSemaphore : public Semaphore {
  public:
    /// Throws: std::invalid_argument if `value` is negative.
    explicit BoundedSemaphore(std::ptrdiff_t value = 1)
        : Semaphore(value, value, "BoundedSemaphore") {}
};

inline void SemaphoreGuard::release() {
    if (semaphore_ == nullptr)
        throw std::logic_error("SemaphoreGuard::release() on a guard that owns no permit");
    std::exchange(semaphore_, nullptr)->release();
}

inline void SemaphoreGuard::reset() noexcept {
    // Cannot throw for a guard's own permit; a misuse that over-releases a BoundedSemaphore by
    // hand first ends here in std::terminate, like any exception from a destructor.
    if (Semaphore* semaphore = std::exchange(semaphore_, nullptr))
        semaphore->release();
}

} // namespace ringlet
