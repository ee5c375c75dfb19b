// Quick task micro-benchmarks: spawn + complete (ns/task), bytes per sleeping task (RSS
// difference over N tasks), co_await of a trivial Task (ns), sleep(0) round trip (ns), two tasks
// ping-ponging through a pair of Queue(1) (ns/switch), N call_later with 90 % cancelled (ns/op,
// timer heap entries left after one loop iteration).
// Usage: tasks_bench [N [spawn|sleep|queue|call_later]]   (default 1,000,000). Prints one line
// per figure; medians of 5 runs; then `RESULT <metric> <value>` lines for tools/bench/run_tasks.
// With a second argument, only that figure's RESULT line(s), from a single run: run_tasks
// measures everything so, each in a fresh process (as it does the peers), since a run reuses the
// memory an earlier one freed.
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

long resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * 4096L;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::size_t completed = 0;

ringlet::Task<> trivial() {
    ++completed;
    co_return;
}

ringlet::Task<double> spawn_complete(std::size_t n) {
    completed = 0;
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        ringlet::spawn(trivial()); // detached: the state is freed as soon as it finishes
    while (completed < n)
        co_await ringlet::yield_now();
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    co_return took.count() / static_cast<double>(n);
}

ringlet::Task<> sleeper() {
    co_await ringlet::sleep(1h);
}

ringlet::Task<double> sleeping_bytes(std::size_t n) {
    long before = resident_bytes();
    std::vector<ringlet::TaskHandle> handles;
    handles.reserve(n);
    long vector_bytes = resident_bytes() - before; // the handles' own storage, not counted
    for (std::size_t i = 0; i < n; ++i)
        handles.emplace_back(ringlet::spawn(sleeper()));
    co_await ringlet::yield_now(); // every task has run to its sleep
    long after = resident_bytes();
    for (auto& h : handles)
        h.cancel();
    co_await ringlet::yield_now();
    co_return static_cast<double>(after - before - vector_bytes) / static_cast<double>(n);
}

ringlet::Task<int> leaf(int x) {
    co_return x + 1;
}

ringlet::Task<double> await_trivial(std::size_t n) {
    int sum = 0;
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        int v = co_await leaf(static_cast<int>(i & 1));
        sum += v;
    }
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    if (sum < 0)
        std::puts("impossible");
    co_return took.count() / static_cast<double>(n);
}

ringlet::Task<double> yield_round_trip(std::size_t n) {
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i)
        co_await ringlet::yield_now();
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    co_return took.count() / static_cast<double>(n);
}

ringlet::Task<> queue_pong(ringlet::Queue<int>& in, ringlet::Queue<int>& out, std::size_t rounds) {
    for (std::size_t i = 0; i < rounds; ++i)
        co_await out.put(co_await in.get());
}

/// ns per switch: one item handed from one task to the other is one switch.
ringlet::Task<double> queue_ping_pong(std::size_t n) {
    ringlet::Queue<int> there(1), back(1);
    const std::size_t rounds = std::max<std::size_t>(n / 2, 1);
    auto pong = ringlet::spawn(queue_pong(there, back, rounds));
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < rounds; ++i) {
        co_await there.put(static_cast<int>(i));
        (void)co_await back.get();
    }
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    co_await pong;
    co_return took.count() / static_cast<double>(2 * rounds);
}

struct CallLaterResult {
    double ns_per_op;
    std::size_t heap_after;
};

/// N call_later(1 h), then 9 in 10 cancelled and one loop iteration, per call_later; and the
/// timer heap's size after that iteration (cancelled entries may be kept lazily).
ringlet::Task<CallLaterResult> call_later_cancelled(std::size_t n) {
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
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    co_return CallLaterResult{took.count() / static_cast<double>(n), loop.stats().timer_heap_size};
}

template <class F>
double median_of(int runs, F make_task) {
    std::vector<double> samples;
    for (int i = 0; i < runs; ++i)
        samples.push_back(ringlet::run(make_task()));
    return median(samples);
}

/// One measurement, once, as run_tasks wants it; returns the exit status.
int only(std::size_t n, std::string_view what) {
    if (what == "spawn") {
        std::printf("RESULT spawn_ns %.1f\n", ringlet::run(spawn_complete(n)));
    } else if (what == "sleep") {
        std::printf("RESULT sleep_bytes %.1f\n", ringlet::run(sleeping_bytes(n)));
    } else if (what == "queue") {
        std::printf("RESULT queue_switch_ns %.1f\n", ringlet::run(queue_ping_pong(n)));
    } else if (what == "yield") {
        std::printf("RESULT yield_ns %.1f\n", ringlet::run(yield_round_trip(n)));
    } else if (what == "await") {
        std::printf("RESULT await_ns %.1f\n", ringlet::run(await_trivial(n)));
    } else if (what == "call_later") {
        CallLaterResult r = ringlet::run(call_later_cancelled(n));
        std::printf("RESULT call_later_ns %.1f\nRESULT call_later_heap_after %zu\n", r.ns_per_op,
                    r.heap_after);
    } else {
        std::fprintf(stderr,
                     "tasks_bench: unknown measurement '%.*s' (spawn, sleep, queue, yield, "
                     "await, call_later)\n",
                     static_cast<int>(what.size()), what.data());
        return 2;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1'000'000;
    if (n == 0) {
        std::fprintf(stderr, "tasks_bench: N must be a positive integer, got '%s'\n", argv[1]);
        return 2;
    }
    if (argc > 2)
        return only(n, argv[2]);
    constexpr int runs = 5;
    std::printf("ringlet tasks_bench, N = %zu, median of %d runs\n", n, runs);
    double spawn = median_of(runs, [n] { return spawn_complete(n); });
    std::printf("spawn + complete      %8.1f ns/task\n", spawn);
    // One process-wide measurement: RSS only grows, so later runs would read ~0.
    double sleeping = ringlet::run(sleeping_bytes(n));
    std::printf("sleeping task memory  %8.1f bytes/task\n", sleeping);
    std::printf("co_await Task<int>    %8.1f ns\n",
                median_of(runs, [n] { return await_trivial(n); }));
    std::printf("yield_now round trip  %8.1f ns\n",
                median_of(runs, [n] { return yield_round_trip(n); }));
    double queue = median_of(runs, [n] { return queue_ping_pong(n); });
    std::printf("Queue(1) ping-pong    %8.1f ns/switch\n", queue);
    std::vector<double> call_later_ns;
    std::size_t heap_after = 0;
    for (int i = 0; i < runs; ++i) {
        CallLaterResult r = ringlet::run(call_later_cancelled(n));
        call_later_ns.push_back(r.ns_per_op);
        heap_after = r.heap_after;
    }
    std::printf("call_later, 90%% cancelled %4.1f ns/op, %zu timer heap entries after\n",
                median(call_later_ns), heap_after);
    std::printf("RESULT spawn_ns %.1f\nRESULT sleep_bytes %.1f\nRESULT queue_switch_ns %.1f\n"
                "RESULT call_later_ns %.1f\nRESULT call_later_heap_after %zu\n",
                spawn, sleeping, queue, median(call_later_ns), heap_after);
    return 0;
}
