// TaskState: the bookkeeping of one spawned task (asyncio's Task object). It is the base of
// every Task coroutine's promise: spawn() initialises it in the root frame, so that a task costs
// one allocation (its frame) and its state seven words of it; in the frames of awaited
// coroutines one of those words holds the continuation and the rest stay untouched. Reference
// counted: one reference belongs to the loop until the task finishes, one to each TaskHandle;
// the last release destroys the root frame, and with it the state. Only the loop's thread
// touches it. Design notes in lib/task_state.cpp.
#pragma once

#include "ringlet/detail/runnable.hpp"
#include "ringlet/detail/timer_heap.hpp"

#include <coroutine>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace ringlet {
class EventLoop;
}

namespace ringlet::detail {

struct PromiseBase;
class TaskState;

/// What a suspended task waits on. The loop asks it to give up through request_cancel();
/// the awaiter decides when the task resumes (for I/O: only after the kernel's completion).
class Suspension {
  public:
    /// `task` is the suspended task (the awaiter's own).
    virtual void request_cancel(TaskState& task) noexcept = 0;
    /// One word for dump_tasks(): "sleep", "read", "join 'worker'".
    virtual std::string what_awaited() const = 0;

  protected:
    ~Suspension() = default;
};

/// Told when a task finishes: its awaiter (the observer), and a supervisor that watches it
/// without awaiting it (TaskGroup, gather), told first. A task has at most one of each.
class DoneObserver {
  public:
    virtual void on_task_done(TaskState& task) noexcept = 0;

  protected:
    ~DoneObserver() = default;

  private:
    friend class TaskState;
    DoneObserver* next_observer_ = nullptr; // the task's observers form a list of at most two
    bool supervises_ = false;
};

class TaskState {
  public:
    enum class Outcome : std::uint8_t { pending, value, exception, cancelled };

    /// What every coroutine frame initialises: not a task, no continuation. The other fields
    /// are left alone; start() sets them when the frame is spawned.
    TaskState() noexcept : continuation_(nullptr), flags_(0) {}
    TaskState(const TaskState&) = delete;
    TaskState& operator=(const TaskState&) = delete;

    /// The frame was spawned as a task's root (else it is, or will be, awaited).
    bool is_task() const noexcept { return flags_ & is_task_flag; }
    /// An awaited frame's awaiting coroutine (null until awaited). Not for tasks.
    std::coroutine_handle<> continuation() const noexcept {
        return std::coroutine_handle<>::from_address(continuation_);
    }
    void set_continuation(std::coroutine_handle<> caller) noexcept {
        continuation_ = caller.address();
    }

    /// Makes the not yet started frame `root`, whose promise this is, a task of `loop`, with two
    /// references (the loop's and the caller's). The loop registers and schedules it.
    void start(EventLoop& loop, std::coroutine_handle<> root) noexcept;

    /// One step: resumes the task where it waits (called by the loop's dispatch only).
    void run();
    /// "task 'name'", for debug messages.
    std::string describe() const;
    /// The loop is closing and the task ignored cancellation: mark it cancelled without
    /// running it again; its frame is destroyed with the last reference.
    void abandon() noexcept;

    /// asyncio's Task.cancel(): false if the task already finished.
    bool cancel() noexcept;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0)
            destroy();
    }

    bool done() const noexcept { return outcome_ != Outcome::pending; }
    Outcome outcome() const noexcept { return outcome_; }
    /// The name given to spawn, else "Task-<id>" (asyncio's default).
    const std::string& name() const;
    /// A number unique to the task in this process, assigned when first asked for (by id(),
    /// name() or dump_tasks()), so that tasks nobody names cost no bookkeeping.
    std::uint64_t id() const;
    /// Gives the task a name (spawn's `name` argument).
    void set_name(std::string_view name);
    EventLoop* loop() const noexcept { return loop_; }
    PromiseBase& promise() noexcept;
    const PromiseBase& promise() const noexcept;
    /// What the task waits on now, for dump_tasks(); "running", "scheduled" or "done" otherwise.
    std::string state_description() const;

    /// The exception the task ended with, marking it retrieved (no never-retrieved report).
    std::exception_ptr take_exception() noexcept;

    // Used by awaiters (SuspendPoint) and the root coroutine's final_suspend.
    bool cancel_requested() const noexcept { return flags_ & cancel_requested_flag; }
    void clear_cancel_request() noexcept { flags_ &= ~cancel_requested_flag; }
    void suspend_on(Suspension* on, std::coroutine_handle<> resume_point) noexcept {
        waiting_on_ = reinterpret_cast<std::uintptr_t>(on);
        resume_point_ = resume_point;
    }
    /// A sleep: `timer` (in the sleep's awaiter) names the timer that wakes the task. Sleep is the
    /// one wait the task state knows without a vtable, so that its awaiter is a single word.
    void suspend_on_timer(TimerId* timer, std::coroutine_handle<> resume_point) noexcept {
        waiting_on_ = reinterpret_cast<std::uintptr_t>(timer) | timer_wait_bit;
        resume_point_ = resume_point;
    }
    void clear_suspension() noexcept { waiting_on_ = 0; }
    /// The task's awaiter (nullptr: none): told when the task finishes, after the supervisor.
    void set_done_observer(DoneObserver* observer) noexcept { replace_observer(observer, false); }
    /// Someone already awaits the task (the one observer slot is taken).
    bool has_done_observer() const noexcept;
    /// A supervisor that watches the task without awaiting it (TaskGroup, gather), so that the
    /// task's JoinHandle can still be awaited. Told before the observer.
    void set_supervisor(DoneObserver* supervisor) noexcept { replace_observer(supervisor, true); }
    void mark_root_finished() noexcept { flags_ |= root_finished_flag; }

    // The loop's registry links (intrusive list of referenced states).
    TaskState* registry_prev;
    TaskState* registry_next;
    /// The loop is gone (handles may keep finished tasks alive after it).
    void detach_from_loop() noexcept { loop_ = nullptr; }

  private:
    enum : std::uint8_t {
        is_task_flag = 1,
        started_flag = 2,
        running_flag = 4,
        root_finished_flag = 8,
        cancel_requested_flag = 16,
        exception_retrieved_flag = 32,
        has_extras_flag = 64, // a name or an id in the side table (lib/task_state.cpp)
    };
    static constexpr std::uintptr_t timer_wait_bit = 1; // in waiting_on_: a TimerId*

    void finish() noexcept;
    void destroy() noexcept;
    void report_unretrieved_exception() noexcept;
    void replace_observer(DoneObserver* observer, bool supervisor) noexcept;

    // No default member initialisers: see the default constructor. start() sets them all.
    EventLoop* loop_;
    std::coroutine_handle<> resume_point_;
    std::uintptr_t waiting_on_; // a Suspension*, or a TimerId* tagged with timer_wait_bit
    union {
        DoneObserver* observers_; // a task's
        void* continuation_;      // an awaited frame's
    };
    std::uint32_t refs_;
    Outcome outcome_;
    mutable std::uint8_t flags_; // has_extras_flag is set by the const name() and id()
};

/// The task whose coroutine chain is running on this thread (set by the loop's dispatch).
/// Initial-exec: libringlet.so reads it on every suspension, without __tls_get_addr.
[[gnu::tls_model("initial-exec")]] inline thread_local TaskState* current_task_state = nullptr;

} // namespace ringlet::detail
