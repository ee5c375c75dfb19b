// Tests for multi_loop.hpp (run_on_threads, LoopGroup) and for call_soon_threadsafe between
// loops: its two wake-up paths (IORING_OP_MSG_RING from the caller's ring, the eventfd), a
// stress of cross-loop callbacks, and wake-ups racing with the target loop's close.
#include "ring.hpp"
#include "ringlet/detail/remote_inbox.hpp"
#include "support.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using ringlet::EventLoop;
using ringlet::LoopGroup;
using ringlet::Task;
using Clock = std::chrono::steady_clock;

/// Loop options with the given cross-loop wake-up (the ring set-up follows the environment).
ringlet::LoopOptions wake_options(ringlet::CrossLoopWake wake) {
    ringlet::LoopOptions o = ringlet::test::options();
    o.cross_loop_wake = wake;
    return o;
}

const char* wake_name(ringlet::CrossLoopWake wake) {
    return wake == ringlet::CrossLoopWake::eventfd ? "eventfd" : "automatic";
}

/// Waits (yielding to the loop every millisecond, at most `limit`) until `flag` is set.
Task<bool> wait_flag(const std::atomic<bool>& flag, std::chrono::milliseconds limit = 10s) {
    auto deadline = Clock::now() + limit;
    while (!flag.load() && Clock::now() < deadline)
        co_await ringlet::sleep(1ms);
    co_return flag.load();
}

/// True if RINGLET_CROSS_LOOP_WAKE=eventfd makes loops with automatic options use the eventfd.
bool env_forces_eventfd() {
    const char* value = std::getenv("RINGLET_CROSS_LOOP_WAKE");
    return value != nullptr && std::string_view(value) == "eventfd";
}

/// Lifetime: `event` must outlive the task.
Task<> wait_event(ringlet::Event& event) {
    co_await event.wait();
}

Task<> sleep_for(std::chrono::milliseconds duration) {
    co_await ringlet::sleep(duration);
}

/// A blocking client socket connected to 127.0.0.1:`port`, with a 5 s receive timeout.
int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        int error = errno;
        ::close(fd);
        throw std::system_error(error, std::generic_category(), "connect");
    }
    return fd;
}

} // namespace

TEST_CASE("run_on_threads rejects n == 0 with std::invalid_argument naming the value",
          "[multi_loop]") {
    bool called = false;
    auto factory = [&](std::size_t) -> Task<> {
        called = true;
        co_return;
    };
    CHECK_THROWS_MATCHES(ringlet::run_on_threads(0, factory), std::invalid_argument,
                         Catch::Message("ringlet::LoopGroup / run_on_threads: n = 0 threads; at "
                                        "least 1 is needed"));
    CHECK_THROWS_AS(LoopGroup(0), std::invalid_argument);
    CHECK_FALSE(called);
}

TEST_CASE("run_on_threads runs each index's task on a thread and loop of its own", "[multi_loop]") {
    constexpr std::size_t n = 4;
    std::mutex mutex;
    std::set<std::size_t> indexes;
    std::set<std::thread::id> threads;
    std::set<EventLoop*> loops;
    ringlet::run_on_threads(
        n,
        [&](std::size_t index) -> Task<> {
            co_await ringlet::sleep(1ms);
            std::lock_guard lock(mutex);
            indexes.insert(index);
            threads.insert(std::this_thread::get_id());
            loops.insert(&EventLoop::current());
        },
        ringlet::test::options());
    CHECK(indexes == std::set<std::size_t>{0, 1, 2, 3});
    CHECK(threads.size() == n);
    CHECK(threads.count(std::this_thread::get_id()) == 0);
    CHECK(loops.size() == n);
    CHECK(EventLoop::current_or_null() == nullptr);
}

