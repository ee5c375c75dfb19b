// Timer heap design: heap entries are (deadline, sequence, slot); slots hold the target and a
// generation so a TimerId that outlived its timer cancels nothing. A slot is freed when its
// entry leaves the heap (fired, popped as cancelled, or dropped by compaction), never before,
// so a heap entry always names a slot that is still its own. Sequence numbers are 32 bits:
// before they wrap, the heap is sorted (a sorted array is a heap) and renumbered in order, so
// equal deadlines keep their scheduling order whatever the number of timers ever scheduled.
#include "ringlet/detail/timer_heap.hpp"

#include <algorithm>
#include <cassert>

namespace ringlet::detail {

TimerId TimerHeap::schedule(time_point when, Ready target) {
    assert(target);
    std::uint32_t slot;
    if (free_head_ != UINT32_MAX) {
        slot = free_head_;
        free_head_ = targets_[slot].next_free;
    } else {
        slot = static_cast<std::uint32_t>(targets_.size());
        targets_.push_back(SlotTarget{});
        generations_.push_back(0);
    }
    targets_[slot].ready = target.bits();
    if (next_sequence_ == UINT32_MAX)
        renumber();
    heap_.push_back(Entry{when.time_since_epoch().count(), slot, next_sequence_++});
    sift_up(heap_.size() - 1);
    return TimerId{slot, generations_[slot]};
}

bool TimerHeap::cancel(TimerId id) noexcept {
    if (id.slot >= targets_.size() || generations_[id.slot] != id.generation)
        return false;
    SlotTarget& s = targets_[id.slot];
    if (s.ready == 0)
        return false;
    s.ready = 0;
    ++cancelled_;
    return true;
}

void TimerHeap::housekeeping() noexcept {
    if (heap_.size() > compaction_threshold && cancelled_ * 2 > heap_.size()) {
        auto live_end = std::partition(heap_.begin(), heap_.end(), [this](const Entry& e) {
            return targets_[e.slot].ready != 0;
        });
        for (auto* it = live_end; it != heap_.end(); ++it)
            free_slot(it->slot);
        heap_.shrink_to(static_cast<std::size_t>(live_end - heap_.begin()));
        std::make_heap(heap_.begin(), heap_.end(), later);
        cancelled_ = 0;
        return;
    }
    while (!heap_.empty() && targets_[heap_.front().slot].ready == 0) {
        --cancelled_;
        pop_top();
    }
}

std::optional<TimerHeap::time_point> TimerHeap::next_deadline() const noexcept {
    if (heap_.empty())
        return std::nullopt;
    return time_point(time_point::duration(heap_.begin()->when));
}

Ready TimerHeap::pop_due(time_point limit) noexcept {
    const std::int64_t limit_ticks = limit.time_since_epoch().count();
    while (!heap_.empty()) {
        const Entry& top = heap_.front();
        Ready target = Ready::from_bits(targets_[top.slot].ready);
        if (!target) {
            --cancelled_;
            pop_top();
            continue;
        }
        if (!(top.when < limit_ticks))
            return Ready();
        pop_top();
        return target;
    }
    return Ready();
}

void TimerHeap::sift_up(std::size_t i) noexcept {
    Entry moving = heap_[i];
    while (i > 0) {
        std::size_t parent = (i - 1) / 2;
        if (!later(heap_[parent], moving))
            break;
        heap_[i] = heap_[parent];
        i = parent;
    }
    heap_[i] = moving;
}

void TimerHeap::sift_down(std::size_t i) noexcept {
    const std::size_t n = heap_.size();
    Entry moving = heap_[i];
    for (;;) {
        std::size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && later(heap_[child], heap_[child + 1]))
            ++child;
        if (!later(moving, heap_[child]))
            break;
        heap_[i] = heap_[child];
        i = child;
    }
    heap_[i] = moving;
}

void TimerHeap::pop_top() noexcept {
    free_slot(heap_.front().slot);
    heap_.front() = heap_.back();
    heap_.pop_back();
    if (!heap_.empty())
        sift_down(0);
}

void TimerHeap::free_slot(std::uint32_t slot) noexcept {
    targets_[slot].next_free = free_head_;
    generations_[slot] = static_cast<std::uint16_t>(generations_[slot] + 1);
    free_head_ = slot;
}

void TimerHeap::renumber() noexcept {
    std::sort(heap_.begin(), heap_.end(),
              [](const Entry& a, const Entry& b) { return later(b, a); });
    std::uint32_t sequence = 0;
    for (Entry& e : heap_)
        e.sequence = sequence++;
    next_sequence_ = sequence;
}

} // namespace ringlet::detail
