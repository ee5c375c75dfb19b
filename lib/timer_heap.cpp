// Timer heap design: heap entries are (deadline, sequence, slot); slots hold the target and a
// generation so a TimerId that outlived its timer cancels nothing. A slot is freed when its
// entry leaves the heap (fired, popped as cancelled, or dropped by compaction), never before,
// so a heap entry always names a slot that is still its own.
#include "ringlet/detail/timer_heap.hpp"

#include <algorithm>
#include <cassert>

namespace ringlet::detail {

TimerId TimerHeap::schedule(time_point when, Runnable* target) {
    assert(target != nullptr);
    std::uint32_t slot;
    if (free_head_ != UINT32_MAX) {
        slot = free_head_;
        free_head_ = slots_[slot].next_free;
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    slots_[slot].target = target;
    heap_.push_back(Entry{when, next_sequence_++, slot});
    std::push_heap(heap_.begin(), heap_.end(), later);
    return TimerId{slot, slots_[slot].generation};
}

bool TimerHeap::cancel(TimerId id) noexcept {
    if (id.slot >= slots_.size())
        return false;
    Slot& s = slots_[id.slot];
    if (s.generation != id.generation || s.target == nullptr)
        return false;
    s.target = nullptr;
    ++cancelled_;
    return true;
}

void TimerHeap::housekeeping() {
    if (heap_.size() > compaction_threshold && cancelled_ * 2 > heap_.size()) {
        auto live_end = std::partition(heap_.begin(), heap_.end(), [this](const Entry& e) {
            return slots_[e.slot].target != nullptr;
        });
        for (auto it = live_end; it != heap_.end(); ++it)
            free_slot(it->slot);
        heap_.erase(live_end, heap_.end());
        std::make_heap(heap_.begin(), heap_.end(), later);
        cancelled_ = 0;
        return;
    }
    while (!heap_.empty() && slots_[heap_.front().slot].target == nullptr) {
        --cancelled_;
        pop_top();
    }
}

std::optional<TimerHeap::time_point> TimerHeap::next_deadline() const noexcept {
    if (heap_.empty())
        return std::nullopt;
    return heap_.front().when;
}

Runnable* TimerHeap::pop_due(time_point limit) noexcept {
    while (!heap_.empty()) {
        const Entry& top = heap_.front();
        Runnable* target = slots_[top.slot].target;
        if (target == nullptr) {
            --cancelled_;
            pop_top();
            continue;
        }
        if (!(top.when < limit))
            return nullptr;
        pop_top();
        return target;
    }
    return nullptr;
}

void TimerHeap::pop_top() noexcept {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    free_slot(heap_.back().slot);
    heap_.pop_back();
}

void TimerHeap::free_slot(std::uint32_t slot) noexcept {
    Slot& s = slots_[slot];
    s.target = nullptr;
    ++s.generation;
    s.next_free = free_head_;
    free_head_ = slot;
}

} // namespace ringlet::detail
