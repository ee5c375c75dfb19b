// Tests of the I/O awaiter (detail::read_some / write_some through the ring) on pipes: data
// transfer, cancellation of a pending read (the task resumes only with the operation's own
// completion), a read that completed before its cancel took effect, loop close with a read in
// flight, and no byte lost or duplicated over many read/cancel/write races.
#include "support.hpp"

#include <array>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <ringlet/detail/io_awaiter.hpp>
#include <string>
#include <sys/ioctl.h>
#include <system_error>
#include <unistd.h>

namespace {

using namespace ringlet::test;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;

/// A blocking pipe (io_uring parks the read until data arrives), closed on destruction.
class Pipe {
  public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category(), "pipe2");
        read_fd = fds[0];
        write_fd = fds[1];
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    ~Pipe() {
        ::close(read_fd);
        ::close(write_fd);
    }

    /// Bytes waiting in the pipe.
    std::size_t readable() const {
        int n = 0;
        if (::ioctl(read_fd, FIONREAD, &n) != 0)
            throw std::system_error(errno, std::generic_category(), "ioctl(FIONREAD)");
        return static_cast<std::size_t>(n);
    }
    /// Reads whatever is waiting, without blocking.
    std::string drain() const {
        std::string out(readable(), '\0');
        if (!out.empty() && ::read(read_fd, out.data(), out.size()) != ssize_t(out.size()))
            throw std::system_error(errno, std::generic_category(), "read");
        return out;
    }
    void put(std::string_view data) const {
        if (::write(write_fd, data.data(), data.size()) != ssize_t(data.size()))
            throw std::system_error(errno, std::generic_category(), "write");
    }

    int read_fd = -1;
    int write_fd = -1;
};

using Buffer = std::array<std::byte, 64>;
constexpr std::byte sentinel{0xAB};

std::string text(const Buffer& buffer, std::int32_t n) {
    return std::string(reinterpret_cast<const char*>(buffer.data()), static_cast<std::size_t>(n));
}

bool untouched(const Buffer& buffer) {
    for (std::byte b : buffer)
        if (b != sentinel)
            return false;
    return true;
}

/// Reads once from `fd`; throws std::system_error on failure.
Task<std::string> read_once(int fd) {
    std::array<std::byte, 16> buffer;
    std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
    if (n < 0)
        throw std::system_error(-n, std::generic_category(), "read_some");
    co_return std::string(reinterpret_cast<const char*>(buffer.data()),
                          static_cast<std::size_t>(n));
}

/// Writes all of `data` to `fd` through the ring. Lifetime: `data` must outlive the task.
Task<> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        std::int32_t n = co_await ringlet::detail::write_some(fd, std::as_bytes(std::span(data)));
        if (n < 0)
            throw std::system_error(-n, std::generic_category(), "write_some");
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

/// Yields until a reader's read on an empty pipe is in the kernel (its SQE was submitted).
Task<> until_read_submitted() {
    EventLoop& loop = EventLoop::current();
    // The reader queues its SQE when it first runs; the next iteration's enter submits it.
    for (int i = 0; i < 10 && loop.stats().io_in_flight == 0; ++i)
        co_await ringlet::yield_now();
    co_await ringlet::yield_now();
    REQUIRE(loop.stats().io_in_flight == 1);
}

} // namespace

TEST_CASE("a read returns the bytes another task wrote", "[io]") {
    Pipe pipe;
    std::string got = run_real([](const Pipe& p) -> Task<std::string> {
        auto reader = ringlet::spawn(read_once(p.read_fd));
        co_await until_read_submitted();
        auto writer = ringlet::spawn(write_all(p.write_fd, "hello"));
        co_await writer;
        std::string got = co_await reader;
        co_return got;
    }(pipe));
    CHECK(got == "hello");
    CHECK(pipe.readable() == 0);
}

