// Generator<T, Send>: a synchronous, lazy, move-only generator (Python's generator function).
// `co_yield v` hands v to the caller; with a Send type, `Send s = co_yield v;` receives the value
// of the caller's `send(s)` (Python's gen.send), and next() sends Send{} (Python sends None).
// Range-for and next() drive the same frame; exceptions of the body leave through the call that
// resumed it. Thread safety: none (one thread at a time). Frames come from the frame allocator.
#pragma once

#include "ringlet/detail/frame_allocator.hpp"

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ringlet {

/// Thrown by Generator::next() and send() when the body has returned (during that call or
/// before it), like Python's StopIteration. Range-for never sees it: the iteration just ends.
class StopIteration : public std::exception {
  public:
    const char* what() const noexcept override {
        return "StopIteration: the ringlet::Generator has finished";
    }
};

template <class T, class Send = void>
class Generator;

namespace detail {

template <class T, class Send>
class GeneratorPromise {
  public:
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        deallocate_frame(frame, size);
    }

    /// Resumes the body after a co_yield with what the caller sent (nothing when Send is void).
    struct YieldAwaiter {
        GeneratorPromise& promise;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) const noexcept {}
        Send await_resume() const {
            if constexpr (!std::is_void_v<Send>) {
                assert(promise.sent_ != nullptr);
                return std::move(*std::exchange(promise.sent_, nullptr));
            }
        }
    };

    Generator<T, Send> get_return_object() noexcept;
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    // Non-template overloads, so that `co_yield {}` works (e.g. with T = std::monostate).
    YieldAwaiter yield_value(const T& value) {
        value_.emplace(value);
        return YieldAwaiter{*this};
    }
    YieldAwaiter yield_value(T&& value) {
        value_.emplace(std::move(value));
        return YieldAwaiter{*this};
    }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    template <class Awaitable>
    Awaitable&& await_transform(Awaitable&& awaitable) {
        static_assert(sizeof(Awaitable) == 0,
                      "a ringlet::Generator body cannot co_await: use ringlet::AsyncGenerator");
        return std::forward<Awaitable>(awaitable);
    }

  private:
    friend class Generator<T, Send>;
    std::optional<T> value_;
    std::exception_ptr exception_;
    std::add_pointer_t<Send> sent_ = nullptr; // the caller's value, during one resumption
    bool started_ = false;
    bool running_ = false;
};

} // namespace detail

/// A lazy generator of T values; with Send non-void, also Python's send-capable generator.
/// Throws: next()/send() throw StopIteration once the body has returned, rethrow what the body
/// throws (the generator is finished afterwards), and throw std::logic_error on misuse: send()
/// to a just-started generator (prime it with next() first, as Python requires), resuming a
/// generator from its own body, or using an empty (moved-from) generator.
/// Lifetime: destroying the generator destroys a suspended body (its destructors run; no
/// GeneratorExit is raised into it). Reference parameters of the body must outlive it.
template <class T, class Send>
class [[nodiscard]] Generator {
    static_assert(!std::is_void_v<T> && !std::is_reference_v<T>,
                  "Generator<T>: T must be an object type; yield std::monostate for 'nothing'");
    static_assert(!std::is_reference_v<Send>, "Generator<T, Send>: Send must not be a reference");

  public:
    using promise_type = detail::GeneratorPromise<T, Send>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    class iterator {
      public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;

        iterator() noexcept = default;
        T& operator*() const noexcept { return *frame_.promise().value_; }
        T* operator->() const noexcept { return std::addressof(**this); }
        /// Throws: what the body throws while running to its next co_yield.
        iterator& operator++() {
            Generator::advance(frame_);
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return it.frame_.done();
        }

      private:
        friend class Generator;
        explicit iterator(handle_type frame) noexcept : frame_(frame) {}
        handle_type frame_;
    };

