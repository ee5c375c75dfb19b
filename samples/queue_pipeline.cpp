// queue_pipeline: a producer and a consumer over a bounded ringlet::Queue (asyncio.Queue).
// The queue holds at most 2 items, so the producer, which is faster, waits in put() whenever
// it is full (back-pressure) until the consumer takes an item. The consumer marks every item
// with task_done(); the producer's join() returns once all of them were processed. The output
// is the same on every run: only the consumer sleeps, and the queue wakes waiters in order.
// Usage: queue_pipeline [--scale FACTOR]   (--scale 0.01 makes the work 100 times shorter)
#include "scale_arg.hpp"

#include <chrono>
#include <fmt/core.h>
#include <optional>
#include <ringlet/ringlet.hpp>

namespace {

double scale = 1.0;
constexpr int items = 6;
constexpr int capacity = 2;
constexpr double work_seconds = 0.1; // the consumer's time per item

using Clock = std::chrono::steady_clock;

ringlet::Task<> producer(ringlet::Queue<int>& queue) {
    for (int item = 1; item <= items; ++item) {
        if (queue.full())
            fmt::print("producer: queue full ({} of {}), waiting to put item {}\n", queue.qsize(),
                       capacity, item);
        co_await queue.put(item);
        fmt::print("producer: put item {}\n", item);
    }
    fmt::print("producer: all {} items queued, joining the queue\n", items);
    co_await queue.join(); // until task_done() was called for every item
    fmt::print("producer: every item was processed\n");
}

ringlet::Task<> consumer(ringlet::Queue<int>& queue) {
    for (;;) {
        int item = co_await queue.get();
        fmt::print("consumer: got item {}\n", item);
        co_await ringlet::sleep(std::chrono::duration_cast<ringlet::EventLoop::duration>(
            std::chrono::duration<double>(work_seconds * scale)));
        fmt::print("consumer: item {} done\n", item);
        queue.task_done();
    }
}

ringlet::Task<> pipeline() {
    auto start = Clock::now();
    ringlet::Queue<int> queue(capacity);
    auto worker = ringlet::spawn(consumer(queue), "consumer");
    co_await producer(queue);
    worker.cancel(); // it waits in get() for an item that will never come
    try {
        co_await worker;
    } catch (const ringlet::CancelledError&) {
        fmt::print("consumer: cancelled\n");
    }
    std::chrono::duration<double> elapsed = Clock::now() - start;
    fmt::print("total: {:.3f} s ({} items of {:.3f} s of work, one after another)\n",
               elapsed.count(), items, work_seconds * scale);
}

} // namespace

int main(int argc, char** argv) {
    std::optional<double> factor = samples::parse_scale(argc, argv);
    if (!factor) {
        fmt::print(stderr, "usage: {} [--scale FACTOR]   (FACTOR >= 0 multiplies the work)\n",
                   argv[0]);
        return 2;
    }
    scale = *factor;
    ringlet::run(pipeline());
    return 0;
}
