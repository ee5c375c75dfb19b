// Handle and TimerHandle: what call_soon / call_later / call_at return, to cancel the callback.
// Thread safety: loop thread only. Lifetime: may outlive the loop (cancel() is then a no-op).
#pragma once

#include "ringlet/detail/callback.hpp"

#include <chrono>
#include <utility>

namespace ringlet {

/// A scheduled callback (asyncio.Handle).
class Handle {
  public:
    Handle() noexcept = default;
    explicit Handle(detail::CallbackState* state) noexcept : state_(state) {
        if (state_)
            state_->add_ref();
    }
    Handle(const Handle& other) noexcept : Handle(other.state_) {}
    Handle(Handle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    Handle& operator=(Handle other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }
    ~Handle() {
        if (state_)
            state_->release();
    }

    /// Prevents the callback from running if it has not run yet.
    void cancel() noexcept {
        if (state_)
            state_->cancel();
    }
    bool cancelled() const noexcept { return state_ && state_->cancelled(); }

  protected:
    detail::CallbackState* state_ = nullptr;
};

/// A callback scheduled at a time (asyncio.TimerHandle).
class TimerHandle : public Handle {
  public:
    using Handle::Handle;
    std::chrono::steady_clock::time_point when() const noexcept {
        return state_ ? state_->when() : std::chrono::steady_clock::time_point{};
    }
};

} // namespace ringlet
