// TaskGroup and task_group(): structured concurrency (asyncio's TaskGroup, trio's nursery) as
// a scope, since C++ has no async destructor. The group's body and every task spawned into it
// are child tasks on the current loop; task_group() returns only once all of them finished.
// Also defines detail::ChildSet, the bookkeeping that gather() shares. Loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/detail/task_ref.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/spawn.hpp"
#include "ringlet/task.hpp"

#include <cassert>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace ringlet {

class TaskGroup;

namespace detail {

/// How a ChildSet reacts to a child that ends badly.
enum class ChildPolicy : std::uint8_t {
    settle, ///< wait for every child, never cancel one because another failed (gather_settled)
    gather, ///< an exception or an outside cancellation of a child cancels the others (gather)
    group,  ///< an exception cancels the others; a cancelled child is no failure (TaskGroup)
};

/// Child tasks watched through their supervisor slot, and the wait for all of them.
/// Lifetime: lives in the frame of the coroutine that spawns the children, which must await
/// join() before the set is destroyed (the children may hold references into that frame).
class ChildSet {
  public:
    explicit ChildSet(ChildPolicy policy) noexcept : policy_(policy) {}
    ChildSet(const ChildSet&) = delete;
    ChildSet& operator=(const ChildSet&) = delete;

    /// Spawns `task` as the next child. Throws what spawn throws (nothing is added then).
    template <class T>
    TaskState& spawn(EventLoop& loop, Task<T> task, std::string_view name) {
        Watch& watch = watches_.emplace_back(*this);
        try {
            start(watch, loop, std::move(task), name);
        } catch (...) {
            watches_.pop_back();
            throw;
        }
        return *watch.child.get();
    }

    /// Spawns `task` as the next child; a Task that cannot be spawned (empty, already started)
    /// becomes a slot holding that exception, which counts as a failed child.
    template <class T>
    void spawn_or_record(EventLoop& loop, Task<T> task, std::string_view name) {
        Watch& watch = watches_.emplace_back(*this);
        try {
            start(watch, loop, std::move(task), name);
        } catch (...) {
            watch.spawn_error = std::current_exception();
            if (policy_ != ChildPolicy::settle)
                fail(watch.spawn_error);
        }
    }

    /// Records `error` as the first failure (unless there is one) and cancels the children.
    void fail(std::exception_ptr error) noexcept {
        if (!first_error_)
            first_error_ = std::move(error);
        abort();
    }

    /// Cancels every unfinished child; children added later are cancelled at once.
    void abort() noexcept {
        if (aborting_)
            return;
        aborting_ = true;
        for (Watch& watch : watches_)
            if (watch.child && !watch.child->done())
                watch.child->cancel();
    }

    std::size_t size() const noexcept { return watches_.size(); }
    std::size_t pending() const noexcept { return pending_; }
    bool aborting() const noexcept { return aborting_; }
    /// join() has seen every child finish: nothing may be added any more.
    bool closed() const noexcept { return closed_; }
    /// Slot `i`: its task, or nullptr if spawning it failed (then see spawn_error()).
    TaskState* child(std::size_t i) const noexcept { return watches_[i].child.get(); }
    const std::exception_ptr& spawn_error(std::size_t i) const noexcept {
        return watches_[i].spawn_error;
    }

    /// Suspends until every child finished, then rethrows the first failure; else, if the
    /// awaiting task was cancelled meanwhile, raises CancelledError.
    /// Cancellation: cancels every child and keeps waiting until all of them finished. If the
    /// children had all finished already (the task is queued), the outcome is delivered and
    /// the cancellation stays pending for the next suspension point.
    class JoinAwaiter final : public SuspendPoint {
      public:
        JoinAwaiter(ChildSet& set, const char* what) noexcept : set_(set), what_(what) {}
        JoinAwaiter(const JoinAwaiter&) = delete;
        JoinAwaiter& operator=(const JoinAwaiter&) = delete;
        ~JoinAwaiter() {
            if (set_.waiter_ == this)
                set_.waiter_ = nullptr;
        }

        bool await_ready() const noexcept { return set_.pending_ == 0; }
        bool await_suspend(std::coroutine_handle<> caller) {
            assert(set_.waiter_ == nullptr);
            if (!enter(caller)) {
                // A cancel was pending: the children are cancelled and awaited all the same.
                cancelled_ = false;
                set_.outer_cancelled_ = true;
                set_.abort();
                task_->suspend_on(this, caller);
            }
            set_.waiter_ = this;
            return true;
        }
        void await_resume() {
            set_.waiter_ = nullptr;
            set_.closed_ = true;
            if (task_ != nullptr)
                task_->clear_suspension();
            // A real error beats the cancellation, which then stays pending (asyncio's
            // TaskGroup gives errors priority too).
            if (set_.first_error_)
                std::rethrow_exception(set_.first_error_);
            if (set_.outer_cancelled_) {
                task_->clear_cancel_request();
                throw CancelledError();
            }
        }

        void request_cancel(TaskState&) noexcept override {
            if (woken_)
                return;
            set_.outer_cancelled_ = true;
            set_.abort();
        }
        std::string what_awaited() const override {
            return std::string(what_) + " (" + std::to_string(set_.pending_) + " of " +
                   std::to_string(set_.watches_.size()) + " children running)";
        }

      private:
        friend class ChildSet;
        void wake() noexcept {
            woken_ = true;
            set_.closed_ = true;
            // A task abandoned at loop close may see its children finish after it did.
            if (!task_->done())
                task_->loop()->ready_queue().push(task_);
        }

