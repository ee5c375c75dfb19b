// ringlet's program in the task benchmark (tools/bench/run_tasks). One measurement per process,
// printed as `RESULT <metric> <value>` lines, as the peers in peers/tasks/ print theirs:
//   spawn       4 rounds, in one loop, of spawn() of N detached trivial tasks until all ran:
//               spawn_cold_ns (round 1: first touch of the frames' memory) and spawn_ns (median of
//               rounds 2-4: steady state)
//   sleep       N detached tasks each in sleep(1 h), spawned in batches of 1,000 with a yield
//               between batches, measured once all N sleep: (VmHWM after - VmRSS before) / N,
//               sleep_bytes, and how many slept at once, sleep_peak_alive
//   queue       two tasks ping-ponging through two Queue<int>(1): queue_switch_ns
//   call_later  N call_later(1 h), 9 in 10 cancelled, one loop iteration: call_later_ns, and the
//               timer heap's entries after it, call_later_heap_after (cancelled ones included
//               until purged)
//   yield       yield_now() round trip of one task: yield_ns
//   await       co_await of a trivial Task<int>: await_ns
// Usage: tasks_bench N MEASUREMENT
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ringlet/ringlet.hpp>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using bench_clock = std::chrono::steady_clock;

namespace {

/// A VmRSS / VmHWM figure of /proc/self/status, in bytes.
long status_bytes(std::string_view field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.compare(0, field.size(), field) == 0 && line[field.size()] == ':')
            return std::strtol(line.c_str() + field.size() + 1, nullptr, 10) * 1024;
    std::fprintf(stderr, "tasks_bench: no %.*s in /proc/self/status\n",
                 static_cast<int>(field.size()), field.data());
    std::exit(1);
}

double per(bench_clock::duration took, std::size_t count) {
    return std::chrono::duration<double, std::nano>(took).count() / static_cast<double>(count);
}

void result(const char* metric, double value) {
    std::printf("RESULT %s %.2f\n", metric, value);
}

std::size_t completed = 0;

ringlet::Task<> trivial() {
    ++completed;
    co_return;
}

/// ns per task to spawn N detached trivial tasks and see all of them run.
ringlet::Task<double> spawn_round(std::size_t n) {
    completed = 0;
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        ringlet::spawn(trivial()); // detached: the frame is freed as soon as the task finishes
    while (completed < n)
        co_await ringlet::yield_now();
    co_return per(bench_clock::now() - start, n);
}

ringlet::Task<> spawn_rounds(std::size_t n) {
    std::vector<double> warm;
    double cold = co_await spawn_round(n);
    for (int round = 0; round < 3; ++round)
        warm.push_back(co_await spawn_round(n));
    std::sort(warm.begin(), warm.end());
    result("spawn_cold_ns", cold);
    result("spawn_ns", warm[1]);
}

std::size_t started = 0; // a global: a sleeper's frame holds nothing but the task and its sleep

ringlet::Task<> sleeper() {
    ++started;
    co_await ringlet::sleep(1h); // none wakes while the others start
}

ringlet::Task<> sleeping_bytes(std::size_t n) {
    long before = status_bytes("VmRSS");
    for (std::size_t i = 0; i < n; ++i) {
        ringlet::spawn(sleeper());
        if (i % 1000 == 999)
            co_await ringlet::yield_now(); // the batch starts: the ready queue stays short
    }
    while (started < n)
        co_await ringlet::yield_now();
    result("sleep_bytes",
           static_cast<double>(status_bytes("VmHWM") - before) / static_cast<double>(n));
    result("sleep_peak_alive", static_cast<double>(started));
    std::fflush(stdout);
    std::_Exit(0); // N tasks asleep for an hour: measured, nothing to wait for
}

ringlet::Task<int> leaf(int x) {
    co_return x + 1;
}

ringlet::Task<> await_trivial(std::size_t n) {
    int sum = 0;
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        int v = co_await leaf(static_cast<int>(i & 1));
        sum += v;
    }
    result("await_ns", per(bench_clock::now() - start, n));
    if (sum < 0)
        std::puts("impossible");
}

ringlet::Task<> yield_round_trip(std::size_t n) {
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        co_await ringlet::yield_now();
    result("yield_ns", per(bench_clock::now() - start, n));
}

ringlet::Task<> queue_pong(ringlet::Queue<int>& in, ringlet::Queue<int>& out, std::size_t rounds) {
    for (std::size_t i = 0; i < rounds; ++i) {
        int value = co_await in.get();
        co_await out.put(value);
    }
}

/// ns per switch: one item handed from one task to the other is one switch.
ringlet::Task<> queue_ping_pong(std::size_t n) {
    ringlet::Queue<int> there(1), back(1);
    const std::size_t rounds = std::max<std::size_t>(n / 2, 1);
    auto pong = ringlet::spawn(queue_pong(there, back, rounds));
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < rounds; ++i) {
        co_await there.put(static_cast<int>(i));
        (void)co_await back.get();
    }
    auto took = bench_clock::now() - start;
    co_await pong;
    result("queue_switch_ns", per(took, 2 * rounds));
}

/// N call_later(1 h), then 9 in 10 cancelled and one loop iteration, per call_later; and the
/// timer heap's size after that iteration (cancelled entries may be kept lazily).
ringlet::Task<> call_later_cancelled(std::size_t n) {
    auto& loop = ringlet::EventLoop::current();
    std::vector<ringlet::TimerHandle> handles;
    handles.reserve(n);
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        handles.push_back(loop.call_later(1h, [] {}));
    for (std::size_t i = 0; i < n; ++i)
        if (i % 10 != 0)
            handles[i].cancel();
    co_await ringlet::yield_now();
    result("call_later_ns", per(bench_clock::now() - start, n));
    result("call_later_heap_after", static_cast<double>(loop.stats().timer_heap_size));
}

} // namespace

int main(int argc, char** argv) {
    constexpr const char* usage =
        "usage: tasks_bench N MEASUREMENT   (spawn, sleep, queue, call_later, yield, await)";
    if (argc != 3) {
        std::fprintf(stderr, "%s\n", usage);
        return 2;
    }
    char* end = nullptr;
    std::size_t n = std::strtoul(argv[1], &end, 10);
    if (n == 0 || *end != '\0') {
        std::fprintf(stderr, "tasks_bench: N must be a positive integer, got '%s'\n%s\n", argv[1],
                     usage);
        return 2;
    }
    std::string_view what = argv[2];
    if (what == "spawn") {
        ringlet::run(spawn_rounds(n));
    } else if (what == "sleep") {
        ringlet::run(sleeping_bytes(n));
    } else if (what == "queue") {
        ringlet::run(queue_ping_pong(n));
    } else if (what == "call_later") {
        ringlet::run(call_later_cancelled(n));
    } else if (what == "yield") {
        ringlet::run(yield_round_trip(n));
    } else if (what == "await") {
        ringlet::run(await_trivial(n));
    } else {
        std::fprintf(stderr, "tasks_bench: unknown measurement '%s'\n%s\n", argv[2], usage);
        return 2;
    }
    return 0;
}
