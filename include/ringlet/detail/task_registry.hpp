// TaskRegistry: the loop's intrusive list of TaskStates that are alive (unfinished, or finished
// but still referenced by a handle), and the count of unfinished ones. Loop thread only.
#pragma once

#include "ringlet/detail/task_state.hpp"

#include <cstddef>
#include <vector>

namespace ringlet::detail {

class TaskRegistry {
  public:
    void add(TaskState& task) noexcept {
        task.registry_prev = nullptr;
        task.registry_next = head_;
        if (head_)
            head_->registry_prev = &task;
        head_ = &task;
        ++unfinished_;
    }
    void remove(TaskState& task) noexcept {
        if (task.registry_prev)
            task.registry_prev->registry_next = task.registry_next;
        else
            head_ = task.registry_next;
        if (task.registry_next)
            task.registry_next->registry_prev = task.registry_prev;
        task.registry_prev = task.registry_next = nullptr;
    }
    void note_finished() noexcept { --unfinished_; }

    std::size_t unfinished() const noexcept { return unfinished_; }

    /// The unfinished tasks, oldest first.
    std::vector<TaskState*> unfinished_tasks() const {
        std::vector<TaskState*> out;
        for (TaskState* t = head_; t != nullptr; t = t->registry_next)
            if (!t->done())
                out.push_back(t);
        return {out.rbegin(), out.rend()};
    }
    /// Every registered state (for the loop's destructor).
    template <class F>
    void for_each(F&& f) const {
        for (TaskState* t = head_; t != nullptr;) {
            TaskState* next = t->registry_next;
            f(*t);
            t = next;
        }
    }

  private:
    TaskState* head_ = nullptr;
    std::size_t unfinished_ = 0;
};

} // namespace ringlet::detail
