// ThreadPool design.
// Workers pop jobs from one mutex-protected FIFO and sleep on a condition variable when it is
// empty. shutdown() sets stopping_ (no more submits), wakes everybody, and joins: a worker
// leaves only once stopping_ is set and the queue is drained, so queued jobs always run.
// join_mutex_ serialises the joining so that a second shutdown() (e.g. the destructor after
// EventLoop::close) returns only when the workers are gone. A job that shuts its own pool
// down cannot join itself: it only sets stopping_.
#include "ringlet/thread.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ringlet {

std::size_t ThreadPool::default_size() noexcept {
    return std::max<std::size_t>(4, std::thread::hardware_concurrency());
}

ThreadPool::ThreadPool(std::size_t threads) {
    if (threads == 0)
        throw std::invalid_argument("ThreadPool needs at least one thread, got 0");
    workers_.reserve(threads);
    worker_ids_.reserve(threads);
    try {
        for (std::size_t i = 0; i < threads; ++i) {
            workers_.emplace_back([this] { work(); });
            worker_ids_.push_back(workers_.back().get_id());
        }
    } catch (...) {
        shutdown(); // joins the workers that did start
        throw;
    }
}

ThreadPool::~ThreadPool() {
    shutdown();
}

void ThreadPool::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_)
            throw std::logic_error("ThreadPool::submit after shutdown");
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
}

void ThreadPool::shutdown() noexcept {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (is_worker_thread())
        return;
    std::lock_guard join_lock(join_mutex_);
    for (std::thread& t : workers_)
        if (t.joinable())
            t.join();
}

bool ThreadPool::is_worker_thread() const noexcept {
    // worker_ids_ does not change after the constructor (jobs only run after it), unlike the
    // std::thread objects, whose ids a concurrent join() resets.
    return std::find(worker_ids_.begin(), worker_ids_.end(), std::this_thread::get_id()) !=
           worker_ids_.end();
}

void ThreadPool::work() noexcept {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty())
                return; // stopping and drained
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job(); // an escaping exception terminates (work is noexcept), as with std::thread
    }
}

} // namespace ringlet
