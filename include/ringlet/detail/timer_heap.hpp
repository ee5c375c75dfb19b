// TimerHeap: the loop's timers, a binary min-heap on (deadline, sequence number) whose entries
// name a slot; the slot holds the target. Cancelling marks the slot (O(1), no heap search);
// cancelled entries are dropped when they reach the top, or all at once by compact().
// Thread safety: loop thread only. Steady state allocates nothing.
#pragma once

#include "ringlet/detail/runnable.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace ringlet::detail {

/// Names a scheduled timer; stays safe to cancel after the timer fired (generation check).
struct TimerId {
    std::uint32_t slot = UINT32_MAX;
    std::uint32_t generation = 0;
};

class TimerHeap {
  public:
    using time_point = std::chrono::steady_clock::time_point;

    /// Schedules `target` to be returned by pop_due() once `when` is due.
    TimerId schedule(time_point when, Runnable* target);

    /// Cancels a pending timer: true if it was pending (its target will never be returned).
    bool cancel(TimerId id) noexcept;

    /// asyncio's rule: with more than `compaction_threshold` entries of which more than half
    /// are cancelled, rebuild the heap without them; else pop cancelled entries off the top.
    void housekeeping();

    /// Deadline of the earliest entry (call housekeeping() first for a live one).
    std::optional<time_point> next_deadline() const noexcept;

    /// Pops the earliest live entry with deadline < `limit`, or returns nullptr.
    Runnable* pop_due(time_point limit) noexcept;

    /// Removes every entry, handing each live target to `on_live` (loop teardown).
    template <class F>
    void clear(F&& on_live) {
        for (const Entry& e : heap_)
            if (Runnable* target = slots_[e.slot].target)
                on_live(target);
        heap_.clear();
        slots_.clear();
        free_head_ = UINT32_MAX;
        cancelled_ = 0;
    }

    std::size_t size() const noexcept { return heap_.size(); } // including cancelled
    std::size_t live() const noexcept {
        return heap_.size() - cancelled_;
    } // pending, not cancelled
    std::size_t cancelled() const noexcept { return cancelled_; }

    static constexpr std::size_t compaction_threshold = 100;

  private:
    struct Entry {
        time_point when;
        std::uint64_t sequence;
        std::uint32_t slot;
    };
    struct Slot {
        Runnable* target = nullptr; // nullptr: cancelled (or free)
        std::uint32_t generation = 0;
        std::uint32_t next_free = UINT32_MAX;
    };
    static bool later(const Entry& a, const Entry& b) noexcept {
        return a.when != b.when ? a.when > b.when : a.sequence > b.sequence;
    }
    void pop_top() noexcept;
    void free_slot(std::uint32_t slot) noexcept;

    std::vector<Entry> heap_;
    std::vector<Slot> slots_;
    std::uint32_t free_head_ = UINT32_MAX;
    std::size_t cancelled_ = 0;
    std::uint64_t next_sequence_ = 0;
};

} // namespace ringlet::detail
