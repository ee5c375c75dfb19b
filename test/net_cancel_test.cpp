// Cancellation safety of sockets (run these under ASan): a task cancelled while recv, send,
// accept or connect is in flight resumes only after that operation's completion; wait_for with
// tiny timeouts repeated thousands of times on recv, send and accept loses no byte and no
// connection; closing a stream, listener or loop with operations in flight completes them with
// operation_canceled (or CancelledError) and leaks no descriptor.
#include "support.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <dirent.h>
#include <set>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::Task;
using ringlet::TcpListener;
using ringlet::TcpStream;
using ringlet::TimeoutError;

const Address any_loopback = Address::parse("127.0.0.1:0");

/// Open descriptors of this process.
int open_descriptors() {
    int count = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (dirent* entry = ::readdir(dir))
            if (entry->d_name[0] != '.')
                ++count;
        ::closedir(dir);
    }
    return count - 1; // the directory stream itself
}

/// A connected pair over loopback.
struct Connection {
    TcpListener listener;
    TcpStream client;
    TcpStream server;
};

Task<Connection> connect_pair() {
    Connection c;
    c.listener = TcpListener::bind(any_loopback);
    c.client = co_await TcpStream::connect(c.listener.local_address());
    c.server = co_await c.listener.accept();
    co_return c;
}

/// The byte at stream offset `i` of the test streams.
std::byte byte_at(std::uint64_t i) {
    return std::byte(static_cast<unsigned char>((i * 7 + i / 253) & 0xFF));
}

/// Fills the socket's send path (the peer does not read) until a send stays pending.
Task<std::size_t> fill_until_blocked(TcpStream& stream) {
    std::vector<std::byte> chunk(64 * 1024, std::byte{1});
    std::size_t total = 0;
    for (int i = 0; i < 10000; ++i) {
        try {
            total += co_await ringlet::wait_for(stream.send(chunk), 20ms);
        } catch (const TimeoutError&) {
            co_return total;
        }
    }
    FAIL("the send path never filled up");
    co_return total;
}

ringlet::LoopOptions single_shot_options() {
    ringlet::LoopOptions o = options();
    o.multishot_accept = false;
    return o;
}

} // namespace

TEST_CASE("a cancelled recv raises CancelledError after its completion and the stream still "
          "works",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        std::array<std::byte, 16> buffer;
        buffer.fill(std::byte{0xEE});
        auto reader = [](TcpStream& s, std::span<std::byte> b) -> Task<std::size_t> {
            co_return co_await s.recv(b);
        };
        auto pending = ringlet::spawn(reader(c.server, buffer));
        co_await ringlet::sleep(5ms);
        CHECK(EventLoop::current().stats().io_in_flight == base + 1);
        pending.cancel();
        CHECK_THROWS_AS(co_await pending, CancelledError);
        CHECK(EventLoop::current().stats().io_in_flight == base); // the kernel let go
        CHECK(buffer[0] == std::byte{0xEE});

        co_await c.client.send_all(std::string_view("after"));
        std::size_t n = co_await c.server.recv(buffer);
        CHECK(n == 5);
    }());
}

TEST_CASE("wait_for on recv with tiny timeouts 10,000 times loses no byte", "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        constexpr std::uint64_t total = 2'000'000;
        bool writer_done = false;
        auto writer = [](TcpStream& s, bool& done) -> Task<> {
            std::vector<std::byte> chunk;
            std::uint64_t offset = 0;
            std::uint64_t step = 1;
            while (offset < total) {
                std::uint64_t size =
                    std::min<std::uint64_t>(total - offset, 1 + (step * 97) % 3000);
                chunk.resize(size);
                for (std::uint64_t i = 0; i < size; ++i)
                    chunk[i] = byte_at(offset + i);
                co_await s.send_all(chunk);
                offset += size;
                ++step;
                if (step % 4 == 0)
                    co_await ringlet::yield_now();
            }
            s.shutdown_write();
            done = true;
        };
        auto writing = ringlet::spawn(writer(c.client, writer_done));

        std::array<std::byte, 1024> buffer;
        std::uint64_t received = 0;
        bool in_order = true;
        int timeouts = 0;
        int values = 0;
        bool eof = false;
        for (int attempt = 0; attempt < 10000 && !eof; ++attempt) {
            auto timeout = std::chrono::microseconds(attempt % 4 == 0 ? 0 : attempt % 50);
            std::size_t n = 0;
            try {
                n = co_await ringlet::wait_for(c.server.recv(buffer), timeout);
            } catch (const TimeoutError&) {
                ++timeouts;
                continue;
            }
            ++values;
            if (n == 0)
                eof = true;
            for (std::size_t i = 0; i < n; ++i)
                in_order = in_order && buffer[i] == byte_at(received + i);
            received += n;
        }
        // Whatever is left, read without a timeout.
        while (!eof) {
            std::size_t n = co_await c.server.recv(buffer);
            if (n == 0)
                break;
            for (std::size_t i = 0; i < n; ++i)
                in_order = in_order && buffer[i] == byte_at(received + i);
            received += n;
        }
        co_await writing;
        CHECK(writer_done);
        CHECK(received == total);
        CHECK(in_order);
        CHECK(timeouts > 0); // the race was exercised both ways
        CHECK(values > 0);
        CHECK(EventLoop::current().stats().io_in_flight == base);
    }());
}

