// Tests of LoopOptions::virtual_time: the clock jumps to the next timer when nothing is ready and
// nothing outside the loop can wake it, timers keep their virtual order, and in-flight I/O keeps
// the clock from jumping.
#include "support.hpp"

#include <array>
#include <fcntl.h>
#include <ringlet/detail/io_awaiter.hpp>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::EventLoop;
using ringlet::Task;
namespace test = ringlet::test;

struct Pipe {
    int read_end = -1;
    int write_end = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        ::close(read_end);
        ::close(write_end);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

Task<> sleep_for(EventLoop::duration d) {
    co_await ringlet::sleep(d);
}

struct Fired {
    int id;
    EventLoop::duration at; // since the loop's start
};

Task<> sleep_and_record(EventLoop::duration d, int id, EventLoop::time_point t0,
                        std::vector<Fired>* out) {
    co_await ringlet::sleep(d);
    out->push_back({id, EventLoop::current().time() - t0});
}

Task<> spawn_sleepers(EventLoop::time_point t0, std::vector<Fired>* out) {
    std::vector<ringlet::JoinHandle<>> handles;
    const int hours[] = {3, 1, 2, 1, 5, 4};
    for (int i = 0; i < 6; ++i)
        handles.push_back(
            ringlet::spawn(sleep_and_record(std::chrono::hours(hours[i]), i, t0, out)));
    for (auto& h : handles)
        co_await h;
}

struct ReadOutcome {
    std::int32_t bytes = 0;
    bool sleeper_done_when_read_completed = true;
    EventLoop::duration clock_at_read{};
    EventLoop::duration clock_at_end{};
};

Task<std::int32_t> read_pipe(int fd) {
    std::array<std::byte, 8> buffer{};
    std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
    co_return n;
}

Task<ReadOutcome> read_with_sleeper(int fd) {
    EventLoop& loop = EventLoop::current();
    auto t0 = loop.time();
    auto sleeper = ringlet::spawn(sleep_for(1h), "sleeper");
    auto reader = ringlet::spawn(read_pipe(fd), "reader");
    ReadOutcome out;
    out.bytes = co_await reader;
    out.clock_at_read = loop.time() - t0;
    out.sleeper_done_when_read_completed = sleeper.done();
    co_await sleeper;
    out.clock_at_end = loop.time() - t0;
    co_return out;
}

} // namespace

TEST_CASE("a task sleeping one hour of virtual time finishes at once and advances the clock") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    auto real_start = std::chrono::steady_clock::now();
    loop.run_until_complete(sleep_for(1h));
    auto real_elapsed = std::chrono::steady_clock::now() - real_start;
    CHECK(real_elapsed < 1s);
    CHECK(loop.time() - t0 >= 1h);
    CHECK(loop.time() - t0 < 1h + 1s);
}

TEST_CASE("the virtual clock does not move while nothing sleeps") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    std::this_thread::sleep_for(20ms);
    CHECK(loop.time() == t0);
    for (int i = 0; i < 3; ++i) {
        loop.call_soon([] {});
        loop.run_once();
    }
    CHECK(loop.time() == t0);
}

TEST_CASE("timers of different tasks fire in virtual deadline order") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    std::vector<Fired> fired;
    auto real_start = std::chrono::steady_clock::now();
    loop.run_until_complete(spawn_sleepers(t0, &fired));
    CHECK(std::chrono::steady_clock::now() - real_start < 1s);
    REQUIRE(fired.size() == 6);
    // Deadlines 3h, 1h, 2h, 1h, 5h, 4h for ids 0..5; equal deadlines keep spawn order. The
    // tasks all start in the same iteration, so their deadlines are exact.
    std::vector<int> ids;
    std::vector<EventLoop::duration> at;
    for (const Fired& f : fired) {
        ids.push_back(f.id);
        at.push_back(f.at);
    }
    CHECK(ids == std::vector<int>{1, 3, 2, 0, 5, 4});
    CHECK(at == std::vector<EventLoop::duration>{1h, 1h, 2h, 3h, 4h, 5h});
}

TEST_CASE("with a pipe read in flight the virtual clock does not jump past a timer") {
    Pipe pipe;
    EventLoop loop(test::options(/*virtual_time=*/true));
    ssize_t written = 0;
    std::thread writer([&] {
        std::this_thread::sleep_for(50ms);
        written = ::write(pipe.write_end, "v", 1);
    });
    auto real_start = std::chrono::steady_clock::now();
    ReadOutcome out = loop.run_until_complete(read_with_sleeper(pipe.read_end));
    writer.join();
    CHECK(written == 1);
    CHECK(out.bytes == 1);
    // The read completed first: the 1 h sleeper was still pending, and the clock advanced only
    // by the real time spent waiting for the read.
    CHECK_FALSE(out.sleeper_done_when_read_completed);
    CHECK(out.clock_at_read >= 40ms);
    CHECK(out.clock_at_read < 1h);
    // Once the read is done, nothing is in flight: the clock jumps to the sleeper's deadline.
    CHECK(out.clock_at_end >= 1h);
    CHECK(std::chrono::steady_clock::now() - real_start < 5s);
}

TEST_CASE("virtual time jumps over timers scheduled with call_later") {
    EventLoop loop(test::options(/*virtual_time=*/true));
    auto t0 = loop.time();
    std::vector<EventLoop::duration> seen;
    loop.call_later(24h * 30, [&] {
        seen.push_back(loop.time() - t0);
        loop.stop();
    });
    loop.call_later(2h, [&] { seen.push_back(loop.time() - t0); });
    auto real_start = std::chrono::steady_clock::now();
    loop.run_forever();
    CHECK(std::chrono::steady_clock::now() - real_start < 1s);
    CHECK(seen == std::vector<EventLoop::duration>{2h, 24h * 30});
}

TEST_CASE("ringlet::test::run_virtual runs a long sleep at once") {
    auto real_start = std::chrono::steady_clock::now();
    test::run_virtual(sleep_for(24h));
    CHECK(std::chrono::steady_clock::now() - real_start < 1s);
}
