// What the loop's dispatch step runs: a task, or another Runnable (a callback, the loop's own
// wake-up handlers). Ready names either one in a word, told apart by its low bit: a task's state
// lives in its root frame, where every word counts, so it has no vtable.
// Lifetime: whoever enqueues one guarantees it outlives its run().
#pragma once

#include <cstdint>
#include <string>

namespace ringlet::detail {

class TaskState;

class Runnable {
  public:
    virtual void run() = 0;
    /// For debug messages ("callback", "call_soon_threadsafe callbacks").
    virtual std::string describe() const = 0;
    /// The loop closed before running it (callbacks drop their reference here).
    virtual void abandon() noexcept {}

  protected:
    ~Runnable() = default;
};

/// A task or a Runnable, as the ready queue and the timer heap hold them; empty when null.
class Ready {
  public:
    Ready() noexcept = default;
    Ready(TaskState* task) noexcept : bits_(reinterpret_cast<std::uintptr_t>(task) | task_bit) {}
    Ready(Runnable* runnable) noexcept : bits_(reinterpret_cast<std::uintptr_t>(runnable)) {}

    explicit operator bool() const noexcept { return bits_ != 0; }
    /// The task, or nullptr if this is a Runnable.
    TaskState* task() const noexcept {
        return bits_ & task_bit ? reinterpret_cast<TaskState*>(bits_ & ~task_bit) : nullptr;
    }
    /// The Runnable, or nullptr if this is a task.
    Runnable* runnable() const noexcept {
        return bits_ & task_bit ? nullptr : reinterpret_cast<Runnable*>(bits_);
    }
    friend bool operator==(Ready a, Ready b) noexcept { return a.bits_ == b.bits_; }
    /// The word itself, for tables that keep it in a union (the timer heap's slots).
    std::uintptr_t bits() const noexcept { return bits_; }
    static Ready from_bits(std::uintptr_t bits) noexcept {
        Ready r;
        r.bits_ = bits;
        return r;
    }

  private:
    static constexpr std::uintptr_t task_bit = 1; // both kinds are at least 8-byte aligned
    std::uintptr_t bits_ = 0;
};

} // namespace ringlet::detail