TEST_CASE("wait_for on send with tiny timeouts never miscounts sent bytes", "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        int small = 8192;
        ::setsockopt(c.client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        constexpr std::uint64_t total = 3'000'000;
        std::vector<std::byte> data(total);
        for (std::uint64_t i = 0; i < total; ++i)
            data[i] = byte_at(i);

        auto reader = [](TcpStream& s) -> Task<std::vector<std::byte>> {
            std::vector<std::byte> out;
            std::array<std::byte, 4096> buffer;
            int round = 0;
            for (;;) {
                std::size_t n = co_await s.recv(buffer);
                if (n == 0)
                    co_return out;
                out.insert(out.end(), buffer.begin(), buffer.begin() + n);
                if (++round % 8 == 0)
                    co_await ringlet::sleep(50us); // let the sender block now and then
            }
        };
        auto reading = ringlet::spawn(reader(c.server));

        std::uint64_t offset = 0;
        int timeouts = 0;
        for (int attempt = 0; attempt < 10000 && offset < total; ++attempt) {
            auto timeout = std::chrono::microseconds(attempt % 3 == 0 ? 0 : attempt % 40);
            std::size_t chunk =
                std::min<std::uint64_t>(total - offset, 1 + (attempt * 131) % 20000);
            try {
                offset += co_await ringlet::wait_for(
                    c.client.send(std::span(data).subspan(offset, chunk)), timeout);
            } catch (const TimeoutError&) {
                ++timeouts; // nothing was sent by this attempt
            }
        }
        co_await c.client.send_all(std::span(data).subspan(offset));
        c.client.shutdown_write();
        std::vector<std::byte> got = co_await reading;
        CHECK(got.size() == total);
        CHECK(got == data);
        CHECK(timeouts > 0);
    }());
}

TEST_CASE("wait_for on accept with tiny timeouts loses no connection", "[net][cancel]") {
    auto scenario = []() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        constexpr std::uint32_t connections = 300;
        // Each client sends its index and closes.
        auto connector = [](Address where) -> Task<> {
            for (std::uint32_t i = 0; i < connections; ++i) {
                TcpStream s = co_await TcpStream::connect(where);
                co_await s.send_all(std::as_bytes(std::span(&i, 1)));
                if (i % 3 == 0)
                    co_await ringlet::yield_now();
            }
        };
        auto connecting = ringlet::spawn(connector(listener.local_address()));

        std::multiset<std::uint32_t> seen;
        auto take = [](TcpStream s, std::multiset<std::uint32_t>& into) -> Task<> {
            std::uint32_t index = 0;
            co_await s.recv_exactly(std::as_writable_bytes(std::span(&index, 1)));
            into.insert(index);
        };
        int timeouts = 0;
        int accepted = 0;
        for (int attempt = 0; attempt < 10000; ++attempt) {
            auto timeout = std::chrono::microseconds(attempt % 4 == 0 ? 0 : attempt % 30);
            try {
                TcpStream s = co_await ringlet::wait_for(listener.accept(), timeout);
                ++accepted;
                co_await take(std::move(s), seen);
            } catch (const TimeoutError&) {
                ++timeouts;
            }
        }
        co_await connecting;
        // Every connection made is still there: accept the rest without a timeout.
        while (accepted < int(connections)) {
            TcpStream s = co_await ringlet::wait_for(listener.accept(), 10s);
            ++accepted;
            co_await take(std::move(s), seen);
        }
        CHECK(timeouts > 0);
        CHECK(seen.size() == connections);
        std::uint32_t expected = 0;
        bool each_once = true;
        for (std::uint32_t index : seen)
            each_once = each_once && index == expected++;
        CHECK(each_once);
        // Nothing more is pending.
        bool extra = true;
        try {
            (void)co_await ringlet::wait_for(listener.accept(), 50ms);
        } catch (const TimeoutError&) {
            extra = false;
        }
        CHECK_FALSE(extra);
    };
    SECTION("multishot") {
        run_real(scenario());
    }
    SECTION("single-shot") {
        ringlet::run(scenario(), single_shot_options());
    }
}

