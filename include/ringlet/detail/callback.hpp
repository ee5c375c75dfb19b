// CallbackState: a plain callback scheduled with call_soon/call_later/call_at. Reference counted
// between the loop (while queued or in the timer heap) and the user's Handle. Loop thread only.
#pragma once

#include "ringlet/detail/runnable.hpp"
#include "ringlet/detail/timer_heap.hpp"

#include <cstdint>
#include <functional>

namespace ringlet {
class EventLoop;
}

namespace ringlet::detail {

class CallbackState final : public Runnable {
  public:
    CallbackState(EventLoop& loop, std::function<void()> callback)
        : loop_(&loop), callback_(std::move(callback)) {}

    void run() override;
    std::string describe() const override { return "callback"; }
    void abandon() noexcept override;

    void cancel() noexcept;
    bool cancelled() const noexcept { return cancelled_; }

    void set_timer(TimerId id, std::chrono::steady_clock::time_point when) noexcept {
        timer_ = id;
        when_ = when;
        in_timer_heap_ = true;
    }
    void timer_fired() noexcept { in_timer_heap_ = false; }
    std::chrono::steady_clock::time_point when() const noexcept { return when_; }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0)
            delete this;
    }

  private:
    EventLoop* loop_;
    std::function<void()> callback_;
    TimerId timer_;
    std::chrono::steady_clock::time_point when_{};
    std::uint32_t refs_ = 1;
    bool cancelled_ = false;
    bool in_timer_heap_ = false;
};

} // namespace ringlet::detail
