// AsyncGenerator<T>: a lazy, move-only generator whose body may co_await (sleep, I/O, Tasks)
// as well as co_yield (Python's async generator). Consumer: `while (auto v = co_await
// gen.next())`. Each next() runs the body on the consumer's task by symmetric transfer, so a
// cancel of that task reaches the body wherever it is suspended. Loop thread only; frames come
// from the per-thread frame allocator.
#pragma once

#include "ringlet/detail/frame_allocator.hpp"

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ringlet {

template <class T>
class AsyncGenerator;

namespace detail {

template <class T>
class AsyncGeneratorPromise {
  public:
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        deallocate_frame(frame, size);
    }

    /// Hands control back to the consumer awaiting next() (symmetric transfer, no queueing).
    struct ToConsumer {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<>
        await_suspend(std::coroutine_handle<AsyncGeneratorPromise> self) const noexcept {
            return self.promise().consumer_;
        }
        void await_resume() const noexcept {}
    };

    AsyncGenerator<T> get_return_object() noexcept;
    std::suspend_always initial_suspend() const noexcept { return {}; }
    ToConsumer final_suspend() const noexcept { return {}; }
    // Non-template overloads, so that `co_yield {...}` works.
    ToConsumer yield_value(const T& value) {
        value_.emplace(value);
        return {};
    }
    ToConsumer yield_value(T&& value) {
        value_.emplace(std::move(value));
        return {};
    }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  private:
    friend class AsyncGenerator<T>;
    std::coroutine_handle<> consumer_; // the coroutine awaiting next(), while one does
    std::optional<T> value_;
    std::exception_ptr exception_;
    bool in_next_ = false;
};

} // namespace detail

/// A lazy generator whose body may co_await. `co_await gen.next()` runs the body to its next
/// co_yield and returns the value, or std::nullopt once the body has returned (and on every
/// later call).
/// Throws: next() rethrows what the body throws (once; the generator is finished afterwards);
/// std::logic_error for a next() while another next() of the same generator is in progress
/// (from another task, or from the body itself), or on an empty (moved-from) generator.
/// Cancellation: the body runs on the consumer's task, so cancelling that task raises
/// CancelledError at the body's current suspension point; if the body lets it escape,
/// next() rethrows it to the consumer.
/// Lifetime: destroying the generator destroys a suspended body (its destructors run). Do not
/// destroy it while another task's next() is in progress. Reference parameters of the body must
/// outlive the generator.
template <class T>
class [[nodiscard]] AsyncGenerator {
    static_assert(!std::is_void_v<T> && !std::is_reference_v<T>,
                  "AsyncGenerator<T>: T must be an object type");

  public:
    using promise_type = detail::AsyncGeneratorPromise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    AsyncGenerator() noexcept = default;
    explicit AsyncGenerator(handle_type frame) noexcept : frame_(frame) {}
    AsyncGenerator(AsyncGenerator&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    AsyncGenerator& operator=(AsyncGenerator&& other) noexcept {
        if (this != &other) {
            reset();
            frame_ = std::exchange(other.frame_, {});
        }
        return *this;
    }
    AsyncGenerator(const AsyncGenerator&) = delete;
    AsyncGenerator& operator=(const AsyncGenerator&) = delete;
    ~AsyncGenerator() { reset(); }

    class NextAwaiter {
      public:
        explicit NextAwaiter(handle_type frame) noexcept : frame_(frame) {}

        bool await_ready() const {
            if (!frame_)
                throw std::logic_error("next() on an empty or moved-from ringlet::AsyncGenerator");
            if (frame_.promise().in_next_)
                throw std::logic_error("ringlet::AsyncGenerator::next() called while another "
                                       "next() of the same generator is in progress");
            return frame_.done();
        }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
            promise_type& p = frame_.promise();
            p.consumer_ = consumer;
            p.in_next_ = true;
            p.value_.reset();
            suspended_ = true;
            return frame_;
        }
        std::optional<T> await_resume() {
            promise_type& p = frame_.promise();
            if (suspended_) {
                p.in_next_ = false;
                p.consumer_ = {};
            }
            if (p.exception_)
                std::rethrow_exception(std::exchange(p.exception_, nullptr));
            if (frame_.done())
                return std::nullopt;
            assert(p.value_.has_value());
            std::optional<T> value(std::move(p.value_));
            p.value_.reset();
            return value;
        }

      private:
        handle_type frame_;
        bool suspended_ = false;
    };

    /// Runs the body to its next co_yield; see the class comment.
    NextAwaiter next() noexcept { return NextAwaiter(frame_); }

    /// True if the body has returned or thrown (or the generator is empty).
    bool done() const noexcept { return !frame_ || frame_.done(); }

  private:
    void reset() noexcept {
        // During a next() only as part of destroying the consumer's own frame (the loop drops a
        // task that ignored cancellation): the body is suspended, destroying it is safe.
        if (frame_)
            std::exchange(frame_, {}).destroy();
    }

    handle_type frame_;
};

namespace detail {
template <class T>
AsyncGenerator<T> AsyncGeneratorPromise<T>::get_return_object() noexcept {
    return AsyncGenerator<T>(std::coroutine_handle<AsyncGeneratorPromise>::from_promise(*this));
}
} // namespace detail

} // namespace ringlet