TEST_CASE("a cancelled accept leaves the next connection to the next accept", "[net][cancel]") {
    auto scenario = []() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        auto waiting = ringlet::spawn(listener.accept());
        co_await ringlet::sleep(5ms);
        waiting.cancel();
        CHECK_THROWS_AS(co_await waiting, CancelledError);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await ringlet::wait_for(listener.accept(), 5s);
        CHECK(server.peer_address() == client.local_address());
    };
    SECTION("multishot") {
        run_real(scenario());
    }
    SECTION("single-shot") {
        ringlet::run(scenario(), single_shot_options());
    }
}

TEST_CASE("a cancelled send raises CancelledError only after the kernel let go of the buffer",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        co_await fill_until_blocked(c.client);
        std::vector<std::byte> big(256 * 1024, std::byte{2});
        auto sender = [](TcpStream& s, std::span<const std::byte> b) -> Task<std::size_t> {
            co_return co_await s.send(b);
        };
        auto pending = ringlet::spawn(sender(c.client, big));
        co_await ringlet::sleep(5ms);
        CHECK(EventLoop::current().stats().io_in_flight == base + 1);
        pending.cancel();
        bool cancelled = false;
        try {
            (void)co_await pending;
        } catch (const CancelledError&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(EventLoop::current().stats().io_in_flight == base);
    }());
}

/// Reads `s` to its end, `step` bytes at a time, pausing `pause` after each read so that the
/// sender meets a full socket and writes short.
Task<std::vector<std::byte>> read_all(TcpStream& s, std::size_t step,
                                      std::chrono::microseconds pause) {
    std::vector<std::byte> out;
    std::vector<std::byte> buffer(step);
    for (int i = 0; i < 1'000'000; ++i) {
        std::size_t n = co_await s.recv(buffer);
        if (n == 0)
            break;
        out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
        if (pause.count() > 0)
            co_await ringlet::sleep(pause);
    }
    co_return out;
}

void shrink_send_buffer(TcpStream& s) {
    int small = 4096;
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

/// Chunks of a send_all stream: chunk k is `sizes[k]` bytes of value k % 250 + 1, then an end
/// marker of 1,000 zero bytes.
struct ChunkStream {
    std::vector<std::size_t> sizes;

    std::vector<std::byte> next_chunk(std::size_t size) {
        sizes.push_back(size);
        return std::vector<std::byte>(size, value(sizes.size() - 1));
    }
    static std::byte value(std::size_t k) { return std::byte(k % 250 + 1); }
    static std::vector<std::byte> marker() { return std::vector<std::byte>(1000, std::byte{0}); }

    /// What arrived is, chunk after chunk in order, each chunk whole, cut short or missing, then
    /// the whole marker: no byte lost inside a chunk, none reordered or duplicated.
    bool received_in_order(const std::vector<std::byte>& got) const {
        const std::vector<std::byte> end = marker();
        if (got.size() < end.size() ||
            !std::equal(end.begin(), end.end(),
                        got.end() - static_cast<std::ptrdiff_t>(end.size())))
            return false;
        std::size_t k = 0;
        for (std::size_t i = 0; i + end.size() < got.size();) {
            std::size_t run = 1;
            while (i + run + end.size() < got.size() && got[i + run] == got[i])
                ++run;
            while (k < sizes.size() && value(k) != got[i])
                ++k;
            if (k == sizes.size() || run > sizes[k])
                return false;
            ++k;
            i += run;
        }
        return true;
    }
};

/// Sends the end marker, ends the stream and yields what the reader received.
Task<std::vector<std::byte>> finish_chunks(TcpStream& s,
                                           ringlet::JoinHandle<std::vector<std::byte>>& reading) {
    co_await s.send_all(ChunkStream::marker());
    s.shutdown_write();
    co_return co_await reading;
}

TEST_CASE("a send_all cancelled between short writes raises CancelledError and the peer gets a "
          "prefix of its bytes",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        shrink_send_buffer(c.client);
        std::vector<std::byte> data(4 << 20);
        for (std::size_t i = 0; i < data.size(); ++i)
            data[i] = byte_at(i);
        auto reading = ringlet::spawn(read_all(c.server, 4096, 100us));
        auto sender = [](TcpStream& s, std::span<const std::byte> b) -> Task<> {
            co_await s.send_all(b);
        };
        auto sending = ringlet::spawn(sender(c.client, data));
        co_await ringlet::sleep(20ms);
        REQUIRE_FALSE(sending.done());
        sending.cancel();
        CHECK_THROWS_AS(co_await sending, CancelledError);
        CHECK(EventLoop::current().stats().io_in_flight <= base + 1); // + the reader's recv
        c.client.shutdown_write();
        std::vector<std::byte> got = co_await reading;
        CHECK(got.size() > 4096);
        CHECK(got.size() < data.size());
        CHECK(std::equal(got.begin(), got.end(), data.begin()));
        CHECK(EventLoop::current().stats().io_in_flight == base);
    }());
}

