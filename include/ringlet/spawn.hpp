// spawn (asyncio's create_task), JoinHandle<T>, TaskHandle, current_task, all_tasks.
// A spawned task runs concurrently on its loop; dropping its JoinHandle detaches it (it keeps
// running, and an exception nobody retrieves goes to the loop's exception handler).
// Thread safety: loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/detail/task_ref.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/task.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ringlet {

/// A reference to a spawned task, without access to its result (asyncio.Task as an object).
class TaskHandle {
  public:
    TaskHandle() noexcept = default;
    explicit TaskHandle(detail::TaskRef state) noexcept : state_(std::move(state)) {}

    /// Requests cancellation: the task gets CancelledError at its current (or next)
    /// suspension point; an in-flight I/O operation is cancelled and its completion awaited
    /// first. Returns false if the task already finished (or the handle is empty).
    bool cancel() noexcept { return state_ && state_->cancel(); }
    bool done() const noexcept { return state_ && state_->done(); }
    bool cancelled() const noexcept {
        return state_ && state_->outcome() == detail::TaskState::Outcome::cancelled;
    }
    const std::string& name() const { return checked().name(); }
    std::uint64_t id() const { return checked().id(); }
    /// What the task is doing, as in dump_tasks(): "awaiting sleep", "running", "done"...
    std::string state() const { return checked().state_description(); }
    explicit operator bool() const noexcept { return static_cast<bool>(state_); }
    /// The task's state, for ringlet's own awaiters (wait_for, shield); not for applications.
    detail::TaskState* internal_state() const noexcept { return state_.get(); }
    friend bool operator==(const TaskHandle& a, const TaskHandle& b) noexcept {
        return a.state_.get() == b.state_.get();
    }

  protected:
    detail::TaskState& checked() const {
        if (!state_)
            throw std::logic_error("use of an empty ringlet task handle");
        return *state_.get();
    }
    detail::TaskRef state_;
};

/// The result side of a spawned task (asyncio.Task awaited, tokio's JoinHandle).
/// `co_await handle` yields the task's value or rethrows its exception (CancelledError if it
/// was cancelled); awaiting a finished task again gives the same outcome again.
/// Throws: std::logic_error when the task is already being awaited by another task.
/// Cancellation: cancelling the awaiting task (also before it awaits) cancels the awaited one
/// too and waits for it to finish (asyncio semantics; use shield() to prevent that).
template <class T = void>
class JoinHandle : public TaskHandle {
  public:
    using TaskHandle::TaskHandle;

    class Awaiter final : public detail::SuspendPoint, public detail::DoneObserver {
      public:
        Awaiter(detail::TaskState* child, detail::ResultAccess access) noexcept
            : child_(child), access_(access) {}
        Awaiter(const Awaiter&) = delete;
        Awaiter& operator=(const Awaiter&) = delete;
        ~Awaiter() {
            if (observing_ && !child_->done())
                child_->set_done_observer(nullptr);
        }

        bool await_ready() const {
            if (child_ == nullptr)
                throw std::logic_error("co_await on an empty ringlet::JoinHandle");
            return child_->done();
        }
        bool await_suspend(std::coroutine_handle<> caller) {
            detail::ensure_not_awaited(*child_);
            if (!enter(caller)) {
                // A cancel was pending: pass it on to the child and wait for it all the same,
                // as for a cancel that arrives while suspended (asyncio does this too), so the
                // child never keeps running unawaited behind the CancelledError.
                cancelled_ = false;
                task_->suspend_on(this, caller);
                request_cancel(*task_);
            }
            child_->set_done_observer(this);
            observing_ = true;
            return true;
        }
        T await_resume() {
            if (task_ != nullptr) {
                task_->clear_suspension();
                if (cancelled_) { // a cancel was pending before we suspended
                    task_->clear_cancel_request();
                    throw CancelledError();
                }
                if (forwarded_cancel_ && child_->outcome() == detail::TaskState::Outcome::cancelled)
                    task_->clear_cancel_request(); // the CancelledError below is ours
            }
            return detail::task_result<T>(*child_, access_);
        }

        void on_task_done(detail::TaskState&) noexcept override {
            observing_ = false;
            task_->loop()->ready_queue().push(task_);
        }
        void request_cancel(detail::TaskState&) noexcept override {
            forwarded_cancel_ = true;
            child_->cancel(); // we resume once the child has finished
        }
        std::string what_awaited() const override { return "join " + child_->describe(); }

      private:
        detail::TaskState* child_;
        detail::ResultAccess access_;
        bool observing_ = false;
        bool forwarded_cancel_ = false;
    };

    /// Every read gives the same result (a copy); a move-only result is moved out by the first.
    Awaiter operator co_await() const& noexcept {
        return Awaiter(state_.get(), detail::ResultAccess::copy);
    }
    /// `co_await spawn(...)` or `co_await std::move(handle)`: the result is moved out.
    Awaiter operator co_await() && noexcept {
        return Awaiter(state_.get(), detail::ResultAccess::move);
    }

    /// The result of a finished task, the same each time it is asked (asyncio's Task.result()).
    /// Throws: the task's exception (CancelledError if it was cancelled); std::logic_error if it
    /// has not finished, or if T is move-only and an earlier read moved the value out.
    T result() const {
        detail::TaskState& s = checked();
        if (!s.done())
            throw std::logic_error("JoinHandle::result() of task '" + s.name() +
                                   "', which has not finished");
        return detail::task_result<T>(s, detail::ResultAccess::copy);
    }
};

/// Schedules `task` on `loop` and returns its handle. The task starts on the next iteration.
/// Throws: std::logic_error if the Task is empty or already started, or the loop is closed.
template <class T>
JoinHandle<T> spawn(EventLoop& loop, Task<T> task, std::string_view name = {}) {
    auto frame = task.release_for_spawn();
    return JoinHandle<T>(detail::TaskRef::adopt(loop.spawn_frame(frame, frame.promise(), name)));
}

/// Schedules `task` on the running loop (asyncio.create_task).
/// Throws: std::logic_error if no loop runs on this thread.
template <class T>
JoinHandle<T> spawn(Task<T> task, std::string_view name = {}) {
    return spawn(EventLoop::current(), std::move(task), name);
}

/// The task running now, or an empty handle outside any task.
inline TaskHandle current_task() {
    return detail::current_task_state ? TaskHandle(detail::TaskRef(detail::current_task_state))
                                      : TaskHandle();
}

/// The unfinished tasks of the running loop, oldest first.
inline std::vector<TaskHandle> all_tasks() {
    std::vector<TaskHandle> out;
    for (detail::TaskState* t : EventLoop::current().tasks().unfinished_tasks())
        out.emplace_back(detail::TaskRef(t));
    return out;
}

} // namespace ringlet
