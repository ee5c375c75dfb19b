// sync_vs_async: gevent's "synchronous vs asynchronous" demo (SEED_DEMOS.md section 4).
// task(pid) sleeps 0.5 s, then prints "Task <pid> done". Awaited one after another, nine tasks
// take 9 x 0.5 s; spawned together, ten tasks take about 0.5 s and finish in spawn order
// (equal deadlines fire in the order they were scheduled).
// Usage: sync_vs_async [--scale FACTOR]   (--scale 0.01 makes every sleep 100 times shorter)
#include "scale_arg.hpp"

#include <chrono>
#include <fmt/core.h>
#include <optional>
#include <ringlet/ringlet.hpp>
#include <vector>

namespace {

double scale = 1.0;
constexpr double task_seconds = 0.5;

using Clock = std::chrono::steady_clock;

ringlet::Task<> task(int pid) {
    co_await ringlet::sleep(std::chrono::duration_cast<ringlet::EventLoop::duration>(
        std::chrono::duration<double>(task_seconds * scale)));
    fmt::print("Task {} done\n", pid);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// for i in range(1, 10): task(i)
ringlet::Task<> synchronous() {
    for (int pid = 1; pid < 10; ++pid)
        co_await task(pid);
}

/// gevent.joinall([gevent.spawn(task, i) for i in range(10)])
ringlet::Task<> asynchronous() {
    std::vector<ringlet::JoinHandle<>> tasks;
    for (int pid = 0; pid < 10; ++pid)
        tasks.push_back(ringlet::spawn(task(pid)));
    for (auto& t : tasks)
        co_await t;
}

ringlet::Task<> demo() {
    fmt::print("Synchronous:\n");
    auto start = Clock::now();
    co_await synchronous();
    fmt::print("synchronous: {:.3f} s (9 tasks of {:.3f} s one after another)\n",
               seconds_since(start), task_seconds * scale);

    fmt::print("Asynchronous:\n");
    start = Clock::now();
    co_await asynchronous();
    fmt::print("asynchronous: {:.3f} s (10 tasks of {:.3f} s at once)\n", seconds_since(start),
               task_seconds * scale);
}

} // namespace

int main(int argc, char** argv) {
    std::optional<double> factor = samples::parse_scale(argc, argv);
    if (!factor) {
        fmt::print(stderr, "usage: {} [--scale FACTOR]   (FACTOR >= 0 multiplies every sleep)\n",
                   argv[0]);
        return 2;
    }
    scale = *factor;
    ringlet::run(demo());
    return 0;
}
