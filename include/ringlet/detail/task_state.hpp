// TaskState: the bookkeeping of one spawned task (asyncio's Task object).
// A TaskState owns the root coroutine frame of the task. It is reference counted: one
// reference belongs to the loop while the task has not finished, one to each TaskHandle.
// Only the loop's thread touches it. Design notes in lib/task_state.cpp.
#pragma once

#include "ringlet/detail/runnable.hpp"

#include <coroutine>
#include <cstdint>
#include <exception>
#include <string>

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
    virtual void request_cancel() noexcept = 0;
    /// One word for dump_tasks(): "sleep", "read", "join 'worker'".
    virtual std::string what_awaited() const = 0;

  protected:
    ~Suspension() = default;
};

/// Told when a task finishes. A task has at most one such observer (its awaiter).
class DoneObserver {
  public:
    virtual void on_task_done(TaskState& task) noexcept = 0;

  protected:
    ~DoneObserver() = default;
};

class TaskState final : public Runnable {
  public:
    enum class Outcome : std::uint8_t { pending, value, exception, cancelled };

    /// Takes ownership of the not-yet-started frame `root` whose promise is `promise`.
    static TaskState* create(EventLoop& loop, std::coroutine_handle<> root, PromiseBase& promise,
                             std::string name);

    void run() override;
    std::string describe() const override;
    /// The loop is closing and the task ignored cancellation: mark it cancelled without
    /// running it again; its frame is destroyed with the last reference.
    void abandon() noexcept override;

    /// asyncio's Task.cancel(): false if the task already finished.
    bool cancel() noexcept;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept;

    bool done() const noexcept { return outcome_ != Outcome::pending; }
    Outcome outcome() const noexcept { return outcome_; }
    /// The name given to spawn, else "Task-<id>" (asyncio's default).
    const std::string& name() const;
    std::uint64_t id() const noexcept { return id_; }
    EventLoop* loop() const noexcept { return loop_; }
    PromiseBase& promise() const noexcept { return *promise_; }
    /// What the task waits on now, for dump_tasks(); "running", "scheduled" or "done" otherwise.
    std::string state_description() const;

    /// The exception the task ended with, marking it retrieved (no never-retrieved report).
    std::exception_ptr take_exception() noexcept;

    // Used by awaiters (SuspendPoint) and the root coroutine's final_suspend.
    bool cancel_requested() const noexcept { return cancel_requested_; }
    void clear_cancel_request() noexcept { cancel_requested_ = false; }
    void suspend_on(Suspension* on, std::coroutine_handle<> resume_point) noexcept {
        waiting_on_ = on;
        resume_point_ = resume_point;
    }
    void clear_suspension() noexcept { waiting_on_ = nullptr; }
    void set_done_observer(DoneObserver* observer) noexcept { done_observer_ = observer; }
    /// Someone already awaits the task (the one observer slot is taken).
    bool has_done_observer() const noexcept { return done_observer_ != nullptr; }
    /// A second slot, for a supervisor that watches the task without awaiting it (TaskGroup,
    /// gather), so that the task's JoinHandle can still be awaited. Told before the observer.
    void set_supervisor(DoneObserver* supervisor) noexcept { supervisor_ = supervisor; }
    void mark_root_finished() noexcept { root_finished_ = true; }

    // The loop's registry links (intrusive list of referenced states).
    TaskState* registry_prev = nullptr;
    TaskState* registry_next = nullptr;
    void detach_from_loop() noexcept { loop_ = nullptr; }

  private:
    TaskState(EventLoop& loop, std::coroutine_handle<> root, PromiseBase& promise,
              std::string name);
    void finish() noexcept;
    void destroy() noexcept;
    void report_unretrieved_exception() noexcept;

    EventLoop* loop_;
    std::coroutine_handle<> root_;
    PromiseBase* promise_;
    std::coroutine_handle<> resume_point_;
    Suspension* waiting_on_ = nullptr;
    DoneObserver* done_observer_ = nullptr;
    DoneObserver* supervisor_ = nullptr;
    mutable std::string name_;
    std::uint64_t id_;
    std::uint32_t refs_ = 1;
    Outcome outcome_ = Outcome::pending;
    bool started_ = false;
    bool running_ = false;
    bool root_finished_ = false;
    bool cancel_requested_ = false;
    bool exception_retrieved_ = false;
};

/// The task whose coroutine chain is running on this thread (set by the loop's dispatch).
inline thread_local TaskState* current_task_state = nullptr;

} // namespace ringlet::detail
