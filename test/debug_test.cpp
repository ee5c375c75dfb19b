// Tests of debug mode (LoopOptions::debug): slow-callback warnings naming the task, "was never
// awaited" reports, tasks pending at close, dump_tasks(), and foreign-thread checks.
// RINGLET_DEBUG=1 is read once per process, so these tests switch debug mode through options.
#include "support.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::EventLoop;
using ringlet::Task;
namespace test = ringlet::test;

/// Collects what the loop logs.
struct LogCapture {
    std::vector<std::string> lines;
    explicit LogCapture(EventLoop& loop) {
        loop.set_log_handler([this](std::string_view line) { lines.emplace_back(line); });
    }
    std::size_t count(std::string_view needle) const {
        return static_cast<std::size_t>(
            std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
                return l.find(needle) != std::string::npos;
            }));
    }
    std::string all() const {
        std::string out;
        for (const auto& l : lines)
            out += l + "\n";
        return out;
    }
};

Task<> block_for(std::chrono::milliseconds d) {
    co_await ringlet::yield_now();
    std::this_thread::sleep_for(d); // a blocking call inside a task step
    co_await ringlet::yield_now();
}

Task<> quick() {
    co_await ringlet::yield_now();
}

Task<int> never_awaited_coroutine() {
    co_return 1;
}

Task<> drop_an_unawaited_task() {
    { Task<int> forgotten = never_awaited_coroutine(); }
    co_return;
}

Task<> sleep_forever() {
    co_await ringlet::sleep(24h * 365);
}

Task<> join(ringlet::JoinHandle<> other) {
    co_await other;
}

} // namespace

TEST_CASE("debug mode warns once about a task step that blocks for 150 ms, naming the task") {
    EventLoop loop(test::options(/*virtual_time=*/false, /*debug=*/true));
    LogCapture log(loop);
    auto slow = ringlet::spawn(loop, block_for(150ms), "blocker");
    auto fast = ringlet::spawn(loop, quick(), "sprinter");
    for (int i = 0; i < 10 && !(slow.done() && fast.done()); ++i)
        loop.run_once();
    REQUIRE(slow.done());
    INFO(log.all());
    CHECK(log.lines.size() == 1);
    CHECK(log.count("'blocker'") == 1);
    CHECK(log.count("took") == 1);
    CHECK(log.count("sprinter") == 0);
}

TEST_CASE("debug mode warns once about a callback that blocks for 150 ms") {
    EventLoop loop(test::options(false, true));
    LogCapture log(loop);
    loop.call_soon([] { std::this_thread::sleep_for(150ms); });
    loop.call_soon([] {});
    loop.run_once();
    INFO(log.all());
    CHECK(log.lines.size() == 1);
    CHECK(log.count("Executing callback took") == 1);
}

TEST_CASE("slow callbacks are not reported outside debug mode") {
    EventLoop loop(test::options());
    LogCapture log(loop);
    loop.call_soon([] { std::this_thread::sleep_for(150ms); });
    loop.run_once();
    CHECK(log.lines.empty());
}

TEST_CASE("debug mode honours slow_callback_duration") {
    ringlet::LoopOptions o = test::options(false, true);
    o.slow_callback_duration = 1h;
    EventLoop loop(o);
    LogCapture log(loop);
    loop.call_soon([] { std::this_thread::sleep_for(150ms); });
    loop.run_once();
    CHECK(log.lines.empty());
}

TEST_CASE("debug mode reports a Task destroyed without being awaited, with its function name") {
    EventLoop loop(test::options(true, true));
    LogCapture log(loop);
    loop.run_until_complete(drop_an_unawaited_task());
    INFO(log.all());
    REQUIRE(log.lines.size() == 1);
    CHECK(log.count("was never awaited") == 1);
    CHECK(log.count("never_awaited_coroutine") == 1);
}

TEST_CASE("a Task destroyed without being awaited is not reported outside debug mode") {
    EventLoop loop(test::options(true, false));
    LogCapture log(loop);
    loop.run_until_complete(drop_an_unawaited_task());
    CHECK(log.lines.empty());
}

