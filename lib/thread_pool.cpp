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
    for (std::size_t i = 0; i < threads; ++i)
        workers_.emplace_back([this] { work(); });
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
        if (stopping_)
            return;
        stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_)
        t.join();
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
        job(); // jobs catch their own exceptions (to_thread stores them for the awaiter)
    }
}

} // namespace ringlet
