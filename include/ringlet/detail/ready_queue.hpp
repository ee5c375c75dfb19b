// ReadyQueue: the loop's FIFO of tasks and runnables (Ready), a growable power-of-two ring
// buffer. Its storage grows like PodArray's (by mremap once large), so a burst of a million
// spawns never holds two copies of the queue. Thread safety: loop thread only. No allocation
// once it has grown to its working size.
#pragma once

#include "ringlet/detail/pod_array.hpp"
#include "ringlet/detail/runnable.hpp"

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringlet::detail {

class ReadyQueue {
  public:
    ReadyQueue() {
        slots_ = static_cast<std::uintptr_t*>(
            grow_pod_storage(nullptr, 0, 0, initial_capacity * sizeof(std::uintptr_t)));
    }
    ReadyQueue(const ReadyQueue&) = delete;
    ReadyQueue& operator=(const ReadyQueue&) = delete;
    ~ReadyQueue() { free_pod_storage(slots_, capacity() * sizeof(std::uintptr_t)); }

    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return tail_ - head_; }
    std::size_t capacity() const noexcept { return mask_ + 1; }

    void push(Ready item) {
        assert(item);
        if (size() == capacity())
            grow();
        slots_[tail_++ & mask_] = item.bits();
    }

    Ready pop() noexcept {
        assert(!empty());
        return Ready::from_bits(slots_[head_++ & mask_]);
    }

  private:
    static constexpr std::size_t initial_capacity = 256;

    /// Doubles the capacity of the full queue: the storage keeps its contents, and the items
    /// that wrapped around to the start move behind the old end.
    void grow() {
        const std::size_t old_capacity = capacity();
        const std::size_t bytes = old_capacity * sizeof(std::uintptr_t);
        slots_ = static_cast<std::uintptr_t*>(grow_pod_storage(slots_, bytes, bytes, 2 * bytes));
        const std::size_t first = head_ & mask_;
        std::memcpy(slots_ + old_capacity, slots_, first * sizeof(std::uintptr_t));
        head_ = first;
        tail_ = first + old_capacity;
        mask_ = 2 * old_capacity - 1;
    }

    std::uintptr_t* slots_; // Ready::bits(); only the slots from head to tail are meaningful
    std::size_t mask_ = initial_capacity - 1;
    std::size_t head_ = 0; // monotonically increasing; index with & mask_
    std::size_t tail_ = 0;
};

} // namespace ringlet::detail
