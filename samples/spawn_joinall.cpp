// spawn_joinall: gevent's "switching at I/O" demo (spawn + joinall, SEED_DEMOS.md section 3).
// Three tasks sleep for 2 s, 1 s and 0 s. Each sleep hands the thread to the next ready task,
// so the whole run takes about 2 s (the longest sleep), not 3 s (their sum).
// Usage: spawn_joinall [--scale FACTOR]   (--scale 0.01 makes every sleep 100 times shorter)
#include "scale_arg.hpp"

#include <chrono>
#include <cstdio>
#include <fmt/core.h>
#include <optional>
#include <ringlet/ringlet.hpp>
#include <vector>

namespace {

double scale = 1.0;

/// `seconds` of sleep, multiplied by --scale.
ringlet::EventLoop::duration scaled(double seconds) {
    return std::chrono::duration_cast<ringlet::EventLoop::duration>(
        std::chrono::duration<double>(seconds * scale));
}

ringlet::Task<> func1() {
    fmt::print("func1 step 1\n");
    co_await ringlet::sleep(scaled(2));
    fmt::print("func1 step 2\n");
}

ringlet::Task<> func2() {
    fmt::print("func2 step 1\n");
    co_await ringlet::sleep(scaled(1));
    fmt::print("func2 step 2\n");
}

ringlet::Task<> func3() {
    fmt::print("func3 step 1\n");
    co_await ringlet::sleep(scaled(0));
    fmt::print("func3 step 2\n");
}

/// gevent.joinall([gevent.spawn(func1), gevent.spawn(func2), gevent.spawn(func3)])
ringlet::Task<> joinall() {
    auto start = std::chrono::steady_clock::now();
    std::vector<ringlet::JoinHandle<>> tasks;
    tasks.push_back(ringlet::spawn(func1(), "func1"));
    tasks.push_back(ringlet::spawn(func2(), "func2"));
    tasks.push_back(ringlet::spawn(func3(), "func3"));
    for (auto& task : tasks)
        co_await task;
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    fmt::print("total: {:.2f} s (longest sleep {:.2f} s, sum of sleeps {:.2f} s)\n",
               elapsed.count(), 2 * scale, 3 * scale);
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
    ringlet::run(joinall());
    return 0;
}
