// TaskRef: an owning reference to a TaskState, and typed access to its result.
// Loop thread only.
#pragma once

#include "ringlet/detail/task_state.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/task.hpp"

#include <utility>

namespace ringlet::detail {

class TaskRef {
  public:
    TaskRef() noexcept = default;
    /// Adopts one reference already counted for us.
    static TaskRef adopt(TaskState* state) noexcept {
        TaskRef r;
        r.state_ = state;
        return r;
    }
    explicit TaskRef(TaskState* state) noexcept : state_(state) {
        if (state_)
            state_->add_ref();
    }
    TaskRef(const TaskRef& other) noexcept : TaskRef(other.state_) {}
    TaskRef(TaskRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    TaskRef& operator=(TaskRef other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }
    ~TaskRef() {
        if (state_)
            state_->release();
    }
    TaskState* get() const noexcept { return state_; }
    TaskState* operator->() const noexcept { return state_; }
    explicit operator bool() const noexcept { return state_ != nullptr; }

  private:
    TaskState* state_ = nullptr;
};

/// The finished task's value, or its exception rethrown (CancelledError if it was cancelled).
template <class T>
T take_task_result(TaskState& state) {
    if (state.outcome() == TaskState::Outcome::cancelled) {
        state.take_exception();
        throw CancelledError();
    }
    if (std::exception_ptr e = state.take_exception())
        std::rethrow_exception(e);
    return static_cast<TaskPromise<T>&>(state.promise()).take_result();
}

} // namespace ringlet::detail
