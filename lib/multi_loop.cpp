// LoopGroup design: run() starts one thread per member; each creates its loop, runs
// member_main() on it (which makes the factory's task, spawns it and registers the loop and the
// task under mutex_), then unregisters the loop before closing it. stop() sets stop_requested_
// and, under mutex_, posts a cancel of the task to every registered loop; a member that
// registers after that sees the flag under the same mutex and cancels its task itself, so no
// stop is missed and no callback is ever posted to a loop that is being destroyed. Member::task
// is only touched on its loop's thread (TaskHandle is not thread-safe).
#include "ringlet/multi_loop.hpp"

#include "ringlet/errors.hpp"

#include <fmt/format.h>
#include <stdexcept>
#include <string>
#include <thread>

namespace ringlet {

LoopGroup::LoopGroup(std::size_t threads) {
    if (threads == 0)
        throw std::invalid_argument("ringlet::LoopGroup / run_on_threads: n = 0 threads; "
                                    "at least 1 is needed");
    members_.resize(threads);
}

LoopGroup::~LoopGroup() = default;

void LoopGroup::run(LoopFactory factory, LoopOptions options) {
    if (!factory)
        throw std::invalid_argument("ringlet::LoopGroup::run: empty factory");
    if (EventLoop::current_or_null() != nullptr)
        throw std::logic_error("ringlet::LoopGroup::run() / run_on_threads() cannot be called "
                               "while an event loop is running on this thread (it would block "
                               "that loop until every thread ended)");
    {
        std::lock_guard lock(mutex_);
        if (started_)
            throw std::logic_error("ringlet::LoopGroup::run() called twice");
        started_ = true;
    }
    std::vector<std::thread> threads;
    threads.reserve(members_.size());
    try {
        for (std::size_t i = 0; i < members_.size(); ++i)
            threads.emplace_back(
                [this, i, &factory, &options] { run_member(i, factory, options); });
    } catch (...) {
        fail(std::current_exception()); // stops the threads already started
    }
    for (std::thread& t : threads)
        t.join();
    std::exception_ptr error;
    {
        std::lock_guard lock(mutex_);
        error = first_error_;
    }
    if (error)
        std::rethrow_exception(error);
}

void LoopGroup::stop() noexcept {
    std::lock_guard lock(mutex_);
    stop_requested_.store(true, std::memory_order_release);
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (members_[i].loop == nullptr)
            continue;
        try {
            members_[i].loop->call_soon_threadsafe([this, i] { members_[i].task.cancel(); });
        } catch (...) {
            // Out of memory: this member keeps running; nothing better can be done in noexcept.
        }
    }
}

bool LoopGroup::call_soon_threadsafe(std::size_t index, std::function<void()> callback) {
    if (index >= members_.size())
        throw std::out_of_range(fmt::format("LoopGroup::call_soon_threadsafe: index {} of a "
                                            "group of {} loops",
                                            index, members_.size()));
    std::lock_guard lock(mutex_);
    if (members_[index].loop == nullptr)
        return false;
    members_[index].loop->call_soon_threadsafe(std::move(callback));
    return true;
}

void LoopGroup::fail(std::exception_ptr error) noexcept {
    {
        std::lock_guard lock(mutex_);
        if (!first_error_)
            first_error_ = std::move(error);
    }
    stop();
}

Task<> LoopGroup::member_main(std::size_t index, const LoopFactory& factory) {
    JoinHandle<> task = spawn(factory(index, *this), fmt::format("loop {}", index));
    {
        std::lock_guard lock(mutex_);
        members_[index].loop = &EventLoop::current();
        members_[index].task = task;
        if (stop_requested_.load(std::memory_order_relaxed))
            task.cancel();
    }
    co_await task;
}

void LoopGroup::run_member(std::size_t index, const LoopFactory& factory,
                           const LoopOptions& options) {
    try {
        EventLoop loop(options);
        // Unregister before closing: stop() must not post to a loop that is going away. The
        // closing itself cancels whatever the task left running, as ringlet::run() does.
        struct Leave {
            LoopGroup& group;
            EventLoop& loop;
            Member& member;
            ~Leave() {
                {
                    std::lock_guard lock(group.mutex_);
                    member.loop = nullptr;
                }
                member.task = TaskHandle();
                try {
                    loop.close();
                } catch (...) {
                    group.fail(std::current_exception());
                }
            }
        } leave{*this, loop, members_[index]};
        loop.run_until_complete(member_main(index, factory));
    } catch (const CancelledError&) {
        if (!stop_requested())
            fail(std::current_exception());
    } catch (...) {
        fail(std::current_exception());
    }
}

void run_on_threads(std::size_t n, LoopFactory factory, LoopOptions options) {
    LoopGroup group(n);
    group.run(std::move(factory), options);
}

void run_on_threads(std::size_t n, std::function<Task<>(std::size_t index)> factory,
                    LoopOptions options) {
    if (!factory)
        throw std::invalid_argument("ringlet::run_on_threads: empty factory");
    LoopGroup group(n);
    group.run([&factory](std::size_t index, LoopGroup&) { return factory(index); }, options);
}

} // namespace ringlet
