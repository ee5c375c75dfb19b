// Thread offload: ThreadPool, to_thread, run_in_executor, call_soon_threadsafe.
// A function handed to a pool runs on a worker thread; its result comes back to the loop thread
// through the loop's RemoteInbox. Cancelling the awaiting task does not stop the function: it
// finishes on its thread and its result is dropped. The job and its awaiter share a small
// reference-counted state, so the job never touches the awaiter's frame.
#pragma once

#include "ringlet/detail/remote_inbox.hpp"
#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/task.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ringlet {

/// A fixed set of worker threads running submitted jobs in FIFO order.
/// Thread safety: submit() and shutdown() from any thread.
/// Lifetime: the destructor runs the queued jobs to the end and joins the workers; a job must
/// not destroy its own pool.
class ThreadPool {
  public:
    /// max(4, std::thread::hardware_concurrency()).
    static std::size_t default_size() noexcept;

    /// Starts `threads` workers.
    /// Throws: std::invalid_argument if `threads` is 0; std::system_error if a thread cannot
    /// be started.
    explicit ThreadPool(std::size_t threads = default_size());
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Queues `job`; a worker runs it as soon as one is free.
    /// Throws: std::logic_error after shutdown(). An exception escaping `job` on the worker
    /// calls std::terminate (as with std::thread): jobs catch their own exceptions.
    void submit(std::function<void()> job);
    /// Stops accepting jobs, runs the queued ones to the end and joins the workers. Idempotent;
    /// concurrent callers all return after the workers are joined. Called from one of the
    /// pool's own jobs it only stops accepting jobs (the destructor joins).
    void shutdown() noexcept;
    /// The number of worker threads.
    std::size_t size() const noexcept { return workers_.size(); }

  private:
    void work() noexcept;
    bool is_worker_thread() const noexcept;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::mutex join_mutex_; // held while joining, so that every shutdown() returns joined
    std::vector<std::thread> workers_;
    std::vector<std::thread::id> worker_ids_;
};

namespace detail {

/// The type an offloaded call yields: a value, or an lvalue reference. An rvalue reference
/// result is moved into a value on the worker, while the arguments are still alive.
template <class Fn, class... Args>
using offload_result_t =
    std::conditional_t<std::is_lvalue_reference_v<std::invoke_result_t<Fn, Args...>>,
                       std::invoke_result_t<Fn, Args...>,
                       std::remove_cvref_t<std::invoke_result_t<Fn, Args...>>>;

/// What an offloaded job and its awaiter share.
/// Who touches what: the worker runs the call and writes outcome (value_/error_) before
/// posting delivery to the loop's inbox, whose mutex orders that write before the loop
/// thread reads it. waiter_ is read and written on the loop thread only. abandoned_ is a hint
/// from the loop thread that lets a worker skip a call nobody waits for any more.
template <class R, class Fn, class... Args>
class OffloadState {
  public:
    explicit OffloadState(Fn fn, Args... args)
        : call_(std::in_place, std::move(fn), std::move(args)...) {}

    /// Loop thread: the task `waiter` waits for this job; its loop gets one unit of external
    /// work, ended by deliver() or abandon(), whichever comes first.
    void arm(TaskState* waiter) noexcept {
        waiter_ = waiter;
        waiter_->loop()->begin_external_work();
    }

    /// Worker thread: runs the call unless abandoned, then posts the delivery to the loop.
    static void execute(const std::shared_ptr<OffloadState>& self,
                        const std::shared_ptr<RemoteInbox>& inbox) noexcept {
        if (self->abandoned_.load(std::memory_order_relaxed)) {
            // Cancelled before it started (concurrent.futures' Future.cancel): skip the call.
            // The arguments are destroyed here, on the worker, as if it had run.
            self->call_.reset();
            return;
        }
        self->run_call();
        self->call_.reset();
        // A closed loop drops the callback (and with it this reference) inside post().
        inbox->post([self] { self->deliver(); });
    }

    /// Loop thread: wakes the waiter, unless it gave up already (the outcome is dropped).
    void deliver() noexcept {
        TaskState* waiter = std::exchange(waiter_, nullptr);
        if (waiter == nullptr)
            return;
        EventLoop* loop = waiter->loop();
        loop->end_external_work();
        loop->ready_queue().push(waiter);
    }

    /// Loop thread: nobody waits any more. False if the outcome was delivered already (the
    /// waiter is queued and will return it).
    bool abandon() noexcept {
        TaskState* waiter = std::exchange(waiter_, nullptr);
        if (waiter == nullptr)
            return false;
        abandoned_.store(true, std::memory_order_relaxed);
        if (EventLoop* loop = waiter->loop())
            loop->end_external_work();
        return true;
    }

    /// Loop thread, after deliver(): the call's value, or its exception rethrown.
    R take() {
        if (error_)
            std::rethrow_exception(error_);
        if constexpr (std::is_lvalue_reference_v<R>)
            return **value_;
        else if constexpr (!std::is_void_v<R>)
            return std::move(*value_);
    }