TEST_CASE("a cancelled pending read resumes only after its completion and raises "
          "CancelledError",
          "[io][cancel]") {
    struct Seen {
        bool cancelled = false;
        std::size_t in_flight_at_resume = 99;
        std::uint64_t completions_at_resume = 0;
        bool buffer_untouched = false;
        std::string second_read;
    } seen;
    Pipe pipe;
    run_real([](const Pipe& p, Seen& s) -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto reader = [](int fd, Seen& s2) -> Task<int> {
            Buffer buffer;
            buffer.fill(sentinel);
            try {
                (void)co_await ringlet::detail::read_some(fd, buffer);
                FAIL("the read on an empty pipe must not return");
            } catch (const CancelledError&) {
                EventLoop& l = EventLoop::current();
                s2.cancelled = true;
                s2.in_flight_at_resume = l.stats().io_in_flight;
                s2.completions_at_resume = l.stats().completions;
                s2.buffer_untouched = untouched(buffer);
            }
            // The cancel was consumed: the same buffer serves a second read normally.
            std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
            s2.second_read = text(buffer, n);
            co_return n;
        };
        auto handle = ringlet::spawn(reader(p.read_fd, s), "reader");
        co_await until_read_submitted();
        std::uint64_t completions_before = loop.stats().completions;
        CHECK(handle.cancel());
        CHECK_FALSE(s.cancelled); // not resumed inline
        CHECK(handle.state() == "awaiting read fd " + std::to_string(p.read_fd));
        for (int i = 0; i < 100 && !s.cancelled; ++i)
            co_await ringlet::yield_now();
        REQUIRE(s.cancelled);
        CHECK(s.in_flight_at_resume == 0); // its own completion had been reaped
        CHECK(s.completions_at_resume > completions_before);
        CHECK(s.buffer_untouched);
        p.put("after");
        int n = co_await handle;
        CHECK(n == 5);
        CHECK_FALSE(handle.cancelled());
    }(pipe, seen));
    CHECK(seen.second_read == "after");
    CHECK(pipe.readable() == 0);
}

TEST_CASE("a read that completed before its cancel took effect returns the data and the "
          "CancelledError comes at the next suspension point",
          "[io][cancel]") {
    struct Seen {
        std::string got;
        bool cancelled_with_read_complete = false;
        bool reader_had_resumed = true;
        bool cancelled_at_yield = false;
        int probes = 0;
    } seen;
    Pipe pipe;
    run_real([](const Pipe& p, Seen& s) -> Task<> {
        EventLoop& loop = EventLoop::current();
        auto reader = [](int fd, Seen& s2) -> Task<> {
            Buffer buffer;
            std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
            s2.got = text(buffer, n);
            try {
                co_await ringlet::yield_now();
            } catch (const CancelledError&) {
                s2.cancelled_at_yield = true;
                throw;
            }
        };
        auto handle = ringlet::spawn(reader(p.read_fd, s), "reader");
        co_await until_read_submitted();
        p.put("data");
        // A callback that runs once per iteration, ahead of whatever that iteration's
        // completions wake. The iteration whose reap took the read's completion queues the
        // reader behind the probe: the probe cancels a task whose read is already complete.
        struct Probe {
            EventLoop& loop;
            mutable ringlet::TaskHandle reader;
            Seen& seen;
            void operator()() const {
                ++seen.probes;
                if (loop.stats().io_in_flight == 0) {
                    seen.reader_had_resumed = !seen.got.empty();
                    seen.cancelled_with_read_complete = reader.cancel();
                } else if (seen.probes < 1000) {
                    loop.call_soon(*this);
                }
            }
        };
        loop.call_soon(Probe{loop, handle, s});
        try {
            co_await handle;
            FAIL("the reader must end in CancelledError");
        } catch (const CancelledError&) {
        }
        CHECK(handle.cancelled());
    }(pipe, seen));
    CHECK(seen.cancelled_with_read_complete);
    CHECK_FALSE(seen.reader_had_resumed);
    CHECK(seen.got == "data"); // no byte lost to the cancellation
    CHECK(seen.cancelled_at_yield);
    CHECK(pipe.readable() == 0);
}

