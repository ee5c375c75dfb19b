// wait_for (asyncio's wait_for) and shield. wait_for runs the inner work as a child task and,
// on timeout, cancels it and waits for it to finish before throwing TimeoutError -- or returns
// its value if it produced one anyway, so a timeout never discards received data. shield lets
// a task stop waiting for another on cancellation without cancelling it. Loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/detail/task_ref.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/spawn.hpp"
#include "ringlet/task.hpp"
#include "ringlet/task_group.hpp"

#include <cassert>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace ringlet {
namespace detail {

/// What one wait_for is doing with its child task; lives in the wait's coroutine frame.
struct TimedJoin {
    explicit TimedJoin(TaskState* task) noexcept : child(task) {}

    TaskState* child;
    std::optional<EventLoop::time_point> deadline; // until the timer fired
    bool timed_out = false;
    bool outer_cancelled = false;
    bool cancel_sent = false;

    void cancel_child() noexcept {
        if (!std::exchange(cancel_sent, true))
            child->cancel();
    }
};

/// Suspends until the child finished or the deadline passed. The timer targets the waiting
/// task itself, as sleep does: whichever of "child done" and "timer fired" comes second sees
/// that the other already queued the task (cancel_timer() fails) and does not queue it again.
/// Cancellation: cancels the child and keeps waiting for it (without a timer).
class ChildOrDeadline final : public SuspendPoint, public DoneObserver {
  public:
    explicit ChildOrDeadline(TimedJoin& join) noexcept : join_(join) {}
    ChildOrDeadline(const ChildOrDeadline&) = delete;
    ChildOrDeadline& operator=(const ChildOrDeadline&) = delete;
    ~ChildOrDeadline() {
        if (observing_)
            join_.child->set_done_observer(nullptr);
    }

    bool await_ready() const noexcept { return join_.child->done(); }
    bool await_suspend(std::coroutine_handle<> caller) {
        ensure_not_awaited(*join_.child);
        if (!enter(caller)) {
            // A cancel was pending: the child is cancelled and waited for all the same.
            cancelled_ = false;
            join_.outer_cancelled = true;
            join_.cancel_child();
            task_->suspend_on(this, caller);
        }
        join_.child->set_done_observer(this);
        observing_ = true;
        if (join_.deadline && !join_.outer_cancelled) {
            timer_ = task_->loop()->add_timer(*join_.deadline, task_);
            timer_armed_ = true;
        }
        return true;
    }
    void await_resume() noexcept {
        if (task_ == nullptr)
            return;
        task_->clear_suspension();
        if (observing_) { // the timer woke us; the child still runs
            join_.child->set_done_observer(nullptr);
            observing_ = false;
        }
        // Still armed here means the timer fired: nobody cancelled it.
        timer_fired_ = std::exchange(timer_armed_, false);
    }
    /// After the co_await: the deadline passed (the child may have finished as well).
    bool timer_fired() const noexcept { return timer_fired_; }

    void on_task_done(TaskState&) noexcept override {
        observing_ = false;
        // If the timer already fired, the task is queued already: never queue it twice.
        if (timer_armed_ && !task_->loop()->cancel_timer(timer_))
            return;
        timer_armed_ = false;
        if (!task_->done())
            task_->loop()->ready_queue().push(task_);
    }
    void request_cancel(TaskState&) noexcept override {
        // The task is resumed by the child's completion (or by a timer that already fired).
        if (timer_armed_ && task_->loop()->cancel_timer(timer_))
            timer_armed_ = false;
        join_.outer_cancelled = true;
        join_.cancel_child();
    }
    std::string what_awaited() const override { return "wait_for " + join_.child->describe(); }