  private:
    void run_call() noexcept {
        auto invoke = [](Fn&& fn, Args&&... args) -> decltype(auto) {
            return std::invoke(std::move(fn), std::move(args)...);
        };
        try {
            if constexpr (std::is_void_v<R>)
                std::apply(invoke, std::move(*call_));
            else if constexpr (std::is_lvalue_reference_v<R>)
                value_.emplace(std::addressof(std::apply(invoke, std::move(*call_))));
            else
                value_.emplace(std::apply(invoke, std::move(*call_)));
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    using Stored = std::conditional_t<std::is_lvalue_reference_v<R>, std::remove_reference_t<R>*,
                                      std::conditional_t<std::is_void_v<R>, std::monostate, R>>;

    std::optional<std::tuple<Fn, Args...>> call_;
    std::optional<Stored> value_;
    std::exception_ptr error_;
    TaskState* waiter_ = nullptr;
    std::atomic<bool> abandoned_{false};
};

/// Suspends the current task while a pool runs the call; resumes it on the loop thread with
/// the call's value or exception.
template <class R, class Fn, class... Args>
class OffloadAwaiter final : public SuspendPoint {
  public:
    using State = OffloadState<R, Fn, Args...>;

    /// `pool` null: the loop's default executor.
    OffloadAwaiter(ThreadPool* pool, Fn fn, Args... args)
        : pool_(pool), state_(std::make_shared<State>(std::move(fn), std::move(args)...)) {}
    OffloadAwaiter(const OffloadAwaiter&) = delete;
    OffloadAwaiter& operator=(const OffloadAwaiter&) = delete;
    ~OffloadAwaiter() {
        // The frame goes while still waiting (a task abandoned at loop close): make sure a
        // late delivery finds nobody to wake.
        state_->abandon();
    }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) {
        if (!enter(caller))
            return false;
        EventLoop& loop = *task_->loop();
        bool armed = false;
        try {
            ThreadPool& pool = pool_ != nullptr ? *pool_ : loop.default_executor();
            state_->arm(task_);
            armed = true;
            pool.submit(
                [state = state_, inbox = loop.remote_inbox()] { State::execute(state, inbox); });
        } catch (...) {
            if (armed)
                state_->abandon();
            task_->clear_suspension();
            throw;
        }
        return true;
    }
    R await_resume() {
        leave();
        return state_->take();
    }

    void request_cancel(detail::TaskState&) noexcept override {
        // Not delivered yet: stop waiting now; the call runs on and its outcome is dropped.
        // Delivered: the task is queued already (never push twice); it returns the outcome
        // and the cancel stays pending for the next suspension point.
        if (state_->abandon()) {
            task_->loop()->ready_queue().push(task_);
            mark_cancelled();
        }
    }
    std::string what_awaited() const override { return "to_thread"; }

  private:
    ThreadPool* pool_;
    std::shared_ptr<State> state_;
};

template <class R, class Fn, class... Args>
Task<R> offload(ThreadPool* pool, Fn fn, Args... args) {
    OffloadAwaiter<R, Fn, Args...> awaiter(pool, std::move(fn), std::move(args)...);
    co_return co_await awaiter;
}

} // namespace detail

/// Runs `fn(args...)` on the running loop's default_executor() and yields its result on the
/// loop thread, or rethrows its exception there (same type). asyncio's to_thread.
/// `fn` and `args` are decay-copied into the job, as std::thread does; the call receives them
/// as rvalues. The job is submitted when the Task is first awaited (or spawned).
/// Throws: whatever `fn` throws; std::logic_error when awaited outside a ringlet task.
/// Lifetime: pass std::ref / a pointer / a capture by reference only for objects that outlive
/// the call itself, which can outlast the awaiting task when it is cancelled (the loop's
/// close() waits for it). A reference result must refer to something that outlives the job's
/// arguments (they are destroyed on the worker right after the call). Values, exceptions
/// and arguments may be destroyed on the worker thread.
/// Cancellation: raises CancelledError at once, without waiting for `fn`; `fn` keeps running
/// on its thread and its result (or exception) is dropped. A call that has not started yet
/// is skipped.
template <class Fn, class... Args>
requires std::is_invocable_v<Fn, Args...> Task<detail::offload_result_t<Fn, Args...>>
to_thread(Fn fn, Args... args) {
    return detail::offload<detail::offload_result_t<Fn, Args...>>(nullptr, std::move(fn),
                                                                  std::move(args)...);
}

/// Like to_thread(), on `pool` instead of the loop's default executor (asyncio's
/// run_in_executor).
/// Throws: whatever `fn` throws; std::logic_error if `pool` was shut down.
/// Lifetime: `pool` must outlive the Task's completion; as to_thread() for the rest.
/// Cancellation: as to_thread().
template <class Fn, class... Args>
requires std::is_invocable_v<Fn, Args...> Task<detail::offload_result_t<Fn, Args...>>
run_in_executor(ThreadPool& pool, Fn fn, Args... args) {
    return detail::offload<detail::offload_result_t<Fn, Args...>>(&pool, std::move(fn),
                                                                  std::move(args)...);
}

/// Schedules `callback` on `loop` from any thread and wakes the loop if it waits in the kernel
/// (EventLoop::call_soon_threadsafe). After the loop closed, the callback is dropped.
/// Thread safety: any thread. Lifetime: `loop` must not be destroyed yet (closed is fine).
inline void call_soon_threadsafe(EventLoop& loop, std::function<void()> callback) {
    loop.call_soon_threadsafe(std::move(callback));
}

} // namespace ringlet