TEST_CASE("closing the loop with a read in flight cancels it and drains its completion",
          "[io][cancel]") {
    struct Seen {
        bool started = false;
        bool cancelled = false;
        std::size_t in_flight_at_resume = 99;
        bool buffer_untouched = false;
    } seen;
    Pipe pipe;
    run_real([](const Pipe& p, Seen& s) -> Task<> {
        auto leftover = [](int fd, Seen& s2) -> Task<> {
            Buffer buffer;
            buffer.fill(sentinel);
            s2.started = true;
            try {
                (void)co_await ringlet::detail::read_some(fd, buffer);
            } catch (const CancelledError&) {
                s2.cancelled = true;
                s2.in_flight_at_resume = EventLoop::current().stats().io_in_flight;
                s2.buffer_untouched = untouched(buffer);
                throw;
            }
        };
        ringlet::spawn(leftover(p.read_fd, s), "leftover"); // detached, still reading
        co_await until_read_submitted();
    }(pipe, seen));
    CHECK(seen.started);
    CHECK(seen.cancelled);
    CHECK(seen.in_flight_at_resume == 0);
    CHECK(seen.buffer_untouched);
    pipe.put("z"); // the cancelled read is gone: the byte stays in the pipe
    CHECK(pipe.drain() == "z");
}

TEST_CASE("a read racing its cancel and a write 10000 times loses and duplicates no byte",
          "[io][cancel]") {
    constexpr int rounds = 10'000;
    struct Outcome {
        std::string received;
        int reads_returned = 0;
        int reads_cancelled = 0;
    } outcome;
    Pipe pipe;
    run_real([](const Pipe& p, Outcome& o) -> Task<> {
        for (int i = 0; i < rounds; ++i) {
            auto reader = ringlet::spawn(read_once(p.read_fd));
            const char byte = static_cast<char>(i & 0xff);
            // Vary where the cancel falls relative to the read's submission and the data. After
            // one yield the reader has run and queued its SQE; the next iteration submits it.
            // (A byte left by an earlier round may complete the read at once.)
            switch (i % 6) {
            case 0: // before the reader's first step: it never reads
                reader.cancel();
                p.put({&byte, 1});
                break;
            case 1: // read and cancel queued in the same submission, data first
                co_await ringlet::yield_now();
                reader.cancel();
                p.put({&byte, 1});
                break;
            case 2: // read in the kernel, cancel queued, then data
                co_await ringlet::yield_now();
                co_await ringlet::yield_now();
                reader.cancel();
                p.put({&byte, 1});
                break;
            case 3: // read cancelled in the kernel before the data comes
                co_await ringlet::yield_now();
                co_await ringlet::yield_now();
                reader.cancel();
                co_await ringlet::yield_now();
                p.put({&byte, 1});
                break;
            case 4: // data arrives at a read in the kernel, then the cancel
                co_await ringlet::yield_now();
                co_await ringlet::yield_now();
                p.put({&byte, 1});
                reader.cancel();
                break;
            default: // data before the read is submitted, then the cancel
                co_await ringlet::yield_now();
                p.put({&byte, 1});
                reader.cancel();
                break;
            }
            try {
                o.received += co_await reader;
                ++o.reads_returned;
            } catch (const CancelledError&) {
                ++o.reads_cancelled;
            }
        }
    }(pipe, outcome));
    std::string expected;
    for (int i = 0; i < rounds; ++i)
        expected.push_back(static_cast<char>(i & 0xff));
    std::string leftover = pipe.drain();
    CHECK(outcome.received.size() + leftover.size() == expected.size());
    CHECK(outcome.received + leftover == expected);
    CHECK(outcome.reads_returned + outcome.reads_cancelled == rounds);
    CHECK(outcome.reads_returned > 0);
    CHECK(outcome.reads_cancelled > 0);
}