TEST_CASE("wait_for on send_all with tiny timeouts: each chunk arrives whole or as its prefix, in "
          "order, and the stream stays usable",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        shrink_send_buffer(c.client);
        auto reading = ringlet::spawn(read_all(c.server, 16384, 100us));
        ChunkStream stream;
        int timeouts = 0;
        for (std::size_t k = 0; k < 300; ++k) {
            std::vector<std::byte> chunk = stream.next_chunk(1 + (k * 7919) % 100'000);
            auto timeout = std::chrono::microseconds(k % 5 == 0 ? 0 : (k * 37) % 400);
            try {
                co_await ringlet::wait_for(c.client.send_all(chunk), timeout);
            } catch (const TimeoutError&) {
                ++timeouts;
            }
        }
        std::vector<std::byte> got = co_await finish_chunks(c.client, reading);
        CHECK(timeouts > 0);
        CHECK(EventLoop::current().stats().io_in_flight == base);
        CHECK(stream.received_in_order(got));
    }());
}

TEST_CASE("send_all cancelled by another task at 200 different points, also while the rest of a "
          "short write waits to go, loses and reorders nothing",
          "[net][cancel]") {
    // The canceller runs ahead of what the loop reaps in its iteration, so some cancels land
    // after a short write completed and before the rest is sent.
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        shrink_send_buffer(c.client);
        auto reading = ringlet::spawn(read_all(c.server, 65536, 0us));
        auto sender = [](TcpStream& s, std::vector<std::byte> chunk) -> Task<> {
            co_await s.send_all(chunk);
        };
        auto canceller = [](ringlet::JoinHandle<>& target, int yields) -> Task<> {
            for (int i = 0; i < yields && !target.done(); ++i)
                co_await ringlet::yield_now();
            target.cancel();
        };
        ChunkStream stream;
        int cancelled = 0;
        for (int round = 0; round < 200; ++round) {
            auto sending = ringlet::spawn(sender(c.client, stream.next_chunk(256 * 1024)));
            auto cancelling = ringlet::spawn(canceller(sending, round % 50));
            try {
                co_await sending;
            } catch (const CancelledError&) {
                ++cancelled;
            }
            co_await cancelling;
        }
        std::vector<std::byte> got = co_await finish_chunks(c.client, reading);
        CHECK(cancelled > 0);
        CHECK(EventLoop::current().stats().io_in_flight == base);
        CHECK(stream.received_in_order(got));
    }());
}

TEST_CASE("a connect cancelled in flight raises CancelledError after its completion",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        // A listener whose accept queue is full drops further SYNs: connect stays in flight.
        ringlet::ListenOptions tiny;
        tiny.backlog = 0;
        TcpListener listener = TcpListener::bind(any_loopback, tiny);
        std::vector<TcpStream> queued;
        bool pending_seen = false;
        for (int i = 0; i < 8 && !pending_seen; ++i) {
            try {
                queued.push_back(co_await ringlet::wait_for(
                    TcpStream::connect(listener.local_address()), 200ms));
            } catch (const TimeoutError&) {
                pending_seen = true; // the connect was cancelled after its completion
            }
        }
        REQUIRE(pending_seen);
        auto connecting = ringlet::spawn(TcpStream::connect(listener.local_address()));
        co_await ringlet::sleep(20ms);
        CHECK(EventLoop::current().stats().io_in_flight == 1);
        connecting.cancel();
        CHECK_THROWS_AS(co_await connecting, CancelledError);
        CHECK(EventLoop::current().stats().io_in_flight == 0);
    }());
}

