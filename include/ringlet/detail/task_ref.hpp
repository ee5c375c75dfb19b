// TaskRef: an owning reference to a TaskState, and typed access to its result.
// Loop thread only.
#pragma once

#include "ringlet/detail/task_state.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/task.hpp"

#include <stdexcept>
#include <type_traits>
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

/// Throws std::logic_error if another task already awaits `task`: a second awaiter would take
/// the first one's wake-up and leave it suspended forever.
inline void ensure_not_awaited(const TaskState& task) {
    if (task.has_done_observer())
        throw std::logic_error("task '" + task.name() +
                               "' is already awaited by another task; a JoinHandle is awaited by "
                               "one task at a time");
}

/// The finished task's value, or its exception rethrown (CancelledError if it was cancelled).
/// Moves the value out: for a child task only its owner ever reads (gather, wait_for(Task)).
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

/// How a JoinHandle reads the result of a task others may hold handles to.
enum class ResultAccess : bool { copy, move };

/// The finished task's result as a JoinHandle gives it: like asyncio's Task.result(), the same
/// value each time (a copy), except when the caller owns the last use (`move`) or T cannot be
/// copied; then the value is moved out once and a later read throws std::logic_error.
template <class T>
T task_result(TaskState& state, ResultAccess access) {
    if constexpr (std::is_void_v<T> || std::is_reference_v<T>) {
        return take_task_result<T>(state);
    } else {
        auto& promise = static_cast<TaskPromise<T>&>(state.promise());
        if (state.outcome() == TaskState::Outcome::value && !promise.has_value())
            throw std::logic_error("the result of task '" + state.name() +
                                   "' was already moved out by an earlier read");
        if constexpr (std::is_copy_constructible_v<T>) {
            if (access == ResultAccess::copy) {
                if (state.outcome() != TaskState::Outcome::value)
                    return take_task_result<T>(state); // rethrows
                return promise.stored_result();
            }
        }
        return take_task_result<T>(state);
    }
}

} // namespace ringlet::detail