TEST_CASE("run_on_threads rethrows the first exception once every thread finished, after "
          "stopping the other loops",
          "[multi_loop]") {
    std::atomic<bool> other_cancelled{false};
    std::atomic<bool> other_finished{false};
    auto started = Clock::now();
    CHECK_THROWS_MATCHES(ringlet::run_on_threads(
                             2,
                             [&](std::size_t index) -> Task<> {
                                 if (index == 1) {
                                     co_await ringlet::sleep(20ms);
                                     throw std::runtime_error("loop 1 failed");
                                 }
                                 try {
                                     co_await ringlet::sleep(10s); // stopped by loop 1's failure
                                 } catch (const ringlet::CancelledError&) {
                                     other_cancelled = true;
                                 }
                                 co_await ringlet::sleep(
                                     20ms); // cleanup still runs before the rethrow
                                 other_finished = true;
                             },
                             ringlet::test::options()),
                         std::runtime_error, Catch::Message("loop 1 failed"));
    CHECK(other_cancelled.load());
    CHECK(other_finished.load());
    CHECK(Clock::now() - started < 5s);
}

TEST_CASE("run_on_threads rethrows an exception thrown by the factory itself", "[multi_loop]") {
    CHECK_THROWS_MATCHES(ringlet::run_on_threads(
                             3,
                             [](std::size_t index) -> Task<> {
                                 if (index == 2)
                                     throw std::logic_error("no task for index 2");
                                 return sleep_for(10s);
                             },
                             ringlet::test::options()),
                         std::logic_error, Catch::Message("no task for index 2"));
}