TEST_CASE("closing a stream completes its recv, send and send_all with operation_canceled",
          "[net][cancel]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        const std::size_t base = EventLoop::current().stats().io_in_flight; // armed accept
        co_await fill_until_blocked(c.client);
        std::string peer = c.client.peer_address().to_string();
        auto outcome = [](auto awaitable) -> Task<std::string> {
            try {
                (void)co_await std::move(awaitable);
            } catch (const std::system_error& e) {
                if (e.code() == std::errc::operation_canceled)
                    co_return e.what();
                co_return std::string("other error: ") + e.what();
            }
            co_return "completed";
        };
        std::array<std::byte, 16> in;
        std::vector<std::byte> out(128 * 1024, std::byte{3});
        auto receiving = ringlet::spawn(outcome(c.client.recv(in)));
        auto sending = ringlet::spawn(outcome(c.client.send(out)));
        auto sending_all = ringlet::spawn(outcome(c.client.send_all(out)));
        co_await ringlet::sleep(5ms);
        CHECK(EventLoop::current().stats().io_in_flight == base + 3);
        c.client.close();
        std::string r = co_await receiving;
        std::string s = co_await sending;
        std::string a = co_await sending_all;
        CHECK(r.starts_with("recv from " + peer + ": "));
        CHECK(s.starts_with("send to " + peer + ": "));
        CHECK(a.starts_with("send to " + peer + ": "));
        CHECK(EventLoop::current().stats().io_in_flight == base);
    }());
}

TEST_CASE("closing the loop with socket operations in flight leaks nothing", "[net][cancel]") {
    /// Counts the tasks that ended, whichever way.
    struct Ended {
        int& count;
        ~Ended() { ++count; }
    };
    int before = open_descriptors();
    int ended = 0;
    auto scenario = [](int& ended) -> Task<> {
        // The server accepts forever and receives on each connection forever; the clients
        // connect and wait for an answer that never comes.
        auto serve = [](int& ended) -> Task<> {
            Ended guard{ended};
            TcpListener listener = TcpListener::bind(Address::parse("127.0.0.1:0"));
            auto reader = [](TcpStream s, int& ended) -> Task<> {
                Ended guard{ended};
                std::array<std::byte, 64> buffer;
                for (;;) {
                    std::size_t n = co_await s.recv(buffer);
                    if (n == 0)
                        co_return;
                }
            };
            auto clients = [](Address where, int& ended) -> Task<> {
                Ended guard{ended};
                std::vector<TcpStream> open;
                for (int i = 0; i < 5; ++i)
                    open.push_back(co_await TcpStream::connect(where));
                std::array<std::byte, 8> buffer;
                (void)co_await open[0].recv(buffer);
            };
            ringlet::spawn(clients(listener.local_address(), ended));
            for (;;)
                ringlet::spawn(reader(co_await listener.accept(), ended));
        };
        ringlet::spawn(serve(ended));
        co_await ringlet::sleep(50ms);
        CHECK(EventLoop::current().stats().live_tasks == 8);   // main, server, clients, 5 readers
        CHECK(EventLoop::current().stats().io_in_flight == 7); // accept, 5 recv, client recv
        // main returns: run() cancels every task, waits for their operations, closes the loop.
    };
    ringlet::run(scenario(ended), options());
    CHECK(ended == 7);
    CHECK(open_descriptors() == before);
}

TEST_CASE("a listener kept outside the loop does not keep the loop from closing", "[net][cancel]") {
    int before = open_descriptors();
    {
        TcpListener listener = TcpListener::bind(any_loopback);
        ringlet::run(
            [](TcpListener& l) -> Task<> {
                auto accepting = ringlet::spawn(l.accept());
                TcpStream c = co_await TcpStream::connect(l.local_address());
                TcpStream s = co_await accepting;
                // The multishot request stays armed when main returns; close() cancels it.
                CHECK(EventLoop::current().stats().io_in_flight == 1);
            }(listener),
            options());
        // The listener still works on another loop.
        ringlet::run(
            [](TcpListener& l) -> Task<> {
                auto accepting = ringlet::spawn(l.accept());
                TcpStream c = co_await TcpStream::connect(l.local_address());
                TcpStream s = co_await accepting;
                CHECK(s.peer_address() == c.local_address());
            }(listener),
            options());
    }
    CHECK(open_descriptors() == before);
}
