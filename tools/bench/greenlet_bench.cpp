// Greenlet switch micro-benchmark (issue 6 target: <= 5 ns per switch). Two greenlets hand a
// value back and forth with `co_await other.switch_to(v)`; one switch is one such transfer.
// Figures for BasicGreenlet<int> and for Greenlet (a GreenletValue holding an int).
// Usage: greenlet_bench [N]   (default 10,000,000 switches). Prints ns/switch, median of 5 runs,
// then `RESULT <metric> <value>` lines for tools/bench/run_tasks.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ringlet/greenlet.hpp>
#include <vector>

using bench_clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// ns per switch over `n` switches between two greenlets passing a T through.
template <class T>
double switch_ns(std::size_t n, T start_value) {
    using G = ringlet::BasicGreenlet<T>;
    const std::size_t rounds = n / 2; // a round trip is two switches
    // Each body holds its peer in a local, as the gevent peer does (`switch =
    // pong_greenlet.switch`): reaching it through the closure at every switch would add one or
    // two dependent loads to each switch (~1.5 ns on the Intel VM), the benchmark's, not the
    // switch's.
    G* pong_ptr = nullptr;
    G ping([&pong_ptr, rounds](T v) -> typename G::Body {
        G* peer = pong_ptr;
        for (std::size_t i = 0; i < rounds; ++i)
            v = co_await peer->switch_to(std::move(v));
        co_return v;
    });
    G pong([ping_ptr = &ping](T v) -> typename G::Body {
        G* peer = ping_ptr;
        for (;;)
            v = co_await peer->switch_to(std::move(v));
    });
    pong_ptr = &pong;

    auto start = bench_clock::now();
    T result = ping.switch_to(std::move(start_value)).get(); // returns when ping finishes
    std::chrono::duration<double, std::nano> took = bench_clock::now() - start;
    if (!ping.dead())
        std::puts("impossible: ping did not finish");
    (void)result;
    return took.count() / static_cast<double>(2 * rounds);
}

template <class T>
double median_of(int runs, std::size_t n, T value) {
    std::vector<double> samples;
    for (int i = 0; i < runs; ++i)
        samples.push_back(switch_ns<T>(n, value));
    return median(samples);
}

} // namespace

int main(int argc, char** argv) {
    std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10'000'000;
    if (n < 2) {
        std::fprintf(stderr, "greenlet_bench: N must be an integer >= 2, got '%s'\n", argv[1]);
        return 2;
    }
    constexpr int runs = 5;
    std::printf("ringlet greenlet_bench, N = %zu switches, median of %d runs\n", n, runs);
    double typed = median_of(runs, n, 42);
    std::printf("BasicGreenlet<int> switch   %6.2f ns/switch\n", typed);
    double any = median_of(runs, n, ringlet::GreenletValue(42));
    std::printf("Greenlet (GreenletValue) switch %6.2f ns/switch\n", any);
    // For tools/bench/run_tasks: Greenlet passes any value, as gevent's greenlet.switch does.
    std::printf("RESULT greenlet_switch_ns %.2f\nRESULT greenlet_int_switch_ns %.2f\n", any, typed);
    return 0;
}
