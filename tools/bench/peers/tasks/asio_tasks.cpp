// asio_tasks: the Boost.Asio peer of the task benchmark (tools/bench/run_tasks). One io_context
// (concurrency hint 1: no locking) on one thread, C++20 coroutines (co_spawn, use_awaitable).
// One measurement per process, printed as `RESULT <metric> <value>` lines:
//   spawn       4 rounds, on one io_context (restart() between), of N co_spawn(detached) of a
//               trivial coroutine until run() returns: round 1 (fresh memory): spawn_cold_ns,
//               median of rounds 2-4: spawn_ns
//   sleep       N coroutines each waiting on its own steady_timer for 1 h, spawned by a
//               coroutine in batches of 1,000 with a post() of itself between, measured once all
//               N sleep: peak RSS growth per coroutine: sleep_bytes, and how many slept at once:
//               sleep_peak_alive
//   queue       two coroutines ping-ponging through two one-slot channels: queue_switch_ns.
//               Boost 1.74 has no asio::experimental::channel, so a slot's waiter waits on a
//               steady_timer that never expires, and the other side cancels it to wake it.
//   greenlet    no analogue: prints nothing
//   call_later  N steady_timer::async_wait(1 h) with a callback, 9 in 10 cancelled, then
//               poll() runs their operation_aborted handlers: call_later_ns (the timer queue
//               drops a cancelled timer at once and is not visible: no call_later_heap_after)
// Usage: asio_tasks METRIC N
#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using bench_clock = std::chrono::steady_clock;

