// SuspendPoint: the base of every awaiter that suspends a task until the loop wakes it.
// It implements cancellation delivery: a pending cancel turns the next suspension into a
// CancelledError without suspending, and a cancel while suspended is passed to the awaiter's
// request_cancel(). Loop thread only.
#pragma once

#include "ringlet/detail/task_state.hpp"
#include "ringlet/errors.hpp"

#include <coroutine>
#include <stdexcept>

namespace ringlet::detail {

/// The running task, which is about to suspend.
/// Throws: std::logic_error outside a running ringlet task.
inline TaskState* task_awaiting() {
    if (current_task_state == nullptr)
        throw std::logic_error("a ringlet awaitable was awaited outside a running ringlet task");
    return current_task_state;
}

class SuspendPoint : public Suspension {
  protected:
    /// Call first in await_suspend: false means "don't suspend, a cancel is pending".
    bool enter(std::coroutine_handle<> resume_point) {
        task_ = task_awaiting();
        if (task_->cancel_requested()) {
            cancelled_ = true;
            return false;
        }
        task_->suspend_on(this, resume_point);
        return true;
    }

    /// Called by request_cancel() implementations that give up waiting at once.
    void mark_cancelled() noexcept {
        cancelled_ = true;
        task_->clear_suspension();
    }

    /// Call first in await_resume: throws CancelledError if the wait was cancelled.
    void leave() {
        if (task_ == nullptr)
            return; // await_ready was true: never suspended
        task_->clear_suspension();
        if (cancelled_) {
            task_->clear_cancel_request();
            throw CancelledError();
        }
    }

    TaskState* task_ = nullptr;
    bool cancelled_ = false;
};

} // namespace ringlet::detail