  private:
    TimedJoin& join_;
    TimerId timer_;
    bool observing_ = false;
    bool timer_armed_ = false;
    bool timer_fired_ = false;
};

/// Loop durations are nanoseconds: longer timeouts are clamped to about a century, negative
/// ones to zero.
template <class Rep, class Period>
EventLoop::duration to_loop_duration(std::chrono::duration<Rep, Period> timeout) {
    constexpr auto longest = std::chrono::hours(24 * 365 * 100);
    if (timeout <= timeout.zero())
        return EventLoop::duration::zero();
    if (std::chrono::duration<double>(timeout) >= std::chrono::duration<double>(longest))
        return std::chrono::duration_cast<EventLoop::duration>(longest);
    return std::chrono::duration_cast<EventLoop::duration>(timeout);
}

/// Waits for `child` under a timeout; see wait_for().
template <class T>
Task<T> join_with_timeout(TaskRef child, EventLoop::duration timeout, ResultAccess access) {
    TimedJoin join(child.get());
    if (!join.child->done()) {
        if (timeout <= EventLoop::duration::zero()) {
            join.timed_out = true;
            join.cancel_child();
        } else {
            join.deadline = EventLoop::current().time() + timeout;
        }
        // Each round ends with the child done or the timer fired, which happens once; then
        // only the child's completion resumes the task.
        while (!join.child->done()) {
            ChildOrDeadline wait(join);
            co_await wait;
            if (wait.timer_fired()) {
                join.deadline.reset();
                if (!join.child->done() && !join.outer_cancelled) {
                    join.timed_out = true;
                    join.cancel_child();
                }
            }
        }
    }
    if (join.child->outcome() == TaskState::Outcome::cancelled) {
        if (join.outer_cancelled) {
            join.child->take_exception();
            current_task_state->clear_cancel_request();
            throw CancelledError();
        }
        if (join.timed_out) {
            join.child->take_exception();
            throw TimeoutError();
        }
    }
    // A value (even one produced after the cancel) or an exception of the inner work wins; an
    // outer cancellation then stays pending for the next suspension point.
    co_return task_result<T>(*join.child, access);
}

template <class A>
concept HasMemberCoAwait = requires(A&& a) {
    static_cast<A&&>(a).operator co_await();
};

template <class A>
struct AwaiterOf {
    using type = A;
};
template <HasMemberCoAwait A>
struct AwaiterOf<A> {
    using type = decltype(std::declval<A>().operator co_await());
};

/// Something `co_await` accepts: an awaiter, or a type with a member operator co_await.
template <class A>
concept Awaitable = requires(typename AwaiterOf<A>::type& awaiter, std::coroutine_handle<> h) {
    { awaiter.await_ready() } -> std::convertible_to<bool>;
    awaiter.await_suspend(h);
    awaiter.await_resume();
};

template <class A>
using await_value_t =
    std::remove_cvref_t<decltype(std::declval<typename AwaiterOf<A>::type&>().await_resume())>;

template <class X>
inline constexpr bool is_join_handle_v = false;
template <class T>
inline constexpr bool is_join_handle_v<JoinHandle<T>> = true;

/// Awaits `awaitable` in a task of its own; it lives in this frame until it completes.
template <class R, class A>
Task<R> await_as_task(A awaitable) {
    co_return co_await std::move(awaitable);
}

template <class T>
TaskRef spawn_wait_for_child(Task<T> task) {
    auto frame = task.release_for_spawn();
    return TaskRef::adopt(
        EventLoop::current().spawn_frame(frame, frame.promise(), child_task_name("wait_for")));
}

/// shield()'s awaiter: awaits a task without passing a cancellation on to it.
template <class T>
class ShieldAwaiter final : public SuspendPoint, public DoneObserver {
  public:
    explicit ShieldAwaiter(TaskRef child) noexcept : child_(std::move(child)) {}
    /// Movable before it is awaited, so that wait_for(shield(handle), timeout) works.
    ShieldAwaiter(ShieldAwaiter&& other) noexcept : child_(std::move(other.child_)) {
        assert(!other.observing_);
    }
    ShieldAwaiter(const ShieldAwaiter&) = delete;
    ShieldAwaiter& operator=(const ShieldAwaiter&) = delete;
    ~ShieldAwaiter() {
        if (observing_)
            child_->set_done_observer(nullptr);
    }

    bool await_ready() const {
        if (!child_)
            throw std::logic_error("shield of an empty ringlet::JoinHandle");
        return child_->done();
    }
    bool await_suspend(std::coroutine_handle<> caller) {
        ensure_not_awaited(*child_.get());
        if (!enter(caller))
            return false;
        child_->set_done_observer(this);
        observing_ = true;
        return true;
    }
    T await_resume() {
        leave();
        return task_result<T>(*child_.get(), ResultAccess::copy);
    }

