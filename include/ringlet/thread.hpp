// Thread offload: ThreadPool, to_thread, run_in_executor, call_soon_threadsafe.
// A function handed to a pool runs on a worker thread; its result comes back to the loop thread
// through the loop's RemoteInbox. Cancelling the awaiting task does not stop the function: it
// finishes on its thread and its result is dropped.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ringlet {

/// A fixed set of worker threads running submitted jobs in FIFO order.
/// Thread safety: submit() from any thread. Lifetime: the destructor finishes the queued jobs
/// and joins the workers.
class ThreadPool {
  public:
    /// max(4, std::thread::hardware_concurrency()).
    static std::size_t default_size() noexcept;

    /// Throws: std::invalid_argument if `threads` is 0.
    explicit ThreadPool(std::size_t threads = default_size());
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Queues `job`. Throws: std::logic_error after shutdown().
    void submit(std::function<void()> job);
    /// Runs the queued jobs to the end and joins the workers. Idempotent.
    void shutdown() noexcept;
    std::size_t size() const noexcept { return workers_.size(); }

  private:
    void work() noexcept;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

} // namespace ringlet
