// The promise types behind Task<T>: result storage, continuation for symmetric transfer, and
// frame allocation from the per-thread free lists. The promise is also the task state
// (TaskState, its base) of a frame that is spawned as a task's root.
// Lifetime: the frame is owned by its Task (or, once spawned, by its TaskState).
#pragma once

#include "ringlet/detail/frame_allocator.hpp"
#include "ringlet/detail/task_state.hpp"

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace ringlet::detail {

/// Where a coroutine was defined, captured at its call site for debug messages.
class Origin {
  public:
    static Origin here(const char* function = __builtin_FUNCTION()) noexcept {
        return Origin(function);
    }
    const char* function() const noexcept { return function_; }

  private:
    explicit Origin(const char* function) noexcept : function_(function) {}
    const char* function_;
};

struct PromiseBase : TaskState {
    explicit PromiseBase(Origin origin = Origin::here()) noexcept : origin(origin) {}

    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        deallocate_frame(frame, size);
    }

    struct FinalAwaiter {
        bool await_ready() const noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            PromiseBase& p = self.promise();
            if (!p.is_task())
                return p.continuation();
            // A root: its TaskState notices after resume() returns, in the loop's dispatch.
            p.mark_root_finished();
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }
    bool started() const noexcept { return is_task() || continuation(); }

    std::exception_ptr exception;
    Origin origin;
};

inline PromiseBase& TaskState::promise() noexcept {
    return static_cast<PromiseBase&>(*this);
}
inline const PromiseBase& TaskState::promise() const noexcept {
    return static_cast<const PromiseBase&>(*this);
}

template <class T>
struct TaskPromise;

} // namespace ringlet::detail