    void on_task_done(TaskState&) noexcept override {
        observing_ = false;
        woken_ = true;
        if (!task_->done())
            task_->loop()->ready_queue().push(task_);
    }
    void request_cancel(TaskState&) noexcept override {
        if (woken_)
            return; // the result is delivered; the cancellation stays pending
        child_->set_done_observer(nullptr);
        observing_ = false;
        mark_cancelled();
        task_->loop()->ready_queue().push(task_);
    }
    std::string what_awaited() const override { return "shield " + child_->describe(); }

  private:
    TaskRef child_;
    bool observing_ = false;
    bool woken_ = false;
};

} // namespace detail

/// Runs `task` as a child task (named "<parent>.wait_for") and returns its result if it
/// finishes within `timeout`. On timeout, cancels it, waits for it to finish, then throws
/// TimeoutError -- unless it produced a value anyway (it caught CancelledError and returned,
/// or its I/O completed): then returns that value. A timeout <= 0 cancels it at once.
/// Throws: TimeoutError; the task's own exception.
/// Cancellation: cancels the task and waits for it; raises CancelledError if it ended
/// cancelled, else delivers its outcome and the cancellation stays pending for the next
/// suspension point (as co_await on a JoinHandle does).
/// Lifetime: the task has finished when wait_for returns or throws.
template <class T, class Rep, class Period>
Task<T> wait_for(Task<T> task, std::chrono::duration<Rep, Period> timeout) {
    detail::TaskRef child = detail::spawn_wait_for_child(std::move(task));
    co_return co_await detail::join_with_timeout<T>(
        std::move(child), detail::to_loop_duration(timeout), detail::ResultAccess::move);
}

/// wait_for() on an already spawned task; on timeout the task is cancelled and awaited
/// (asyncio does the same), so it has finished when wait_for returns or throws.
/// Throws: std::logic_error if the handle is empty or another task awaits it; else as above.
template <class T, class Rep, class Period>
Task<T> wait_for(JoinHandle<T> handle, std::chrono::duration<Rep, Period> timeout) {
    if (!handle)
        throw std::logic_error("wait_for on an empty ringlet::JoinHandle");
    co_return co_await detail::join_with_timeout<T>(detail::TaskRef(handle.internal_state()),
                                                    detail::to_loop_duration(timeout),
                                                    detail::ResultAccess::copy);
}

/// wait_for() on any awaitable (ringlet::sleep(..), an I/O operation...): it is moved into a
/// child task of its own, which the timeout cancels; a completed I/O result is returned even if
/// the timeout fired meanwhile.
/// Lifetime: buffers the awaitable borrows must stay valid until wait_for returns or throws;
/// the operation has completed (or been cancelled and reaped) by then.
template <class A, class Rep, class Period>
requires detail::Awaitable<A> &&(!detail::is_task_v<A>)&&(!detail::is_join_handle_v<A>)
    Task<detail::await_value_t<A>> wait_for(A awaitable,
                                            std::chrono::duration<Rep, Period> timeout) {
    using Result = detail::await_value_t<A>;
    detail::TaskRef child =
        detail::spawn_wait_for_child(detail::await_as_task<Result>(std::move(awaitable)));
    co_return co_await detail::join_with_timeout<Result>(
        std::move(child), detail::to_loop_duration(timeout), detail::ResultAccess::move);
}

/// Awaits the task of `handle` without passing a cancellation on to it: if the awaiting task is
/// cancelled, it stops waiting and raises CancelledError at once while the shielded task keeps
/// running; its result stays available through the handle. `wait_for(shield(handle), timeout)`
/// gives up waiting after `timeout` without cancelling the task.
/// Throws: what the task throws; std::logic_error if the handle is empty or another task
/// awaits it (a task has one awaiter at a time).
template <class T>
[[nodiscard]] detail::ShieldAwaiter<T> shield(const JoinHandle<T>& handle) noexcept {
    return detail::ShieldAwaiter<T>(detail::TaskRef(handle.internal_state()));
}

} // namespace ringlet
