// recv_buffer(): receiving into the loop's provided-buffer pool. Every test runs in three modes:
// multishot recv (the default), single-shot receives into spares (LoopOptions::multishot_recv
// false) and a pool of one tiny buffer, which runs dry at once (-ENOBUFS and the single-shot
// fallback). Covered: bytes in order and end of stream, 10,000 tiny-timeout cancellations with
// no byte lost, back-pressure on a slow reader, close and reset errors, misuse errors, buffers
// outliving the loop, idle streams parking no buffer, and bad options.
#include "support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <dirent.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::LoopOptions;
using ringlet::RecvBuffer;
using ringlet::Task;
using ringlet::TcpListener;
using ringlet::TcpStream;
using ringlet::TimeoutError;

const Address any_loopback = Address::parse("127.0.0.1:0");

enum class Mode { multishot, single_shot, tiny_pool };

const char* mode_name(Mode mode) {
    switch (mode) {
    case Mode::multishot:
        return "multishot";
    case Mode::single_shot:
        return "single-shot";
    case Mode::tiny_pool:
        return "tiny pool";
    }
    return "?";
}

LoopOptions mode_options(Mode mode) {
    LoopOptions o = options();
    if (mode == Mode::single_shot)
        o.multishot_recv = false;
    if (mode == Mode::tiny_pool) {
        o.recv_buffer_count = 1;
        o.recv_buffer_size = 64;
    }
    return o;
}

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

std::byte byte_at(std::uint64_t i) {
    return std::byte(static_cast<unsigned char>((i * 7 + i / 253) & 0xFF));
}

/// Sends `total` pattern bytes in chunks of varying size, then FIN.
Task<> write_pattern(TcpStream& s, std::uint64_t total) {
    std::vector<std::byte> chunk;
    std::uint64_t offset = 0;
    for (std::uint64_t step = 1; offset < total; ++step) {
        std::uint64_t size = std::min<std::uint64_t>(total - offset, 1 + (step * 97) % 3000);
        chunk.resize(size);
        for (std::uint64_t i = 0; i < size; ++i)
            chunk[i] = byte_at(offset + i);
        co_await s.send_all(chunk);
        offset += size;
        if (step % 4 == 0)
            co_await ringlet::yield_now();
    }
    s.shutdown_write();
}

/// What a reader saw.
struct Received {
    std::uint64_t bytes = 0;
    bool in_order = true;

    void add(const RecvBuffer& b) {
        for (std::size_t i = 0; i < b.size(); ++i)
            in_order = in_order && b.bytes()[i] == byte_at(bytes + i);
        bytes += b.size();
    }
};

} // namespace

TEST_CASE("recv_buffer delivers every byte in order, then empty buffers at end of stream",
          "[net][recv_buffer]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot, Mode::tiny_pool);
    INFO(mode_name(mode));
    auto body = []() -> Task<> {
        Connection c = co_await connect_pair();
        constexpr std::uint64_t total = 1'000'000;
        auto writing = ringlet::spawn(write_pattern(c.client, total));
        Received got;
        for (int i = 0; i < 2'000'000; ++i) {
            RecvBuffer b = co_await c.server.recv_buffer();
            if (b.empty())
                break;
            got.add(b);
        }
        co_await writing;
        CHECK(got.bytes == total);
        CHECK(got.in_order);
        RecvBuffer again = co_await c.server.recv_buffer(); // end of stream stays
        CHECK(again.empty());
        CHECK(EventLoop::current().stats().recv_buffers_lent == 0);
        // The stream still sends after the peer's FIN.
        co_await c.server.send_all(std::string_view("bye"));
        std::array<std::byte, 3> reply;
        co_await c.client.recv_exactly(reply);
        CHECK(std::string_view(reinterpret_cast<const char*>(reply.data()), 3) == "bye");
    };
    ringlet::run(body(), mode_options(mode));
}

TEST_CASE("wait_for on recv_buffer with tiny timeouts 10,000 times loses no byte",
          "[net][recv_buffer][cancel]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot, Mode::tiny_pool);
    INFO(mode_name(mode));
    auto body = []() -> Task<> {
        Connection c = co_await connect_pair();
        constexpr std::uint64_t total = 2'000'000;
        auto writing = ringlet::spawn(write_pattern(c.client, total));
        Received got;
        int timeouts = 0, values = 0;
        bool eof = false;
        for (int attempt = 0; attempt < 10000 && !eof; ++attempt) {
            auto timeout = std::chrono::microseconds(attempt % 4 == 0 ? 0 : attempt % 50);
            try {
                RecvBuffer b = co_await ringlet::wait_for(c.server.recv_buffer(), timeout);
                ++values;
                eof = b.empty();
                got.add(b);
            } catch (const TimeoutError&) {
                ++timeouts;
            }
        }
        for (int i = 0; i < 2'000'000 && !eof; ++i) {
            RecvBuffer b = co_await c.server.recv_buffer();
            eof = b.empty();
            got.add(b);
        }
        co_await writing;
        CHECK(got.bytes == total);
        CHECK(got.in_order);
        CHECK(timeouts > 0); // the race was exercised both ways
        CHECK(values > 0);
        CHECK(EventLoop::current().stats().recv_buffers_lent == 0);
    };
    ringlet::run(body(), mode_options(mode));
}

