// Greenlet: Python greenlet's explicit switching, on stackless coroutines. `co_await
// g.switch_to(v)` suspends the running greenlet and resumes g by symmetric transfer (no
// allocation, no queue); the co_await evaluates to the value of the switch that resumes it.
// A greenlet whose body returns passes its value (or exception) to its parent; plain code is
// the "main" greenlet. Thread safety: each thread has its own main greenlet; a greenlet is
// used on one thread. Frames come from the per-thread frame allocator.
//
// Value type: BasicGreenlet<T> passes values of type T (moved, never copied, no allocation);
// greenlets that switch to each other share T. `Greenlet` is BasicGreenlet<GreenletValue>,
// Python's "anything goes": a value of any copyable type, read with greenlet_cast<T> (small
// trivially copyable values are stored inline, others allocate when wrapped); pick a concrete T
// for typing.
#pragma once

#include "ringlet/detail/frame_allocator.hpp"
#include "ringlet/greenlet_value.hpp"

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ringlet {

template <class T>
class BasicGreenlet;
template <class T>
class GreenletSwitch;

namespace detail {

template <class T>
class GreenletBody;

template <class T>
class GreenletPromise {
  public:
    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* frame, std::size_t size) noexcept {
        deallocate_frame(frame, size);
    }

    /// Passes the result (or exception) to the parent and resumes it.
    struct ToParent {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<>
        await_suspend(std::coroutine_handle<GreenletPromise> self) const noexcept {
            return self.promise().greenlet_->finish();
        }
        void await_resume() const noexcept {}
    };

    GreenletBody<T> get_return_object() noexcept;
    std::suspend_always initial_suspend() const noexcept { return {}; }
    ToParent final_suspend() const noexcept { return {}; }
    // Non-template, so that `co_return {};` works. There is no return_void: a body must end
    // with `co_return value;` (flowing off its end is undefined behaviour, as for any
    // coroutine with return_value; clang warns, g++ 12 does not).
    void return_value(T value) { result_.emplace(std::move(value)); }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    // A greenlet's body suspends only by switching: it has no event-loop task to wait on.
    template <class U>
    typename GreenletSwitch<U>::Awaiter await_transform(GreenletSwitch<U>&& s) const noexcept {
        return {s};
    }
    template <class Awaitable>
    Awaitable&& await_transform(Awaitable&& awaitable) const noexcept {
        static_assert(sizeof(Awaitable) == 0,
                      "a ringlet::Greenlet body can only co_await switch_to(...) directly");
        return std::forward<Awaitable>(awaitable);
    }

  private:
    friend class BasicGreenlet<T>;
    BasicGreenlet<T>* greenlet_ = nullptr;
    std::optional<T> result_;
    std::exception_ptr exception_;
};

/// The return type of a greenlet's body (spelled BasicGreenlet<T>::Body or GreenletBody).
template <class T>
class [[nodiscard]] GreenletBody {
  public:
    using promise_type = GreenletPromise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    explicit GreenletBody(handle_type frame) noexcept : frame_(frame) {}
    GreenletBody(GreenletBody&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    GreenletBody& operator=(GreenletBody&&) = delete;
    ~GreenletBody() {
        if (frame_)
            frame_.destroy();
    }
    handle_type release() noexcept { return std::exchange(frame_, {}); }

  private:
    handle_type frame_;
};

/// A callable that makes a greenlet's body from (self, first value), (first value) or ().
template <class F, class T>
concept greenlet_body =
    std::is_invocable_r_v<GreenletBody<T>, F&, BasicGreenlet<T>&, T> ||
    std::is_invocable_r_v<GreenletBody<T>, F&, T> || std::is_invocable_r_v<GreenletBody<T>, F&>;

template <class T>
GreenletBody<T> GreenletPromise<T>::get_return_object() noexcept {
    return GreenletBody<T>(std::coroutine_handle<GreenletPromise>::from_promise(*this));
}

} // namespace detail

/// The result of switch_to(). From plain code (no greenlet of this T running on the thread) the
/// switch has already happened and get() (or co_await) returns the value passed back; inside a
/// greenlet's body it must be co_awaited, which performs the switch.
template <class T>
class GreenletSwitch {
  public:
    GreenletSwitch(const GreenletSwitch&) = delete;
    GreenletSwitch& operator=(const GreenletSwitch&) = delete;
    ~GreenletSwitch() {
        if (flags_ != 0) [[unlikely]]
            release();
    }

    /// The value passed back to the main greenlet by a switch made from plain code.
    /// Throws: std::logic_error if this switch was made inside a greenlet (co_await it).
    T get() && {
        if (target_ != nullptr)
            throw std::logic_error("GreenletSwitch::get() on a switch made inside a greenlet: "
                                   "co_await it instead");
        return std::move(*value_);
    }

    /// What `co_await` uses (by reference: a switch is neither copied nor moved).
    struct Awaiter {
        GreenletSwitch& s;
        bool await_ready() { return s.await_ready(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
            return s.await_suspend(h);
        }
        T await_resume() { return s.await_resume(); }
    };
    Awaiter operator co_await() && noexcept { return {*this}; }

  private:
    friend class BasicGreenlet<T>;
    struct done_tag {};
    struct copy_tag {};
    // In flags_, so that the destructor of the common switch (neither) tests one byte.
    static constexpr unsigned char owns_value = 1; // owned_ holds a value
    static constexpr unsigned char unawaited = 2;  // made inside a body, not co_awaited yet

    // A switch is never moved (returned as a prvalue, awaited by reference): value_ may point
    // into owned_.
    GreenletSwitch(done_tag, T&& value) : owned_(std::move(value)), flags_(owns_value) {
        value_ = &owned_;
    }
    /// Refers to the caller's value, moved only when the switch happens (one move fewer).
    GreenletSwitch(BasicGreenlet<T>& target, T& value)
        : value_(&value), target_(&target), flags_(unawaited) {}
    /// Owns a copy of the value (switch_to(const T&), switch_to()).
    GreenletSwitch(BasicGreenlet<T>& target, copy_tag, T&& value)
        : owned_(std::move(value)), target_(&target), flags_(owns_value | unawaited) {
        value_ = &owned_;
    }

    [[gnu::noinline]] void release() noexcept {
        if (flags_ & unawaited)
            std::fputs("ringlet: Greenlet::switch_to() inside a greenlet was never co_awaited: "
                       "no switch happened\n",
                       stderr);
        if (flags_ & owns_value)
            owned_.~T();
    }

    bool await_ready() {
        if (!(flags_ & unawaited)) {
            BasicGreenlet<T>::passed_ = value_; // made from plain code (or awaited already)
            return true;
        }
        flags_ &= static_cast<unsigned char>(~unawaited);
        if (target_->is_switch_target()) [[likely]]
            return false;
        return target_->prepare_slow(*this);
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
        return target_->enter(value_);
    }
    T await_resume() {
        T* received = BasicGreenlet<T>::passed_;
        if (received == nullptr) [[unlikely]]
            BasicGreenlet<T>::rethrow_in_running(); // a child's exception
        return std::move(*received);
    }

    // target_ and value_ are not neighbours: g++ would store them as one vector and take the
    // target's address back out of it (a few cycles more on the way to the next frame).
    T* value_; // the value sent (or, from plain code, received)
    union {
        T owned_; // a copy to send, or a plain-code switch's value
    };
    BasicGreenlet<T>* target_ = nullptr; // null for a switch made from plain code
    unsigned char flags_;
};

/// A coroutine that runs only when switched to (Python's greenlet), passing values of type T.
/// The body is a callable returning BasicGreenlet<T>::Body, taking (BasicGreenlet& self, T
/// first), (T first) or (); `first` is the value of the switch that starts it. It suspends only
/// at `co_await other.switch_to(v)` and ends with `co_return v;`, which switches to its parent
/// with v (a body's exception is rethrown in the parent, at its pending switch).
/// Throws: switch_to() a dead greenlet throws std::logic_error (Python would go to its parent);
/// a switch made from plain code rethrows what reaches the main greenlet.
/// Lifetime: not movable (bodies refer to it). The callable (its captures) lives as long as the
/// greenlet. A parent must outlive its children. Destroying a suspended greenlet destroys its
/// frame (its destructors run; nothing like GreenletExit is raised). A dead or not started
/// parent is skipped: the result goes to the nearest live ancestor, ultimately main.
template <class T>
class BasicGreenlet {
    static_assert(std::is_object_v<T> && std::is_move_constructible_v<T>,
                  "BasicGreenlet<T>: T must be a movable object type");

  public:
    using value_type = T;
    using Body = detail::GreenletBody<T>;
    using Switch = GreenletSwitch<T>;

    /// A greenlet whose parent is the greenlet running now (main in plain code).
    template <detail::greenlet_body<T> F>
    explicit BasicGreenlet(F body) : BasicGreenlet(std::move(body), current()) {}

    /// A greenlet with an explicit parent (of the same thread).
    template <detail::greenlet_body<T> F>
    BasicGreenlet(F body, BasicGreenlet& parent)
        : starter_(std::make_unique<StarterFor<F>>(std::move(body))), parent_(&parent) {}

    BasicGreenlet(const BasicGreenlet&) = delete;
    BasicGreenlet& operator=(const BasicGreenlet&) = delete;
    ~BasicGreenlet() {
        assert(running_ != this && "a ringlet::Greenlet destroyed while it runs");
        if (frame_)
            frame_.destroy();
    }

    /// Suspends the running greenlet (main, in plain code) and runs this one, starting it with
    /// `value` or making its pending switch evaluate to `value`. Inside a body: `co_await` it;
    /// it evaluates to the value of the switch that comes back. In plain code it returns once
    /// control comes back to main; get() is the value passed.
    /// Throws: std::logic_error if this greenlet is dead; from plain code, the exception of a
    /// greenlet whose parent is main. Allocates only when it starts the body (its frame).
    /// Lifetime: inside a body, `value` is moved when the switch happens: it must live until the
    /// switch is co_awaited, as it does in `co_await g.switch_to(std::move(v))` or
    /// `co_await g.switch_to(T(...))`.
    Switch switch_to(T&& value) {
        if (running_ != nullptr) [[likely]]
            return Switch(*this, value);
        return switch_from_main(value);
    }
    /// switch_to() of a copy of `value` (the switch keeps the copy).
    Switch switch_to(const T& value) {
        if (running_ != nullptr)
            return Switch(*this, typename Switch::copy_tag{}, T(value));
        T copy(value);
        return switch_from_main(copy);
    }
    /// switch_to(T{}) (Python's switch() without arguments).
    Switch switch_to() requires std::default_initializable<T> {
        if (running_ != nullptr)
            return Switch(*this, typename Switch::copy_tag{}, T{});
        T empty{};
        return switch_from_main(empty);
    }

    /// True once the body has been started (always for main).
    bool started() const noexcept { return phase_ != phase::not_started; }
    /// True once the body has returned or thrown.
    bool dead() const noexcept { return phase_ == phase::dead; }
    bool is_main() const noexcept { return phase_ == phase::main; }
    /// The greenlet that receives this one's result; nullptr for main.
    BasicGreenlet* parent() const noexcept { return parent_; }

    /// The greenlet running on this thread, or main() in plain code.
    static BasicGreenlet& current() noexcept { return running_ ? *running_ : main(); }
    /// This thread's main greenlet: the plain code that made the first switch. Switching to it
    /// from a body returns control (and the value) to that switch.
    static BasicGreenlet& main() noexcept {
        static thread_local BasicGreenlet main_greenlet{main_tag{}};
        return main_greenlet;
    }

  private:
    friend class GreenletSwitch<T>;
    friend class detail::GreenletPromise<T>;
    struct main_tag {};
    // suspended covers "running" too: the running greenlet is the one in running_.
    enum class phase : unsigned char { not_started, suspended, dead, main };
    using handle_type = std::coroutine_handle<detail::GreenletPromise<T>>;

    struct Starter {
        virtual ~Starter() = default;
        virtual Body start(BasicGreenlet& self, T&& first) = 0;
    };
    template <class F>
    struct StarterFor final : Starter {
        explicit StarterFor(F f) : body(std::move(f)) {}
        Body start(BasicGreenlet& self, T&& first) override {
            if constexpr (std::is_invocable_r_v<Body, F&, BasicGreenlet&, T>)
                return std::invoke(body, self, std::move(first));
            else if constexpr (std::is_invocable_r_v<Body, F&, T>)
                return std::invoke(body, std::move(first));
            else
                return std::invoke(body);
        }
        F body;
    };

    explicit BasicGreenlet(main_tag) noexcept : phase_(phase::main) {}

    /// switch_to() from plain code: runs greenlets until a switch reaches main.
    Switch switch_from_main(T& value) {
        if (is_main())
            return Switch(typename Switch::done_tag{}, std::move(value));
        prepare_to_enter(value);
        enter(&value).resume(); // returns when a switch reaches main
        assert(running_ == nullptr);
        BasicGreenlet& m = main();
        if (m.thrown_)
            std::rethrow_exception(std::exchange(m.thrown_, nullptr));
        return Switch(typename Switch::done_tag{}, std::move(*passed_));
    }

    /// The common case of a switch inside a body: to another started, live greenlet.
    bool is_switch_target() const noexcept {
        return phase_ == phase::suspended && this != running_;
    }

    /// The other cases of co_await switch_to(): false to suspend, true for a switch to oneself
    /// (Python returns the value at once). Throws for a dead target (before suspending).
    [[gnu::noinline]] bool prepare_slow(Switch& s) {
        if (this == running_) {
            passed_ = s.value_; // await_resume returns the value sent
            return true;
        }
        prepare_to_enter(*s.value_);
        return false;
    }

    /// Everything of a switch that may throw, done before the sender suspends: a dead target
    /// is an error, a new one gets its frame (its body's parameters take `value`).
    void prepare_to_enter(T& value) {
        if (phase_ == phase::dead)
            throw std::logic_error("switch_to() a dead ringlet::Greenlet (its body has finished)");
        if (phase_ == phase::not_started) {
            frame_ = starter_->start(*this, std::move(value)).release();
            frame_.promise().greenlet_ = this;
            phase_ = phase::suspended;
        }
    }

    /// Makes this greenlet the running one; `value` is what its pending switch returns (null:
    /// it rethrows thrown_).
    std::coroutine_handle<> enter(T* value) noexcept {
        passed_ = value;
        if (phase_ == phase::main) [[unlikely]] {
            running_ = nullptr;
            return std::noop_coroutine(); // back to the plain code's switch_to()
        }
        running_ = this;
        return frame_;
    }

    /// The exception of a child, raised at the running greenlet's pending switch.
    [[noreturn]] static void rethrow_in_running() {
        std::rethrow_exception(std::exchange(running_->thrown_, nullptr));
    }

    /// The body has returned or thrown: hand the outcome to the nearest live ancestor.
    std::coroutine_handle<> finish() noexcept {
        phase_ = phase::dead;
        BasicGreenlet* to = parent_;
        while (to->phase_ == phase::dead || to->phase_ == phase::not_started)
            to = to->parent_;
        detail::GreenletPromise<T>& p = frame_.promise();
        if (p.exception_) {
            to->thrown_ = std::exchange(p.exception_, nullptr);
            return to->enter(nullptr);
        }
        return to->enter(std::addressof(*p.result_));
    }

    static inline thread_local BasicGreenlet* running_ = nullptr; // null: main is running
    // The value the switch being resumed returns: it lives in the sender, in a finished body's
    // promise, or in the switch itself (made from plain code, or to oneself). Every way of
    // resuming a switch sets it just before, so await_resume has one path and no state to test.
    // Null: the resumed greenlet rethrows its thrown_.
    static inline thread_local T* passed_ = nullptr;

    std::unique_ptr<Starter> starter_; // null for main
    handle_type frame_;
    BasicGreenlet* parent_ = nullptr; // null for main only
    std::exception_ptr thrown_;       // a child's exception, raised at the pending switch
    phase phase_ = phase::not_started;
};

/// Python's greenlet: values of any copyable type, as GreenletValue.
using Greenlet = BasicGreenlet<GreenletValue>;
/// The return type of a Greenlet body: `[](Greenlet& self, GreenletValue v) -> GreenletBody {...}`.
using GreenletBody = Greenlet::Body;

} // namespace ringlet