    Generator() noexcept = default;
    explicit Generator(handle_type frame) noexcept : frame_(frame) {}
    Generator(Generator&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    Generator& operator=(Generator&& other) noexcept {
        if (this != &other) {
            reset();
            frame_ = std::exchange(other.frame_, {});
        }
        return *this;
    }
    Generator(const Generator&) = delete;
    Generator& operator=(const Generator&) = delete;
    ~Generator() { reset(); }

    /// Runs the body to its next co_yield (like one next()) and returns an iterator on that
    /// value, or end() if the body returned. A finished generator gives an empty range.
    /// Throws: what the body throws; std::logic_error if the generator is empty.
    iterator begin() requires std::is_void_v<Send> || std::default_initializable<Send> {
        handle_type frame = checked();
        if (!frame.done())
            advance(frame);
        return iterator(frame);
    }
    std::default_sentinel_t end() const noexcept { return {}; }

    /// Python's next(gen): runs the body to its next co_yield and returns the yielded value.
    /// The first call starts the body (the "priming" next of a send-capable generator); later
    /// ones make the pending co_yield evaluate to Send{} (Python: None).
    /// Throws: StopIteration if the body returns or had returned; what the body throws.
    T next() {
        handle_type frame = checked();
        if (frame.done())
            throw StopIteration();
        advance(frame);
        return take(frame);
    }

    /// Python's gen.send(value): the pending `co_yield` evaluates to `value`; returns the next
    /// yielded value.
    /// Throws: std::logic_error if the generator has not started (call next() first);
    /// StopIteration if the body returns or had returned; what the body throws.
    template <class S = Send>
    requires(!std::is_void_v<S>) T send(std::type_identity_t<S> value) {
        handle_type frame = checked();
        if (!frame.promise().started_)
            throw std::logic_error("can't send a value to a just-started ringlet::Generator: "
                                   "call next() first to run it to its first co_yield");
        if (frame.done())
            throw StopIteration();
        advance(frame, &value);
        return take(frame);
    }

    /// True once next()/send()/begin() has run the body (it may have finished since).
    bool started() const noexcept { return frame_ && frame_.promise().started_; }
    /// True if the body has returned or thrown (or the generator is empty).
    bool done() const noexcept { return !frame_ || frame_.done(); }

  private:
    handle_type checked() const {
        if (!frame_)
            throw std::logic_error("use of an empty or moved-from ringlet::Generator");
        return frame_;
    }

    /// Resumes the body once; `sent` is what its pending co_yield evaluates to (null: Send{}).
    static void advance(handle_type frame, std::add_pointer_t<Send> sent = nullptr) {
        promise_type& p = frame.promise();
        if (p.running_)
            throw std::logic_error("ringlet::Generator resumed from its own body (generator "
                                   "already executing)");
        assert(!frame.done());
        if constexpr (!std::is_void_v<Send>) {
            if (sent == nullptr && p.started_) {
                if constexpr (std::default_initializable<Send>) {
                    Send none{};
                    resume(frame, &none);
                    return;
                } else {
                    throw std::logic_error("next() on a started ringlet::Generator whose Send "
                                           "type has no default value: use send()");
                }
            }
        }
        resume(frame, sent);
    }

    static void resume(handle_type frame, std::add_pointer_t<Send> sent) {
        promise_type& p = frame.promise();
        p.started_ = true;
        p.sent_ = sent;
        p.value_.reset();
        p.running_ = true;
        frame.resume();
        p.running_ = false;
        p.sent_ = nullptr;
        if (p.exception_)
            std::rethrow_exception(std::exchange(p.exception_, nullptr));
    }

    static T take(handle_type frame) {
        promise_type& p = frame.promise();
        if (frame.done())
            throw StopIteration();
        assert(p.value_.has_value());
        T value = std::move(*p.value_);
        p.value_.reset();
        return value;
    }

    void reset() noexcept {
        if (frame_)
            std::exchange(frame_, {}).destroy();
    }

    handle_type frame_;
};

namespace detail {
template <class T, class Send>
Generator<T, Send> GeneratorPromise<T, Send>::get_return_object() noexcept {
    return Generator<T, Send>(std::coroutine_handle<GeneratorPromise>::from_promise(*this));
}
} // namespace detail

} // namespace ringlet