TEST_CASE("a slow reader gets every byte while the pool stays bounded", "[net][recv_buffer]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot, Mode::tiny_pool);
    INFO(mode_name(mode));
    auto body = []() -> Task<> {
        Connection c = co_await connect_pair();
        constexpr std::uint64_t total = 8'000'000;
        auto writing = ringlet::spawn(write_pattern(c.client, total));
        Received got;
        std::size_t most_lent = 0;
        for (int i = 0; i < 4'000'000; ++i) {
            RecvBuffer b = co_await c.server.recv_buffer();
            if (b.empty())
                break;
            got.add(b);
            if (i % 64 == 0)
                co_await ringlet::sleep(1ms); // let the writer run far ahead
            most_lent = std::max(most_lent, EventLoop::current().stats().recv_buffers_lent);
        }
        co_await writing;
        CHECK(got.bytes == total);
        CHECK(got.in_order);
        // The request is cancelled once 8 buffers wait; a few more may land before the cancel.
        CHECK(most_lent <= 64);
        CHECK(EventLoop::current().stats().recv_buffers <= 4096);
    };
    ringlet::run(body(), mode_options(mode));
}

TEST_CASE("closing a stream completes a waiting recv_buffer with operation_canceled",
          "[net][recv_buffer][cancel]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot, Mode::tiny_pool);
    INFO(mode_name(mode));
    auto body = [](Mode mode) -> Task<> {
        Connection c = co_await connect_pair();
        auto reader = [](TcpStream& s) -> Task<std::string> {
            try {
                (void)co_await s.recv_buffer();
            } catch (const std::system_error& e) {
                co_return e.code() == std::errc::operation_canceled ? "canceled" : e.what();
            }
            co_return "no error";
        };
        auto reading = ringlet::spawn(reader(c.server));
        co_await ringlet::sleep(10ms);
        // A waiting multishot request parks no buffer; a single-shot one parks a spare.
        CHECK(EventLoop::current().stats().recv_buffers_lent ==
              (mode == Mode::single_shot ? 1 : 0));
        c.server.close();
        CHECK(co_await reading == "canceled");
        try {
            (void)co_await c.server.recv_buffer();
            FAIL("recv_buffer on a closed stream succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EBADF);
        }
        co_await ringlet::sleep(10ms); // the cancelled request's completion arrives
        CHECK(EventLoop::current().stats().recv_buffers_lent == 0);
    };
    ringlet::run(body(mode), mode_options(mode));
}

TEST_CASE("recv_buffer after a reset raises ECONNRESET naming the peer", "[net][recv_buffer]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot);
    INFO(mode_name(mode));
    auto body = []() -> Task<> {
        Connection c = co_await connect_pair();
        co_await c.client.send_all(std::string_view("abc"));
        RecvBuffer first = co_await c.server.recv_buffer();
        CHECK(first.text() == "abc");
        linger hard{1, 0};
        ::setsockopt(c.client.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        const std::string peer = c.server.peer_address().to_string();
        c.client.close();
        try {
            for (int i = 0; i < 10; ++i)
                (void)co_await c.server.recv_buffer();
            FAIL("no error after the peer's reset");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNRESET);
            CHECK_THAT(e.what(), Catch::Contains("recv from " + peer));
        }
    };
    ringlet::run(body(), mode_options(mode));
}

TEST_CASE("a stream reads one way only and one task at a time", "[net][recv_buffer]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        co_await c.client.send_all(std::string_view("x"));
        RecvBuffer b = co_await c.server.recv_buffer();
        CHECK(b.text() == "x");
        std::array<std::byte, 8> plain;
        CHECK_THROWS_AS(c.server.recv(plain), std::logic_error);
        auto waiting = ringlet::spawn([](TcpStream& s) -> Task<std::size_t> {
            co_return (co_await s.recv_buffer()).size();
        }(c.server));
        co_await ringlet::yield_now();
        try {
            (void)co_await c.server.recv_buffer();
            FAIL("a second reader was accepted");
        } catch (const std::logic_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("another task"));
        }
        co_await c.client.send_all(std::string_view("yz"));
        CHECK(co_await waiting == 2);
    }());
}

TEST_CASE("a RecvBuffer may outlive its stream and its loop", "[net][recv_buffer]") {
    Mode mode = GENERATE(Mode::multishot, Mode::single_shot);
    INFO(mode_name(mode));
    auto body = []() -> Task<RecvBuffer> {
        Connection c = co_await connect_pair();
        co_await c.client.send_all(std::string_view("kept"));
        co_return co_await c.server.recv_buffer();
    };
    RecvBuffer kept = ringlet::run(body(), mode_options(mode));
    CHECK(kept.text() == "kept");
    kept.reset();
    CHECK(kept.empty());
}