TEST_CASE("LoopGroup::stop from a foreign thread cancels every loop's task, which may catch "
          "CancelledError and finish normally",
          "[multi_loop]") {
    LoopGroup group(3);
    std::atomic<int> running{0};
    std::atomic<int> cleaned_up{0};
    std::thread stopper([&] {
        auto deadline = Clock::now() + 10s;
        while (running.load() < 3 && Clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        group.stop();
    });
    auto started = Clock::now();
    group.run(
        [&](std::size_t, LoopGroup&) -> Task<> {
            ++running;
            try {
                co_await ringlet::sleep(20s);
            } catch (const ringlet::CancelledError&) {
                ++cleaned_up;
            }
        },
        ringlet::test::options());
    stopper.join();
    CHECK(cleaned_up.load() == 3);
    CHECK(group.stop_requested());
    CHECK(Clock::now() - started < 10s);
    CHECK_THROWS_AS(group.run([](std::size_t, LoopGroup&) -> Task<> { co_return; }),
                    std::logic_error);
}

TEST_CASE("LoopGroup::stop before run cancels every task at once; CancelledError is no error",
          "[multi_loop]") {
    LoopGroup group(2);
    group.stop();
    std::atomic<int> finished{0};
    auto started = Clock::now();
    group.run(
        [&](std::size_t, LoopGroup&) -> Task<> {
            co_await ringlet::sleep(20s);
            ++finished;
        },
        ringlet::test::options());
    CHECK(finished.load() == 0);
    CHECK(Clock::now() - started < 10s);
}

TEST_CASE("LoopGroup::call_soon_threadsafe reaches a running loop and refuses the others",
          "[multi_loop]") {
    LoopGroup group(2);
    std::atomic<bool> ran_on_1{false};
    std::thread::id loop1_thread;
    std::thread::id callback_thread;
    group.run(
        [&](std::size_t index, LoopGroup& g) -> Task<> {
            if (index == 1) {
                loop1_thread = std::this_thread::get_id();
                co_await wait_flag(ran_on_1);
                co_return;
            }
            // Loop 1 may not have registered yet: retry until it takes the callback.
            bool posted = false;
            for (int i = 0; i < 5000 && !posted; ++i) {
                posted = g.call_soon_threadsafe(1, [&] {
                    callback_thread = std::this_thread::get_id();
                    ran_on_1 = true;
                });
                if (!posted)
                    co_await ringlet::sleep(1ms);
            }
            CHECK(posted);
            CHECK_THROWS_AS(g.call_soon_threadsafe(2, [] {}), std::out_of_range);
        },
        ringlet::test::options());
    CHECK(ran_on_1.load());
    CHECK(callback_thread == loop1_thread);
    CHECK_FALSE(group.call_soon_threadsafe(0, [] {})); // every loop has ended
}

TEST_CASE("two loops with SO_REUSEPORT listeners on one port both accept connections",
          "[multi_loop][net]") {
    constexpr int clients = 64;
    std::atomic<std::uint16_t> port{0};
    std::atomic<bool> listening[2] = {false, false};
    std::atomic<int> accepted[2] = {0, 0};
    LoopGroup group(2);
    std::thread client_thread([&] {
        auto deadline = Clock::now() + 10s;
        while (!(listening[0].load() && listening[1].load()) && Clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        int echoed = 0;
        try {
            for (int i = 0; i < clients; ++i) {
                int fd = connect_to(port.load());
                char byte = 'x';
                if (::send(fd, &byte, 1, MSG_NOSIGNAL) == 1 && ::recv(fd, &byte, 1, 0) == 1)
                    ++echoed;
                ::close(fd);
            }
        } catch (const std::exception& e) {
            WARN(e.what());
        }
        CHECK(echoed == clients);
        group.stop();
    });
    group.run(
        [&](std::size_t index, LoopGroup&) -> Task<> {
            ringlet::ListenOptions options;
            options.reuse_port = true;
            if (index == 1) {
                std::atomic<bool>& first_ready = listening[0];
                bool ready = co_await wait_flag(first_ready);
                REQUIRE(ready);
            }
            // Loop 0 takes a free port; loop 1 binds the same one.
            auto listener = ringlet::TcpListener::bind(
                ringlet::Address::ipv4("127.0.0.1", index == 0 ? 0 : port.load()), options);
            if (index == 0)
                port = listener.local_address().port();
            listening[index] = true;
            for (;;) {
                ringlet::TcpStream conn = co_await listener.accept();
                ++accepted[index];
                std::array<std::byte, 1> byte{};
                std::size_t n = co_await conn.recv(byte);
                if (n == 1)
                    co_await conn.send_all(std::span(byte));
            }
        },
        ringlet::test::options());
    client_thread.join();
    INFO("loop 0 accepted " << accepted[0].load() << ", loop 1 accepted " << accepted[1].load());
    CHECK(accepted[0].load() + accepted[1].load() == clients);
    // The kernel spreads connections over the sockets by a hash of the 4-tuple: with 64 client
    // ports, all of them landing on one socket has a chance of 2^-63.
    CHECK(accepted[0].load() > 0);
    CHECK(accepted[1].load() > 0);
}

TEST_CASE("call_soon_threadsafe from loop A wakes loop B blocked in a 10 s timer within 100 ms, "
          "under both wake-up paths",
          "[multi_loop][wake]") {
    for (ringlet::CrossLoopWake wake :
         {ringlet::CrossLoopWake::automatic, ringlet::CrossLoopWake::eventfd}) {
        INFO("cross_loop_wake = " << wake_name(wake));
        std::optional<ringlet::Event> event; // B's; outlives both loops
        std::atomic<EventLoop*> loop_b{nullptr};
        std::atomic<bool> b_waiting{false};
        Clock::time_point posted_at;
        Clock::duration latency{};
        bool woken = false;
        std::atomic<int> msg_ring_loops{0}; // loops whose ring sends and takes MSG_RING wake-ups
        ringlet::LoopStats stats_a, stats_b;
        auto started = Clock::now();
        ringlet::run_on_threads(
            2,
            [&](std::size_t index) -> Task<> {
                EventLoop& loop = EventLoop::current();
                msg_ring_loops += loop.io().wake_fd() >= 0 ? 1 : 0;
                if (index == 1) { // B: blocks in the kernel on a 10 s timer
                    event.emplace();
                    loop_b = &loop;
                    b_waiting = true;
                    try {
                        co_await ringlet::wait_for(wait_event(*event), 10s);
                        woken = true;
                    } catch (const ringlet::TimeoutError&) {
                    }
                    stats_b = loop.stats();
                    co_return;
                }
                // A: once B waits, post the callback that sets B's event.
                co_await wait_flag(b_waiting);
                co_await ringlet::sleep(50ms); // B is in io_uring_enter by now
                posted_at = Clock::now();      // ordered before the callback by the inbox's mutex
                loop_b.load()->call_soon_threadsafe([&] {
                    latency = Clock::now() - posted_at;
                    event->set();
                });
                co_await ringlet::sleep(1ms); // the wake-up message's own completion
                stats_a = loop.stats();
            },
            wake_options(wake));
        auto ms = std::chrono::duration<double, std::milli>(latency).count();
        INFO("wake-up latency " << ms << " ms");
        CHECK(woken);
        CHECK(ms < 100);
        CHECK(Clock::now() - started < 5s);
        // MSG_RING where the kernel has it, unless the options (or RINGLET_CROSS_LOOP_WAKE) say
        // eventfd.
        bool msg_ring = msg_ring_loops.load() == 2;
        CHECK(msg_ring == (ringlet::detail::msg_ring_supported() &&
                           wake == ringlet::CrossLoopWake::automatic && !env_forces_eventfd()));
        if (msg_ring) {
            CHECK(stats_a.wake_messages_sent == 1);
            CHECK(stats_a.wake_messages_failed == 0);
            CHECK(stats_b.wakeups_by_msg_ring == 1);
            CHECK(stats_b.wakeups_by_eventfd == 0);
        } else {
            CHECK(stats_a.wake_messages_sent == 0);
            CHECK(stats_b.wakeups_by_msg_ring == 0);
            CHECK(stats_b.wakeups_by_eventfd == 1);
        }
    }
}

TEST_CASE("10,000 callbacks between two loops each run exactly once, under both wake-up paths",
          "[multi_loop][wake]") {
    constexpr int per_loop = 5000; // each loop posts this many to the other
    for (ringlet::CrossLoopWake wake :
         {ringlet::CrossLoopWake::automatic, ringlet::CrossLoopWake::eventfd}) {
        INFO("cross_loop_wake = " << wake_name(wake));
        std::atomic<EventLoop*> loops[2] = {nullptr, nullptr};
        std::vector<int> runs[2] = {std::vector<int>(per_loop), std::vector<int>(per_loop)};
        std::optional<ringlet::Event> all_arrived[2];
        int arrived[2] = {0, 0};
        ringlet::LoopStats stats[2];
        std::atomic<int> msg_ring_loops{0};
        ringlet::run_on_threads(
            2,
            [&](std::size_t self) -> Task<> {
                std::size_t other = 1 - self;
                all_arrived[self].emplace();
                msg_ring_loops += EventLoop::current().io().wake_fd() >= 0 ? 1 : 0;
                loops[self] = &EventLoop::current();
                while (loops[other].load() == nullptr)
                    co_await ringlet::sleep(1ms);
                EventLoop* target = loops[other].load();
                // runs[other] and arrived[other] are touched on the other loop's thread only.
                for (int i = 0; i < per_loop; ++i) {
                    target->call_soon_threadsafe([&, other, i] {
                        ++runs[other][static_cast<std::size_t>(i)];
                        if (++arrived[other] == per_loop)
                            all_arrived[other]->set();
                    });
                    if (i % 64 == 0)
                        co_await ringlet::yield_now(); // let the wake-ups go out meanwhile
                }
                // Once everything from the peer arrived, the peer is done with this loop.
                co_await ringlet::wait_for(wait_event(*all_arrived[self]), 20s);
                stats[self] = EventLoop::current().stats();
            },
            wake_options(wake));
        for (std::size_t l = 0; l < 2; ++l) {
            INFO("loop " << l);
            CHECK(arrived[l] == per_loop);
            int wrong = 0;
            for (int r : runs[l])
                wrong += r != 1;
            CHECK(wrong == 0);
            if (msg_ring_loops.load() == 2) {
                CHECK(stats[l].wakeups_by_msg_ring > 0);
                CHECK(stats[l].wake_messages_sent > 0);
                CHECK(stats[l].wakeups_by_eventfd == 0);
            } else {
                CHECK(stats[l].wakeups_by_msg_ring == 0);
                CHECK(stats[l].wake_messages_sent == 0);
                CHECK(stats[l].wakeups_by_eventfd > 0);
            }
        }
    }
}

TEST_CASE("a wake-up message the kernel refuses falls back to the eventfd", "[multi_loop][wake]") {
    if (!ringlet::detail::msg_ring_supported() || env_forces_eventfd()) {
        WARN("IORING_OP_MSG_RING is not supported or not enabled: nothing to test");
        return;
    }
    // An inbox whose "ring" is a pipe: IORING_OP_MSG_RING completes with -EBADFD.
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    auto inbox = std::make_shared<ringlet::detail::RemoteInbox>(pipe_fds[0]);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    REQUIRE(inbox->ring_fd() >= 0);
    ringlet::LoopStats stats = ringlet::run(
        [](std::shared_ptr<ringlet::detail::RemoteInbox> target) -> Task<ringlet::LoopStats> {
            bool posted = ringlet::detail::post_threadsafe(target, [] {});
            CHECK(posted);
            for (int i = 0; i < 1000 && EventLoop::current().stats().io_in_flight > 0; ++i)
                co_await ringlet::sleep(1ms);
            co_await ringlet::yield_now(); // the message's completion ran
            co_return EventLoop::current().stats();
        }(inbox),
        wake_options(ringlet::CrossLoopWake::automatic));
    CHECK(stats.wake_messages_sent == 1);
    CHECK(stats.wake_messages_failed == 1);
    pollfd p{inbox->eventfd(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 1); // woken through the eventfd instead
    CHECK(inbox->take_all().size() == 1);
}

TEST_CASE("wake-ups racing with the target loop's close neither leak nor crash",
          "[multi_loop][wake]") {
    // Loop B runs for a moment and closes while loop A keeps posting to it. Every callback is
    // either run by B or dropped by its closed inbox: each one's capture is destroyed once.
    constexpr int rounds = 20;
    int total_posted = 0;
    auto destroyed = std::make_shared<std::atomic<int>>(0);
    int ran = 0;
    for (int round = 0; round < rounds; ++round) {
        // B is created, run and closed on its thread, and destroyed after A stopped posting.
        std::optional<EventLoop> b;
        std::atomic<bool> b_created{false};
        std::atomic<bool> b_closed{false};
        std::thread b_thread([&] {
            b.emplace(ringlet::test::options());
            b_created = true;
            b->call_later(std::chrono::microseconds(2000 + 200 * round), [&] { b->stop(); });
            b->run_forever();
            b->close();
            b_closed = true;
        });
        while (!b_created.load())
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        struct Counted {
            std::shared_ptr<std::atomic<int>> destroyed;
            explicit Counted(std::shared_ptr<std::atomic<int>> d) : destroyed(std::move(d)) {}
            Counted(const Counted&) = delete;
            Counted& operator=(const Counted&) = delete;
            ~Counted() { ++*destroyed; }
        };
        std::atomic<int> ran_in_round{0};
        int posted = ringlet::run(
            [&]() -> Task<int> {
                int n = 0;
                auto deadline = Clock::now() + 5s;
                int after_close = 0;
                while (after_close < 50 && Clock::now() < deadline) {
                    auto counted = std::make_shared<Counted>(destroyed);
                    b->call_soon_threadsafe([counted, &ran_in_round] { ++ran_in_round; });
                    ++n;
                    if (b_closed.load())
                        ++after_close;
                    co_await ringlet::yield_now();
                }
                co_return n;
            }(),
            ringlet::test::options());
        b_thread.join();
        total_posted += posted;
        ran += ran_in_round.load();
    }
    CHECK(destroyed->load() == total_posted);
    CHECK(ran <= total_posted);
    CHECK(ran > 0);
}
