// Task<T>: the return type of ringlet coroutines. Lazy (nothing runs until it is awaited,
// spawned or run), move-only, awaited once; `co_await task` starts it by symmetric transfer
// and yields its value or rethrows its exception.
// Thread safety: a Task belongs to the loop thread that runs it.
#pragma once

#include "ringlet/detail/promise.hpp"

#include <cassert>
#include <coroutine>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ringlet {

template <class T = void>
class Task;

namespace detail {

/// Logs "coroutine F was never awaited" when debug mode is on (see EventLoop).
void report_never_awaited(const PromiseBase& promise) noexcept;

// The loop finds a task's frame from its promise (TaskState::destroy) assuming the promise sits
// right after the frame's two function pointers, as g++ and clang place a promise aligned to at
// most 16 bytes.
template <class T>
inline constexpr bool promise_alignment_supported = alignof(T) <= 16;

template <class T>
struct TaskPromise : PromiseBase {
    static_assert(promise_alignment_supported<T>,
                  "ringlet::Task<T> needs alignof(T) <= 16; return an over-aligned T through "
                  "std::unique_ptr");
    // Not an inherited constructor: the default argument must be evaluated in the coroutine
    // itself, so that Origin names the coroutine's function (an inherited one names TaskPromise).
    explicit TaskPromise(Origin origin = Origin::here()) noexcept : PromiseBase(origin) {}
    Task<T> get_return_object() noexcept;

    template <class U = T>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(value));
    }
    T take_result() {
        if (exception)
            std::rethrow_exception(exception);
        assert(value_.has_value());
        T value = std::move(*value_);
        value_.reset(); // a later read sees that the value is gone
        return value;
    }
    /// The value, left in place (a JoinHandle gives the same result each time it is asked).
    const T& stored_result() const {
        if (exception)
            std::rethrow_exception(exception);
        assert(value_.has_value());
        return *value_;
    }
    bool has_value() const noexcept { return value_.has_value(); }

  private:
    std::optional<T> value_;
};

template <class T>
struct TaskPromise<T&> : PromiseBase {
    explicit TaskPromise(Origin origin = Origin::here()) noexcept : PromiseBase(origin) {}
    Task<T&> get_return_object() noexcept;
    void return_value(T& value) noexcept { value_ = std::addressof(value); }
    T& take_result() {
        if (exception)
            std::rethrow_exception(exception);
        assert(value_ != nullptr);
        return *value_;
    }

  private:
    T* value_ = nullptr;
};

template <>
struct TaskPromise<void> : PromiseBase {
    explicit TaskPromise(Origin origin = Origin::here()) noexcept : PromiseBase(origin) {}
    Task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take_result() const {
        if (exception)
            std::rethrow_exception(exception);
    }
};

} // namespace detail

/// A lazily started coroutine producing a T (or throwing).
/// Throws: awaiting an empty, moved-from or already awaited Task throws std::logic_error.
/// Lifetime: reference parameters of the coroutine must outlive its completion.
template <class T>
class [[nodiscard]] Task {
  public:
    using promise_type = detail::TaskPromise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    Task() noexcept = default;
    explicit Task(handle_type frame) noexcept : frame_(frame) {}
    Task(Task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            reset();
            frame_ = std::exchange(other.frame_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { reset(); }

    /// True if this Task holds a coroutine (not moved-from or default-constructed).
    bool valid() const noexcept { return static_cast<bool>(frame_); }

    class Awaiter {
      public:
        explicit Awaiter(handle_type frame) noexcept : frame_(frame) {}
        bool await_ready() const {
            if (!frame_)
                throw std::logic_error("co_await on an empty or moved-from ringlet::Task");
            if (frame_.promise().started())
                throw std::logic_error("ringlet::Task awaited twice (coroutine " +
                                       std::string(frame_.promise().origin.function()) + ")");
            return false;
        }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
            frame_.promise().set_continuation(caller);
            return frame_;
        }
        decltype(auto) await_resume() { return frame_.promise().take_result(); }

      private:
        handle_type frame_;
    };

    Awaiter operator co_await() & noexcept { return Awaiter(frame_); }
    Awaiter operator co_await() && noexcept { return Awaiter(frame_); }

    /// Gives up ownership of the frame (used by spawn). Throws if empty or already started.
    handle_type release_for_spawn() {
        if (!frame_)
            throw std::logic_error("spawn of an empty or moved-from ringlet::Task");
        if (frame_.promise().started())
            throw std::logic_error("spawn of a ringlet::Task that was already awaited");
        return std::exchange(frame_, {});
    }

  private:
    void reset() noexcept {
        if (!frame_)
            return;
        if (!frame_.promise().started())
            detail::report_never_awaited(frame_.promise());
        std::exchange(frame_, {}).destroy();
    }

    handle_type frame_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
template <class T>
Task<T&> TaskPromise<T&>::get_return_object() noexcept {
    return Task<T&>(std::coroutine_handle<TaskPromise<T&>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
} // namespace detail

} // namespace ringlet
