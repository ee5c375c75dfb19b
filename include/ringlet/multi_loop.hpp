// run_on_threads and LoopGroup: one EventLoop per thread (asio's io_context per thread, tokio's
// current-thread runtime per core), each running the Task a factory makes for its index.
// Listeners bound with ListenOptions::reuse_port on the same port share its connections.
// Stopping: the tasks may simply finish; LoopGroup::stop(), from any thread or loop, cancels
// every loop's task (CancelledError, which a task may catch to finish gracefully); the first task
// that fails stops the others too, and run() rethrows its exception once every thread ended.
#pragma once

#include "ringlet/event_loop.hpp"
#include "ringlet/spawn.hpp"
#include "ringlet/task.hpp"

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

namespace ringlet {

class LoopGroup;

/// Makes the task of loop `index` (0 .. n-1); called on that loop's thread, once per loop.
/// Lifetime: the factory lives until every loop finished, so a coroutine lambda may keep its
/// captures in it. Thread safety: called concurrently from the n threads.
using LoopFactory = std::function<Task<>(std::size_t index, LoopGroup& group)>;

/// A set of threads, each with its own EventLoop (asio: io_context + threads + stop()).
class LoopGroup {
  public:
    /// Throws: std::invalid_argument naming the value if `threads` is 0.
    explicit LoopGroup(std::size_t threads);
    LoopGroup(const LoopGroup&) = delete;
    LoopGroup& operator=(const LoopGroup&) = delete;
    ~LoopGroup();

    /// Starts the threads, runs `factory(index, *this)` on a fresh loop in each (as
    /// ringlet::run() does: leftover tasks are cancelled and the loop closed at the end), and
    /// returns when every thread ended.
    /// Throws: the first exception a task threw (in time), after all threads ended; a task that
    /// ends with CancelledError after stop() counts as a normal end. std::logic_error if run()
    /// was called before or if a loop runs on the calling thread; std::invalid_argument if
    /// `factory` is empty; std::system_error if a thread cannot be started (the others are
    /// stopped first).
    void run(LoopFactory factory, LoopOptions options = {});

    /// Cancels the task of every loop (also one that has yet to start it; stop() before run()
    /// makes run() cancel every task at once). Idempotent.
    /// Thread safety: any thread, including the loops' own.
    void stop() noexcept;
    bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_acquire); }
    /// Number of threads (loops).
    std::size_t size() const noexcept { return members_.size(); }
    /// Posts `callback` to loop `index` (EventLoop::call_soon_threadsafe). False (callback
    /// dropped) if that loop is not running. Throws: std::out_of_range for a bad index.
    /// Thread safety: any thread.
    bool call_soon_threadsafe(std::size_t index, std::function<void()> callback);

  private:
    struct Member {
        EventLoop* loop = nullptr; ///< while the loop runs its task; guarded by mutex_
        TaskHandle task;           ///< the factory's task; its loop's thread only
    };

    void run_member(std::size_t index, const LoopFactory& factory, const LoopOptions& options);
    /// Lifetime: `factory` outlives the task (run() joins the thread before returning).
    Task<> member_main(std::size_t index, const LoopFactory& factory);
    void fail(std::exception_ptr error) noexcept;

    mutable std::mutex mutex_;
    std::vector<Member> members_;
    std::exception_ptr first_error_; // guarded by mutex_
    std::atomic<bool> stop_requested_{false};
    bool started_ = false;
};

/// Runs `factory(index, group)` on each of `n` threads, each with its own loop, and returns when
/// all finished: `LoopGroup(n).run(factory, options)`.
/// Throws: std::invalid_argument naming the value if `n` is 0; otherwise as LoopGroup::run().
void run_on_threads(std::size_t n, LoopFactory factory, LoopOptions options = {});
/// The same for a factory that needs no LoopGroup: `[&](std::size_t index) -> Task<> {...}`.
void run_on_threads(std::size_t n, std::function<Task<>(std::size_t index)> factory,
                    LoopOptions options = {});

} // namespace ringlet