TEST_CASE("idle streams waiting in recv_buffer park no buffer, and the loop closes cleanly",
          "[net][recv_buffer][cancel]") {
    int before = open_descriptors();
    auto body = []() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        std::vector<TcpStream> clients;
        std::vector<TcpStream> servers;
        for (int i = 0; i < 200; ++i) {
            clients.push_back(co_await TcpStream::connect(listener.local_address()));
            servers.push_back(co_await listener.accept());
        }
        for (TcpStream& s : servers)
            ringlet::spawn([](TcpStream s) -> Task<> {
                for (;;)
                    if ((co_await s.recv_buffer()).empty())
                        co_return;
            }(std::move(s)));
        co_await ringlet::sleep(20ms);
        auto stats = EventLoop::current().stats();
        CHECK(stats.recv_buffers_lent == 0);
        CHECK(stats.recv_buffers <= 64); // one chunk, whatever the number of streams
        // main returns with 200 readers waiting: run() cancels them and drains their requests.
    };
    ringlet::run(body(), options());
    CHECK(open_descriptors() == before);
}

TEST_CASE("receives that starve together grow the pool by what they need, not a chunk each",
          "[net][recv_buffer]") {
    // 200 streams with bytes already waiting start reading in the same iteration: their
    // multishot requests reach the kernel together, the first 64 take the first chunk's buffers
    // and the other 136 starve (-ENOBUFS) in the same pass. Growing a chunk per starved request
    // took the pool to its maximum (4,096 buffers); three chunks serve them.
    auto body = []() -> Task<> {
        constexpr int streams = 200;
        constexpr std::uint64_t bytes_each = 100;
        TcpListener listener = TcpListener::bind(any_loopback);
        std::vector<TcpStream> clients;
        std::vector<TcpStream> servers;
        std::vector<std::byte> message(bytes_each);
        for (std::uint64_t i = 0; i < bytes_each; ++i)
            message[i] = byte_at(i);
        for (int i = 0; i < streams; ++i) {
            clients.push_back(co_await TcpStream::connect(listener.local_address()));
            servers.push_back(co_await listener.accept());
            co_await clients.back().send_all(message);
        }
        std::vector<ringlet::JoinHandle<Received>> readers;
        for (TcpStream& s : servers)
            readers.push_back(ringlet::spawn([](TcpStream& s) -> Task<Received> {
                Received got;
                while (got.bytes < bytes_each) {
                    RecvBuffer b = co_await s.recv_buffer();
                    if (b.empty())
                        break;
                    got.add(b);
                }
                co_return got;
            }(s)));
        int complete = 0;
        for (auto& reader : readers) {
            Received got = co_await reader;
            complete += got.bytes == bytes_each && got.in_order;
        }
        CHECK(complete == streams);
        const auto stats = EventLoop::current().stats();
        CHECK(stats.recv_buffers >= 64);
        CHECK(stats.recv_buffers <= 320); // the 200 receives' needs plus a chunk of slack
    };
    ringlet::run(body(), options());
}

TEST_CASE("a steady stream receives into a few recently used buffers, not the whole pool",
          "[net][recv_buffer]") {
    // The kernel takes provided buffers in ring order. With every free buffer in the ring, one
    // connection's messages cycled through all 64 of the first chunk (1 MiB at 16 KiB each,
    // written cold); the ring now holds about twice what a kernel pass takes.
    auto body = []() -> Task<> {
        Connection c = co_await connect_pair();
        std::vector<std::byte> message(100);
        for (std::uint64_t i = 0; i < message.size(); ++i)
            message[i] = byte_at(i);
        std::vector<const std::byte*> seen;
        for (int round = 0; round < 1000; ++round) {
            co_await c.client.send_all(message);
            Received got;
            while (got.bytes < message.size()) {
                RecvBuffer b = co_await c.server.recv_buffer();
                REQUIRE_FALSE(b.empty());
                got.add(b);
                if (round >= 500)
                    seen.push_back(b.bytes().data());
            }
            REQUIRE(got.in_order);
        }
        std::sort(seen.begin(), seen.end());
        const auto distinct = std::unique(seen.begin(), seen.end()) - seen.begin();
        CHECK(distinct >= 1);
        CHECK(distinct <= 8);
    };
    ringlet::run(body(), options());
}

TEST_CASE("bad receive-pool options are refused with the value named", "[net][recv_buffer]") {
    LoopOptions o = options();
    o.recv_buffer_count = 3;
    CHECK_THROWS_WITH(EventLoop(o), Catch::Contains("recv_buffer_count 3"));
    o = options();
    o.recv_buffer_size = 0;
    CHECK_THROWS_WITH(EventLoop(o), Catch::Contains("recv_buffer_size 0"));
}
