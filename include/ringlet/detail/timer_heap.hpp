// TimerHeap: the loop's timers, a binary min-heap on (deadline, sequence number) whose entries
// name a slot; the slot holds the target (a task or a Runnable). Cancelling empties the slot
// (O(1), no heap search); cancelled entries are dropped when they reach the top, or all at once
// by housekeeping(). A timer costs 16 bytes of heap entry and 10 of slot.
// Thread safety: loop thread only. Steady state allocates nothing.
#pragma once

#include "ringlet/detail/pod_array.hpp"
#include "ringlet/detail/runnable.hpp"

#include <chrono>
#include <cstdint>
#include <optional>

namespace ringlet::detail {

/// Names a scheduled timer; stays safe to cancel after the timer fired (generation check: a
/// slot is reused 65,536 times before a generation repeats, while a TimerId is only ever kept
/// by the one wait or callback it belongs to). The default value names no timer.
struct TimerId {
    std::uint32_t slot = UINT32_MAX;
    std::uint32_t generation = 0;
};

class TimerHeap {
  public:
    using time_point = std::chrono::steady_clock::time_point;

    /// Schedules `target` to be returned by pop_due() once `when` is due.
    TimerId schedule(time_point when, Ready target);

    /// Cancels a pending timer: true if it was pending (its target will never be returned).
    bool cancel(TimerId id) noexcept;

    /// asyncio's rule: with more than `compaction_threshold` entries of which more than half
    /// are cancelled, rebuild the heap without them; else pop cancelled entries off the top.
    void housekeeping() noexcept;

    /// Deadline of the earliest entry (call housekeeping() first for a live one).
    std::optional<time_point> next_deadline() const noexcept;

    /// Pops the earliest live entry with deadline < `limit`, or returns an empty Ready.
    Ready pop_due(time_point limit) noexcept;

    /// Removes every entry, handing each live target to `on_live` (loop teardown).
    template <class F>
    void clear(F&& on_live) {
        for (const Entry& e : heap_)
            if (Ready target = Ready::from_bits(targets_[e.slot].ready))
                on_live(target);
        heap_.clear();
        targets_.clear();
        generations_.clear();
        free_head_ = UINT32_MAX;
        cancelled_ = 0;
    }

    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); } // including cancelled
    std::size_t live() const noexcept { return heap_.size() - cancelled_; }
    std::size_t cancelled() const noexcept { return cancelled_; }

    static constexpr std::size_t compaction_threshold = 100;

  private:
    struct Entry {
        std::int64_t when; // time_since_epoch in clock ticks
        std::uint32_t slot;
        std::uint32_t sequence; // renumbered before it wraps (renumber())
    };
    /// A slot's target (Ready::bits(), 0 once cancelled); a free slot keeps the next free
    /// slot's index instead.
    union SlotTarget {
        std::uintptr_t ready;
        std::uint32_t next_free;
    };
    static bool later(const Entry& a, const Entry& b) noexcept {
        return a.when != b.when ? a.when > b.when : a.sequence > b.sequence;
    }
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void pop_top() noexcept;
    void free_slot(std::uint32_t slot) noexcept;
    void renumber() noexcept;

    PodArray<Entry> heap_;
    PodArray<SlotTarget> targets_;        // by slot
    PodArray<std::uint16_t> generations_; // by slot
    std::uint32_t free_head_ = UINT32_MAX;
    std::uint32_t next_sequence_ = 0;
    std::size_t cancelled_ = 0;
};

} // namespace ringlet::detail
