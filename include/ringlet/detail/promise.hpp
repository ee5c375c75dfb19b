// The promise types behind Task<T>: result storage, continuation for symmetric transfer, and
// frame allocation from the per-thread free lists.
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

struct PromiseBase {
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
            if (p.continuation)
                return p.continuation;
            // A root: its TaskState notices after resume() returns, in the loop's dispatch.
            p.task->mark_root_finished();
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }
    bool started() const noexcept { return task != nullptr; }

    std::coroutine_handle<> continuation; // awaiting coroutine; null for a spawned root
    TaskState* task = nullptr;            // set when the coroutine starts
    std::exception_ptr exception;
    Origin origin;
};

template <class T>
struct TaskPromise;

} // namespace ringlet::detail
