// ReadyQueue: the loop's FIFO of tasks and runnables (Ready), a growable power-of-two ring buffer.
// Thread safety: loop thread only. No allocation once it has grown to its working size.
#pragma once

#include "ringlet/detail/runnable.hpp"

#include <cassert>
#include <cstddef>
#include <memory>
#include <utility>

namespace ringlet::detail {

class ReadyQueue {
  public:
    ReadyQueue() : slots_(std::make_unique<Ready[]>(initial_capacity)) {}

    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }
    std::size_t capacity() const noexcept { return mask_ + 1; }

    void push(Ready item) {
        assert(item);
        if (size() == capacity())
            grow();
        slots_[tail_++ & mask_] = item;
    }

    Ready pop() noexcept {
        assert(!empty());
        return slots_[head_++ & mask_];
    }

  private:
    static constexpr std::size_t initial_capacity = 256;

    void grow() {
        std::size_t n = size();
        auto bigger = std::make_unique<Ready[]>(capacity() * 2);
        for (std::size_t i = 0; i < n; ++i)
            bigger[i] = slots_[(head_ + i) & mask_];
        slots_ = std::move(bigger);
        mask_ = mask_ * 2 + 1;
        head_ = 0;
        tail_ = n;
    }

    std::unique_ptr<Ready[]> slots_;
    std::size_t mask_ = initial_capacity - 1;
    std::size_t head_ = 0; // monotonically increasing; index with & mask_
    std::size_t tail_ = 0;
};

} // namespace ringlet::detail