namespace {

/// A VmRSS / VmHWM figure of /proc/self/status, in KiB.
long status_kib(const char* field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    const std::size_t length = std::strlen(field);
    while (std::getline(status, line))
        if (line.compare(0, length, field) == 0 && line.size() > length && line[length] == ':')
            return std::strtol(line.c_str() + length + 1, nullptr, 10);
    std::fprintf(stderr, "asio_tasks: no %s in /proc/self/status\n", field);
    std::exit(1);
}

void result(const char* metric, double value) {
    std::printf("RESULT %s %.2f\n", metric, value);
}

double ns_per(bench_clock::duration elapsed, std::size_t count) {
    return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(count);
}

std::size_t done = 0, started = 0;
constexpr int spawn_rounds = 4; // round 1 faults fresh memory in; rounds 2-4 reuse the free lists
constexpr std::size_t sleep_batch = 1000; // spawned before they run: no N coroutines not started

asio::awaitable<void> trivial() {
    ++done;
    co_return;
}

void spawn(std::size_t n) {
    asio::io_context ctx(1);
    std::vector<double> rounds;
    for (int round = 0; round < spawn_rounds; ++round) {
        done = 0;
        ctx.restart(); // run() returned: out of work
        auto start = bench_clock::now();
        for (std::size_t i = 0; i < n; ++i)
            asio::co_spawn(ctx, trivial(), asio::detached);
        ctx.run();
        auto elapsed = bench_clock::now() - start;
        if (done != n)
            std::fprintf(stderr, "asio_tasks: %zu of %zu tasks completed\n", done, n);
        rounds.push_back(ns_per(elapsed, n));
    }
    result("spawn_cold_ns", rounds[0]);
    std::sort(rounds.begin() + 1, rounds.end());
    result("spawn_ns", rounds[1 + (rounds.size() - 1) / 2]);
}

asio::awaitable<void> sleeper() {
    ++started;
    asio::steady_timer timer(co_await asio::this_coro::executor, 1h); // none wakes meanwhile
    co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<void> spawn_sleepers(std::size_t n, long before) {
    auto executor = co_await asio::this_coro::executor;
    for (std::size_t i = 0; i < n; ++i) {
        asio::co_spawn(executor, sleeper(), asio::detached);
        if (i % sleep_batch == sleep_batch - 1) // queued behind the batch: it runs to its wait
            co_await asio::post(executor, asio::use_awaitable);
    }
    while (started < n)
        co_await asio::post(executor, asio::use_awaitable);
    result("sleep_bytes",
           static_cast<double>(status_kib("VmHWM") - before) * 1024.0 / static_cast<double>(n));
    result("sleep_peak_alive", static_cast<double>(started));
    std::fflush(stdout);
    std::_Exit(0); // N coroutines asleep for an hour: measured, nothing to wait for
}

void sleep(std::size_t n) {
    asio::io_context ctx(1);
    long before = status_kib("VmRSS");
    asio::co_spawn(ctx, spawn_sleepers(n, before), asio::detached);
    ctx.run();
}

/// A channel of capacity one for one sender and one receiver. A side that must wait waits on a
/// timer set to never expire; the other side cancels that timer to wake it.
class Slot {
  public:
    explicit Slot(asio::io_context& ctx) : ready_(ctx), space_(ctx) {}

    asio::awaitable<void> put(int value) {
        while (item_)
            co_await wait(space_);
        item_ = value;
        ready_.cancel();
    }

    asio::awaitable<int> get() {
        while (!item_)
            co_await wait(ready_);
        int value = *item_;
        item_.reset();
        space_.cancel();
        co_return value;
    }

  private:
    static asio::awaitable<void> wait(asio::steady_timer& timer) {
        boost::system::error_code ec; // operation_aborted: woken by the other side
        timer.expires_at(asio::steady_timer::time_point::max());
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }

    std::optional<int> item_;
    asio::steady_timer ready_; // a getter waits here for an item
    asio::steady_timer space_; // a putter waits here for the slot to empty
};

asio::awaitable<void> pong(Slot& there, Slot& back, std::size_t rounds) {
    for (std::size_t i = 0; i < rounds; ++i)
        co_await back.put(co_await there.get());
}

asio::awaitable<void> ping(Slot& there, Slot& back, std::size_t rounds, double& ns) {
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < rounds; ++i) {
        co_await there.put(static_cast<int>(i));
        (void)co_await back.get();
    }
    ns = ns_per(bench_clock::now() - start, 2 * rounds);
}

void queue(std::size_t n) {
    asio::io_context ctx(1);
    Slot there(ctx), back(ctx);
    const std::size_t rounds = std::max<std::size_t>(n / 2, 1);
    double ns = 0;
    asio::co_spawn(ctx, pong(there, back, rounds), asio::detached);
    asio::co_spawn(ctx, ping(there, back, rounds, ns), asio::detached);
    ctx.run();
    result("queue_switch_ns", ns);
}

void call_later(std::size_t n) {
    asio::io_context ctx(1);
    std::vector<asio::steady_timer> timers; // destroyed before ctx
    timers.reserve(n);
    std::size_t aborted = 0;
    auto start = bench_clock::now();
    for (std::size_t i = 0; i < n; ++i) {
        timers.emplace_back(ctx, 1h);
        timers.back().async_wait([&aborted](const boost::system::error_code& ec) {
            if (ec == asio::error::operation_aborted)
                ++aborted;
        });
    }
    for (std::size_t i = 0; i < n; ++i)
        if (i % 10 != 0)
            timers[i].cancel();
    ctx.poll(); // runs the cancelled timers' handlers
    auto elapsed = bench_clock::now() - start;
    if (aborted != n - (n + 9) / 10)
        std::fprintf(stderr, "asio_tasks: %zu handlers aborted\n", aborted);
    result("call_later_ns", ns_per(elapsed, n));
}

} // namespace

int main(int argc, char** argv) {
    const char* usage = "usage: asio_tasks METRIC N   (METRIC: spawn, sleep, queue, greenlet, "
                        "call_later)\n";
    if (argc != 3) {
        std::fputs(usage, stderr);
        return 2;
    }
    char* end = nullptr;
    long long n = std::strtoll(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || n < 1) {
        std::fprintf(stderr, "asio_tasks: N must be a positive integer, got '%s'\n%s", argv[2],
                     usage);
        return 2;
    }
    std::string metric = argv[1];
    auto count = static_cast<std::size_t>(n);
    if (metric == "spawn")
        spawn(count);
    else if (metric == "sleep")
        sleep(count);
    else if (metric == "queue")
        queue(count);
    else if (metric == "greenlet")
        ; // no analogue
    else if (metric == "call_later")
        call_later(count);
    else {
        std::fprintf(stderr, "asio_tasks: unknown metric '%s'\n%s", argv[1], usage);
        return 2;
    }
    return 0;
}
