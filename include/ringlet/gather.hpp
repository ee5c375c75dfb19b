// gather and gather_settled: run tasks concurrently as child tasks of the running task and
// collect their results in argument order. Unlike asyncio, gather never returns while a child
// still runs (children may hold references into the caller's frame): on the first failure it
// cancels the others and waits for them before rethrowing. Loop thread only.
#pragma once

#include "ringlet/detail/task_ref.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/task.hpp"
#include "ringlet/task_group.hpp"

#include <cstddef>
#include <exception>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ringlet {

/// The outcome of one task of gather_settled(): its value (std::monostate for a void task), or
/// the exception it ended with (a CancelledError if it was cancelled).
template <class T>
class Settled {
  public:
    using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

    explicit Settled(value_type value) : outcome_(std::in_place_index<0>, std::move(value)) {}
    /// `error` must not be null; `cancelled` says it is a CancelledError.
    Settled(std::exception_ptr error, bool cancelled)
        : outcome_(std::in_place_index<1>, std::move(error)), cancelled_(cancelled) {}

    bool has_value() const noexcept { return outcome_.index() == 0; }
    /// True if the task was cancelled (exception() is then a CancelledError).
    bool cancelled() const noexcept { return cancelled_; }
    /// The task's exception, or nullptr if it produced a value.
    std::exception_ptr exception() const noexcept {
        return has_value() ? nullptr : std::get<1>(outcome_);
    }
    /// Throws: the task's exception if it did not produce a value.
    value_type& value() & {
        check();
        return std::get<0>(outcome_);
    }
    const value_type& value() const& {
        check();
        return std::get<0>(outcome_);
    }
    value_type&& value() && {
        check();
        return std::get<0>(std::move(outcome_));
    }

  private:
    void check() const {
        if (!has_value())
            std::rethrow_exception(std::get<1>(outcome_));
    }

    std::variant<value_type, std::exception_ptr> outcome_;
    bool cancelled_ = false;
};

namespace detail {

template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
using gather_vector_t = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

/// Spawns each task as a child named "<parent>.<what>[i]". A spawn that fails (empty Task,
/// already started, out of memory) counts as that child's failure.
template <class... T>
void spawn_children(ChildSet& children, const char* what, Task<T>&... tasks) {
    EventLoop& loop = EventLoop::current();
    std::string prefix = child_task_name(what) + "[";
    std::size_t index = 0;
    auto spawn_one = [&](auto& task) {
        children.spawn_or_record(loop, std::move(task), prefix + std::to_string(index++) + "]");
    };
    try {
        (spawn_one(tasks), ...);
    } catch (...) {
        children.fail(std::current_exception());
    }
}

template <class T>
void spawn_children(ChildSet& children, const char* what, std::vector<Task<T>>& tasks) {
    EventLoop& loop = EventLoop::current();
    std::string prefix = child_task_name(what) + "[";
    try {
        for (std::size_t i = 0; i < tasks.size(); ++i)
            children.spawn_or_record(loop, std::move(tasks[i]), prefix + std::to_string(i) + "]");
    } catch (...) {
        children.fail(std::current_exception());
    }
}

/// Child `i`'s value after a successful join (its exception was rethrown by the join).
template <class T>
value_or_monostate_t<T> take_value(ChildSet& children, std::size_t i) {
    TaskState* child = children.child(i);
    if (child == nullptr)
        std::rethrow_exception(children.spawn_error(i));
    if constexpr (std::is_void_v<T>) {
        take_task_result<void>(*child);
        return {};
    } else {
        return take_task_result<T>(*child);
    }
}

template <class T>
Settled<T> take_settled(ChildSet& children, std::size_t i) {
    TaskState* child = children.child(i);
    if (child == nullptr)
        return Settled<T>(children.spawn_error(i), false);
    bool cancelled = child->outcome() == TaskState::Outcome::cancelled;
    try {
        return Settled<T>(take_value<T>(children, i));
    } catch (...) {
        return Settled<T>(std::current_exception(), cancelled);
    }
}

template <class... T, std::size_t... I>
std::tuple<value_or_monostate_t<T>...> take_values(ChildSet& children, std::index_sequence<I...>) {
    // Braced initialisation evaluates left to right.
    return std::tuple<value_or_monostate_t<T>...>{take_value<T>(children, I)...};
}

template <class... T, std::size_t... I>
std::tuple<Settled<T>...> take_all_settled(ChildSet& children, std::index_sequence<I...>) {
    return std::tuple<Settled<T>...>{take_settled<T>(children, I)...};
}

} // namespace detail

/// Runs the tasks concurrently as children of the running task (named "<parent>.gather[i]")
/// and returns their results in argument order, std::monostate for a void task.
/// Throws: the first exception of a child (a child cancelled by someone else counts as failed
/// with CancelledError), after the other children were cancelled and have finished.
/// Cancellation: cancels every child, waits for them all, then raises CancelledError.
/// Lifetime: the children finish before gather returns or throws, so they may borrow from the
/// caller's frame.
template <class... T>
Task<std::tuple<detail::value_or_monostate_t<T>...>> gather(Task<T>... tasks) {
    detail::ChildSet children(detail::ChildPolicy::gather);
    detail::spawn_children(children, "gather", tasks...);
    auto join = children.join("gather");
    co_await join;
    co_return detail::take_values<T...>(children, std::index_sequence_for<T...>{});
}

/// The vector form of gather(): results in the order of `tasks` (for T = void, nothing).
/// An empty vector gives an empty result at once. Throws, Cancellation, Lifetime: as above.
template <class T>
Task<detail::gather_vector_t<T>> gather(std::vector<Task<T>> tasks) {
    detail::ChildSet children(detail::ChildPolicy::gather);
    detail::spawn_children(children, "gather", tasks);
    auto join = children.join("gather");
    co_await join;
    if constexpr (!std::is_void_v<T>) {
        std::vector<T> results;
        results.reserve(children.size());
        for (std::size_t i = 0; i < children.size(); ++i)
            results.push_back(detail::take_value<T>(children, i));
        co_return results;
    }
}

/// Like gather(), but waits for every task whatever happens to the others and returns each
/// outcome, value or exception, in argument order (asyncio's return_exceptions=True).
/// Throws: only if the running task is cancelled (see Cancellation).
/// Cancellation: cancels every child, waits for them all, then raises CancelledError.
template <class... T>
Task<std::tuple<Settled<T>...>> gather_settled(Task<T>... tasks) {
    detail::ChildSet children(detail::ChildPolicy::settle);
    detail::spawn_children(children, "gather_settled", tasks...);
    auto join = children.join("gather_settled");
    co_await join;
    co_return detail::take_all_settled<T...>(children, std::index_sequence_for<T...>{});
}

/// The vector form of gather_settled(): one outcome per task, in the order of `tasks`.
template <class T>
Task<std::vector<Settled<T>>> gather_settled(std::vector<Task<T>> tasks) {
    detail::ChildSet children(detail::ChildPolicy::settle);
    detail::spawn_children(children, "gather_settled", tasks);
    auto join = children.join("gather_settled");
    co_await join;
    std::vector<Settled<T>> results;
    results.reserve(children.size());
    for (std::size_t i = 0; i < children.size(); ++i)
        results.push_back(detail::take_settled<T>(children, i));
    co_return results;
}

} // namespace ringlet