TEST_CASE("debug mode lists the tasks still pending at close by name") {
    EventLoop loop(test::options(true, true));
    LogCapture log(loop);
    auto lingering = ringlet::spawn(loop, sleep_forever(), "lingerer");
    auto finished = ringlet::spawn(loop, quick(), "finisher");
    for (int i = 0; i < 5 && !finished.done(); ++i)
        loop.run_once();
    REQUIRE(finished.done());
    loop.close();
    INFO(log.all());
    CHECK(log.count("'lingerer'") == 1);
    CHECK(log.count("pending") == 1);
    CHECK(log.count("finisher") == 0);
    CHECK(lingering.cancelled());
}

TEST_CASE("dump_tasks lists live tasks with name and state") {
    EventLoop loop(test::options(true, true));
    LogCapture log(loop); // close() lists the pending tasks; keep them off stderr
    auto sleeper = ringlet::spawn(loop, sleep_forever(), "sleeper");
    auto joiner = ringlet::spawn(loop, join(sleeper), "joiner");
    auto yielder = ringlet::spawn(loop, quick(), "yielder");
    loop.run_once(); // all three take their first step
    auto created = ringlet::spawn(loop, quick(), "newborn");

    std::string dump = loop.dump_tasks();
    INFO(dump);
    CHECK(dump.find("'sleeper' awaiting sleep") != std::string::npos);
    CHECK(dump.find("'joiner' awaiting join task 'sleeper'") != std::string::npos);
    CHECK(dump.find("'yielder' awaiting yield") != std::string::npos);
    CHECK(dump.find("'newborn' created") != std::string::npos);
    CHECK(dump.find("sleep_forever") != std::string::npos); // the coroutine's function
    CHECK(sleeper.state() == "awaiting sleep");

    for (int i = 0; i < 5 && !(yielder.done() && created.done()); ++i)
        loop.run_once();
    dump = loop.dump_tasks();
    CHECK(dump.find("yielder") == std::string::npos); // finished tasks are not listed
    CHECK(dump.find("newborn") == std::string::npos);
    CHECK(dump.find("'sleeper'") != std::string::npos);
    loop.close();
    CHECK(loop.dump_tasks().empty());
}

TEST_CASE("in debug mode, call_soon from a foreign thread throws std::logic_error") {
    EventLoop loop(test::options(false, true));
    bool soon_threw = false;
    bool later_threw = false;
    std::string message;
    std::thread foreign([&] {
        try {
            loop.call_soon([] {});
        } catch (const std::logic_error& e) {
            soon_threw = true;
            message = e.what();
        }
        try {
            loop.call_later(1s, [] {});
        } catch (const std::logic_error&) {
            later_threw = true;
        }
    });
    foreign.join();
    CHECK(soon_threw);
    CHECK(later_threw);
    CHECK(message.find("call_soon") != std::string::npos);
    // Nothing was scheduled.
    CHECK(loop.stats().timers_scheduled == 0);
    // call_soon_threadsafe is the one member a foreign thread may call.
    bool ran = false;
    std::thread poster([&] { loop.call_soon_threadsafe([&] { ran = true; }); });
    poster.join();
    loop.call_later(5s, [&] { loop.stop(); });
    loop.call_soon([&] {
        struct Poll {
            static void check(EventLoop& l, bool& r) {
                if (r)
                    l.stop();
                else
                    l.call_later(1ms, [&l, &r] { check(l, r); });
            }
        };
        Poll::check(loop, ran);
    });
    loop.run_forever();
    CHECK(ran);
}

TEST_CASE("debug mode is off by default and set_debug switches it") {
    EventLoop loop(test::options());
    // RINGLET_DEBUG may be set for a whole test run; only check what options control.
    if (std::getenv("RINGLET_DEBUG") == nullptr)
        CHECK_FALSE(loop.debug());
    loop.set_debug(true);
    CHECK(loop.debug());
    EventLoop debug_loop(test::options(false, true));
    CHECK(debug_loop.debug());
}