        ChildSet& set_;
        const char* what_;
        bool woken_ = false;
    };

    /// `co_await set.join("gather")`; `what` names the wait in dump_tasks().
    JoinAwaiter join(const char* what) noexcept { return JoinAwaiter(*this, what); }

  private:
    struct Watch final : DoneObserver {
        explicit Watch(ChildSet& owner) noexcept : set(&owner) {}
        Watch(const Watch&) = delete;
        Watch& operator=(const Watch&) = delete;
        ~Watch() {
            if (child && !child->done())
                child->set_supervisor(nullptr);
        }
        void on_task_done(TaskState& task) noexcept override { set->child_done(task); }

        ChildSet* set;
        TaskRef child;
        std::exception_ptr spawn_error;
    };

    template <class T>
    void start(Watch& watch, EventLoop& loop, Task<T> task, std::string_view name) {
        auto frame = task.release_for_spawn();
        watch.child = TaskRef::adopt(loop.spawn_frame(frame, frame.promise(), name));
        ++pending_;
        watch.child->set_supervisor(&watch);
        if (aborting_)
            watch.child->cancel();
    }

    void child_done(TaskState& task) noexcept {
        assert(pending_ > 0);
        --pending_;
        switch (task.outcome()) {
        case TaskState::Outcome::exception: {
            // Retrieved here: a group or a gather reports only its first failure.
            std::exception_ptr error = task.take_exception();
            if (policy_ != ChildPolicy::settle)
                fail(std::move(error));
            break;
        }
        case TaskState::Outcome::cancelled:
            // asyncio's gather treats a child cancelled from outside as failed with
            // CancelledError; children we cancelled ourselves are expected to end so.
            if (policy_ == ChildPolicy::gather && !aborting_)
                fail(std::make_exception_ptr(CancelledError()));
            break;
        default:
            break;
        }
        if (pending_ == 0 && waiter_ != nullptr)
            waiter_->wake();
    }

    // A deque keeps the watches' addresses stable as children are added.
    std::deque<Watch> watches_;
    std::exception_ptr first_error_;
    JoinAwaiter* waiter_ = nullptr;
    std::size_t pending_ = 0;
    ChildPolicy policy_;
    bool aborting_ = false;
    bool outer_cancelled_ = false;
    bool closed_ = false;
};

/// "<name of the running task>.<what>", the name of a combinator's child task.
inline std::string child_task_name(const char* what) {
    std::string parent = current_task_state != nullptr ? current_task_state->name() : "ringlet";
    return parent + "." + what;
}

template <class Body>
using task_group_result_t = typename std::invoke_result_t<Body&, TaskGroup&>::value_type;

template <class X>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<Task<T>> = true;

/// What task_group() accepts: a callable taking a TaskGroup& and returning a Task.
template <class Body>
concept TaskGroupBody =
    std::invocable<Body&, TaskGroup&> && is_task_v<std::invoke_result_t<Body&, TaskGroup&>>;

} // namespace detail

/// Runs `body(group)` as a child task and waits until it and every task spawned into the group
/// finished; returns the body's value.
/// Throws: the first exception of the body or of a child, once every task of the group has
/// finished (the others are cancelled first). Later exceptions are discarded (retrieved).
/// Cancellation: cancels the body and every child, waits for them all, raises CancelledError.
/// Lifetime: the group, and the body's closure, live until task_group() returns; references
/// the body captures only need to outlive the co_await.
template <detail::TaskGroupBody Body>
Task<detail::task_group_result_t<Body>> task_group(Body body);

/// A set of child tasks that task_group() waits for; see task_group().
class TaskGroup {
  public:
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;

    /// Spawns `task` into the group (by the body, a child, or any task of the same loop).
    /// Throws: std::logic_error if the group has finished or is shutting down after a failure
    /// or a cancellation, or if the Task is empty or already started.
    /// Cancellation: the first failure in the group, or the cancellation of the task awaiting
    /// task_group(), cancels the task. A task that is cancelled alone does not fail the group.
    template <class T>
    JoinHandle<T> spawn(Task<T> task, std::string_view name = {}) {
        if (children_.closed())
            throw std::logic_error("TaskGroup::spawn: the task group has finished");
        if (children_.aborting())
            throw std::logic_error("TaskGroup::spawn: the task group is shutting down");
        detail::TaskState& child = children_.spawn(*loop_, std::move(task), name);
        return JoinHandle<T>(detail::TaskRef(&child));
    }

    /// Tasks spawned into the group so far, the body included.
    std::size_t size() const noexcept { return children_.size(); }
    /// Tasks of the group that have not finished, the body included.
    std::size_t pending() const noexcept { return children_.pending(); }

  private:
    explicit TaskGroup(EventLoop& loop) noexcept : loop_(&loop) {}

    template <detail::TaskGroupBody Body>
    friend Task<detail::task_group_result_t<Body>> task_group(Body body);

    EventLoop* loop_;
    detail::ChildSet children_{detail::ChildPolicy::group};
};

template <detail::TaskGroupBody Body>
Task<detail::task_group_result_t<Body>> task_group(Body body) {
    using Result = detail::task_group_result_t<Body>;
    TaskGroup group(EventLoop::current());
    // The body runs as a child like the others, so that a failure elsewhere can cancel it.
    detail::TaskState& body_task =
        group.children_.spawn(*group.loop_, body(group), detail::child_task_name("task_group"));
    auto join = group.children_.join("task group");
    co_await join;
    co_return detail::take_task_result<Result>(body_task);
}

} // namespace ringlet
