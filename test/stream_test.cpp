// Tests of the buffered streams. StreamReader first, over the smallest stream it accepts (one end
// of a socketpair read through detail::read_some): read_line, read_until, read_exactly, read_some,
// the limit, end of stream, one read at a time, and cancellation without data loss -- including
// wait_for(read_line(), tiny timeout) 10,000 times while the peer keeps writing. Then the TCP
// conveniences: open_connection, start_server and the Server's close/wait_closed/serve_forever.
#include "support.hpp"

#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <ringlet/detail/io_awaiter.hpp>
#include <ringlet/net/stream.hpp>
#include <ringlet/wait_for.hpp>
#include <span>
#include <string>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::IncompleteReadError;
using ringlet::LimitOverrunError;
using ringlet::StreamReader;
using ringlet::Task;
using ringlet::TcpStream;
using ringlet::TcpStreamReader;

std::string text(const std::vector<std::byte>& bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

/// One end of a Unix socketpair, read through the ring: the smallest stream StreamReader
/// accepts. The test writes the other end with put() (plain write(2); the data is small) or
/// with write_through_ring(), and ends it with end().
class PairStream {
  public:
    PairStream() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0)
            throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    PairStream(const PairStream&) = delete;
    PairStream& operator=(const PairStream&) = delete;
    ~PairStream() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }

    Task<std::size_t> recv(std::span<std::byte> buffer) {
        std::int32_t n = co_await ringlet::detail::read_some(fds_[0], buffer);
        if (n < 0)
            throw std::system_error(-n, std::generic_category(), "read socketpair");
        ++recvs;
        co_return static_cast<std::size_t>(n);
    }

    void put(std::string_view data) const {
        if (::write(fds_[1], data.data(), data.size()) != static_cast<ssize_t>(data.size()))
            throw std::system_error(errno, std::generic_category(), "write socketpair");
    }
    /// Writes all of `data` through the ring. Lifetime: `data` must outlive the Task.
    Task<> write_through_ring(std::string_view data) const {
        while (!data.empty()) {
            std::int32_t n =
                co_await ringlet::detail::write_some(fds_[1], std::as_bytes(std::span(data)));
            if (n < 0)
                throw std::system_error(-n, std::generic_category(), "write socketpair");
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    void end() const { ::shutdown(fds_[1], SHUT_WR); }

    int recvs = 0;

  private:
    int fds_[2];
};

static_assert(ringlet::ByteStream<PairStream>);
static_assert(ringlet::ByteStream<TcpStream>);
static_assert(ringlet::ByteStream<ringlet::UnixStream>);

/// Yields until `handle`'s task is suspended in an I/O operation (not merely scheduled).
Task<> until_suspended_in_io(const ringlet::TaskHandle& handle) {
    for (int i = 0; i < 100 && handle.state().find("awaiting read") == std::string::npos; ++i)
        co_await ringlet::yield_now();
    REQUIRE_THAT(handle.state(), Catch::Contains("awaiting read"));
}

} // namespace

TEST_CASE("read_line returns each line with its newline, then the partial last line, then "
          "empty at end of stream",
          "[stream]") {
    PairStream pair;
    pair.put("one\ntwo\nthr");
    pair.end();
    std::vector<std::string> lines;
    bool eof = false;
    run_virtual([](PairStream& p, std::vector<std::string>& out, bool& eof) -> Task<> {
        StreamReader reader(p);
        for (int i = 0; i < 5; ++i)
            out.push_back(co_await reader.read_line());
        eof = reader.at_eof();
    }(pair, lines, eof));
    CHECK(lines == std::vector<std::string>{"one\n", "two\n", "thr", "", ""});
    CHECK(eof);
}

TEST_CASE("read_line assembles a line that arrives one byte per receive", "[stream]") {
    PairStream pair;
    std::string line;
    run_real([](PairStream& p, std::string& line) -> Task<> {
        StreamReader reader(p);
        auto reading = ringlet::spawn(reader.read_line());
        const std::string_view sent = "hello world\n";
        for (std::size_t i = 0; i < sent.size(); ++i) {
            co_await until_suspended_in_io(reading);
            p.put(sent.substr(i, 1));
            // One byte per receive: the next byte goes out once this one was taken.
            for (int k = 0; k < 100 && p.recvs < static_cast<int>(i) + 1; ++k)
                co_await ringlet::yield_now();
        }
        line = co_await reading;
        CHECK(reader.buffered() == 0);
    }(pair, line));
    CHECK(line == "hello world\n");
    CHECK(pair.recvs == 12);
}

TEST_CASE("read_until returns the bytes up to and including a multi-byte delimiter, also "
          "when the delimiter is split across receives",
          "[stream]") {
    PairStream pair;
    std::vector<std::string> parts;
    run_real([](PairStream& p, std::vector<std::string>& out) -> Task<> {
        StreamReader reader(p);
        p.put("GET / HTTP/1.1\r\nHost: x\r");
        out.push_back(co_await reader.read_until("\r\n"));
        auto second = ringlet::spawn(reader.read_until("\r\n"));
        co_await until_suspended_in_io(second);
        p.put("\nrest");
        out.push_back(co_await second);
        out.push_back(text(co_await reader.read_some()));
    }(pair, parts));
    CHECK(parts == std::vector<std::string>{"GET / HTTP/1.1\r\n", "Host: x\r\n", "rest"});
}

TEST_CASE("read_until with an empty delimiter throws invalid_argument at the call", "[stream]") {
    PairStream pair;
    StreamReader reader(pair);
    CHECK_THROWS_AS(reader.read_until(""), std::invalid_argument);
    CHECK_THROWS_AS(StreamReader(pair, 0), std::invalid_argument);
}

TEST_CASE("read_until at end of stream throws IncompleteReadError carrying the buffered bytes",
          "[stream]") {
    PairStream pair;
    pair.put("no delimiter here");
    pair.end();
    std::string partial;
    std::size_t expected = 0;
    bool eof = false;
    run_virtual(
        [](PairStream& p, std::string& partial, std::size_t& expected, bool& eof) -> Task<> {
            StreamReader reader(p);
            try {
                co_await reader.read_until(";");
            } catch (const IncompleteReadError& e) {
                partial = text(e.partial);
                expected = e.expected;
            }
            eof = reader.at_eof();
        }(pair, partial, expected, eof));
    CHECK(partial == "no delimiter here");
    CHECK(expected == std::numeric_limits<std::size_t>::max());
    CHECK(eof);
}

TEST_CASE("read_exactly returns exactly n bytes gathered over several receives and keeps the "
          "rest buffered",
          "[stream]") {
    PairStream pair;
    std::string first, rest;
    run_real([](PairStream& p, std::string& first, std::string& rest) -> Task<> {
        StreamReader reader(p);
        auto reading = ringlet::spawn(reader.read_exactly(10));
        co_await until_suspended_in_io(reading);
        p.put("0123");
        for (int k = 0; k < 100 && reader.buffered() < 4; ++k)
            co_await ringlet::yield_now();
        REQUIRE(reader.buffered() == 4);
        co_await until_suspended_in_io(reading);
        p.put("456789abc");
        first = text(co_await reading);
        CHECK(reader.buffered() == 3);
        rest = text(co_await reader.read_exactly(3));
        std::vector<std::byte> none = co_await reader.read_exactly(0);
        CHECK(none.empty());
    }(pair, first, rest));
    CHECK(first == "0123456789");
    CHECK(rest == "abc");
    CHECK(pair.recvs == 2);
}

TEST_CASE("read_exactly at end of stream throws IncompleteReadError carrying the bytes that "
          "arrived",
          "[stream]") {
    PairStream pair;
    pair.put("12345");
    pair.end();
    std::string partial;
    std::size_t expected = 0;
    std::string message;
    run_virtual([](PairStream& p, std::string& partial, std::size_t& expected,
                   std::string& message) -> Task<> {
        StreamReader reader(p);
        try {
            co_await reader.read_exactly(8);
        } catch (const IncompleteReadError& e) {
            partial = text(e.partial);
            expected = e.expected;
            message = e.what();
        }
        CHECK(reader.at_eof());
    }(pair, partial, expected, message));
    CHECK(partial == "12345");
    CHECK(expected == 8);
    CHECK(message == "5 bytes read on a total of 8 expected bytes");
}

TEST_CASE("read_line past the limit throws LimitOverrunError and read_some then gets the "
          "buffered bytes",
          "[stream][limit]") {
    PairStream pair;
    const std::string long_line = std::string(40, 'x') + "\n";
    struct Seen {
        std::size_t consumed_found = 0;
        std::string message_found;
        std::string after_found;
        std::size_t consumed_missing = 0;
        std::string after_missing;
        std::string short_line;
    } seen;
    run_virtual([](PairStream& p, const std::string& line, Seen& s) -> Task<> {
        StreamReader reader(p, 16);
        // The delimiter is there, but 40 bytes precede it.
        p.put(line);
        try {
            co_await reader.read_line();
        } catch (const LimitOverrunError& e) {
            s.consumed_found = e.consumed;
            s.message_found = e.what();
        }
        s.after_found = text(co_await reader.read_some(1000));
        // No delimiter within the limit at all.
        p.put(std::string(40, 'y'));
        try {
            co_await reader.read_until("\n");
        } catch (const LimitOverrunError& e) {
            s.consumed_missing = e.consumed;
        }
        s.after_missing = text(co_await reader.read_some(1000));
        // A line of exactly `limit` bytes before its newline is still accepted.
        p.put(std::string(16, 'z') + "\n");
        s.short_line = co_await reader.read_line();
    }(pair, long_line, seen));
    CHECK(seen.consumed_found == 40);
    CHECK(seen.message_found == "separator is found, but chunk is longer than limit");
    CHECK(seen.after_found == long_line);
    CHECK(seen.consumed_missing == 40);
    CHECK(seen.after_missing == std::string(40, 'y'));
    CHECK(seen.short_line == std::string(16, 'z') + "\n");
}

TEST_CASE("read_some returns buffered bytes first, at most max, and empty at end of stream",
          "[stream]") {
    PairStream pair;
    pair.put("abcdefgh");
    std::vector<std::string> chunks;
    run_virtual([](PairStream& p, std::vector<std::string>& out) -> Task<> {
        StreamReader reader(p);
        out.push_back(text(co_await reader.read_some(3))); // one receive buffers all 8 bytes
        out.push_back(text(co_await reader.read_some(0)));
        out.push_back(text(co_await reader.read_some(100)));
        CHECK(p.recvs == 1);
        p.put("ijkl");
        p.end();
        out.push_back(text(co_await reader.read_some()));
        CHECK_FALSE(reader.at_eof());
        out.push_back(text(co_await reader.read_some()));
        CHECK(reader.at_eof());
    }(pair, chunks));
    CHECK(chunks == std::vector<std::string>{"abc", "", "defgh", "ijkl", ""});
}

TEST_CASE("a second read while one is in progress throws logic_error", "[stream]") {
    PairStream pair;
    std::string message;
    std::string line;
    run_real([](PairStream& p, std::string& message, std::string& line) -> Task<> {
        StreamReader reader(p);
        auto first = ringlet::spawn(reader.read_line());
        co_await until_suspended_in_io(first);
        try {
            co_await reader.read_some();
        } catch (const std::logic_error& e) {
            message = e.what();
        }
        CHECK_THROWS_WITH(StreamReader(std::move(reader)),
                          "ringlet::StreamReader moved while a read is in progress");
        p.put("done\n");
        line = co_await first;
    }(pair, message, line));
    CHECK(message == "ringlet::StreamReader::read_some called while another read is in progress");
    CHECK(line == "done\n");
}

TEST_CASE("a cancelled read_line keeps the bytes it received for the next read",
          "[stream][cancel]") {
    PairStream pair;
    bool cancelled = false;
    std::string line;
    run_real([](PairStream& p, bool& cancelled, std::string& line) -> Task<> {
        StreamReader reader(p);
        auto first = ringlet::spawn(reader.read_line());
        co_await until_suspended_in_io(first);
        p.put("par");
        for (int i = 0; i < 100 && reader.buffered() < 3; ++i)
            co_await ringlet::yield_now();
        REQUIRE(reader.buffered() == 3);
        co_await until_suspended_in_io(first); // waiting for more, "par" buffered
        first.cancel();
        try {
            co_await first;
        } catch (const CancelledError&) {
            cancelled = true;
        }
        p.put("tial\n");
        line = co_await reader.read_line();
    }(pair, cancelled, line));
    CHECK(cancelled);
    CHECK(line == "partial\n");
}

namespace {

struct StormResult {
    int attempts = 0;
    int timeouts = 0;
    int lines_in_time = 0;
    int lines_received = 0;
    int lines_written = 0;
    int out_of_order = 0;
};

/// The peer: writes "line <i>\n" in randomly split chunks, yielding between chunks, until
/// `stop` is set; then "end\n". Lifetime: the arguments must outlive the Task.
template <class Write>
Task<> write_lines(Write& write, const bool& stop, int& written) {
    std::mt19937 random(12345);
    std::string pending;
    while (!stop) {
        pending += "line " + std::to_string(written++) + "\n";
        while (pending.size() > 1) {
            std::size_t cut = std::uniform_int_distribution<std::size_t>(1, pending.size())(random);
            std::string chunk = pending.substr(0, cut);
            pending.erase(0, cut);
            co_await write(chunk);
            co_await ringlet::yield_now();
        }
    }
    pending += "end\n";
    co_await write(pending);
}

/// Reads with wait_for(read_line(), tiny timeout) 10,000 times, then drains up to "end\n";
/// checks that every line arrives once and in order.
template <class Stream>
Task<> read_lines_under_timeouts(StreamReader<Stream>& reader, bool& stop, StormResult& r) {
    using namespace std::chrono_literals;
    const std::chrono::nanoseconds timeouts[] = {0ns, 1us, 10us, 100us};
    auto accept_line = [&r](const std::string& line) {
        if (line != "line " + std::to_string(r.lines_received) + "\n")
            ++r.out_of_order;
        ++r.lines_received;
    };
    for (; r.attempts < 10'000; ++r.attempts) {
        std::optional<std::string> line;
        try {
            line = co_await ringlet::wait_for(reader.read_line(), timeouts[r.attempts % 4]);
        } catch (const ringlet::TimeoutError&) {
            ++r.timeouts;
        }
        if (line) {
            ++r.lines_in_time;
            accept_line(*line);
        }
    }
    stop = true;
    for (int i = 0; i < 1'000'000; ++i) {
        std::string line = co_await reader.read_line();
        if (line == "end\n" || line.empty())
            break;
        accept_line(line);
    }
}

} // namespace

TEST_CASE("wait_for(read_line(), tiny timeout) 10,000 times while the peer keeps writing loses "
          "no line: each arrives once, in order",
          "[stream][cancel][wait_for]") {
    PairStream pair;
    StormResult r;
    run_real([](PairStream& p, StormResult& r) -> Task<> {
        StreamReader reader(p);
        bool stop = false;
        auto write = [&p](const std::string& chunk) { return p.write_through_ring(chunk); };
        auto writer = ringlet::spawn(write_lines(write, stop, r.lines_written));
        co_await read_lines_under_timeouts(reader, stop, r);
        co_await writer;
    }(pair, r));
    INFO("timeouts " << r.timeouts << ", lines read in time " << r.lines_in_time);
    CHECK(r.attempts == 10'000);
    CHECK(r.out_of_order == 0);
    CHECK(r.lines_received == r.lines_written);
    CHECK(r.timeouts > 0);
    CHECK(r.lines_in_time > 0);
}

namespace {

Address any_local_port() {
    return Address::parse("127.0.0.1:0");
}

/// Handler: answers each line upper-cased until the client ends its side.
Task<> shout_back(TcpStreamReader& reader, TcpStream& stream) {
    for (;;) {
        std::string line = co_await reader.read_line();
        if (line.empty())
            co_return;
        for (char& c : line)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        co_await stream.send_all(line);
    }
}

} // namespace

TEST_CASE("open_connection and start_server round-trip lines between a client and a handler",
          "[stream][tcp]") {
    struct Seen {
        std::string first, second, at_end;
        std::uint64_t accepted = 0;
        std::size_t active_before_close = 0, active_after = 0;
        bool serving_after_close = true;
    } seen;
    run_real([](Seen& s) -> Task<> {
        ringlet::Server server = ringlet::start_server(shout_back, any_local_port());
        CHECK(server.is_serving());
        CHECK(server.local_address().port() != 0);
        ringlet::Connection conn =
            co_await ringlet::open_connection("127.0.0.1", server.local_address().port());
        co_await conn.stream.send_all("hello\nworld\n");
        s.first = co_await conn.reader.read_line();
        s.second = co_await conn.reader.read_line();
        s.active_before_close = server.active_connections();
        conn.stream.shutdown_write();
        s.at_end = co_await conn.reader.read_line(); // the handler returned: stream closed
        s.accepted = server.connections_accepted();
        server.close();
        s.serving_after_close = server.is_serving();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
        s.active_after = server.active_connections();
    }(seen));
    CHECK(seen.first == "HELLO\n");
    CHECK(seen.second == "WORLD\n");
    CHECK(seen.at_end.empty());
    CHECK(seen.accepted == 1);
    CHECK(seen.active_before_close == 1);
    CHECK_FALSE(seen.serving_after_close);
    CHECK(seen.active_after == 0);
}

TEST_CASE("start_server runs one handler task per connection, concurrently", "[stream][tcp]") {
    constexpr int clients = 20;
    std::vector<std::string> answers;
    std::uint64_t accepted = 0;
    run_real([](std::vector<std::string>& answers, std::uint64_t& accepted) -> Task<> {
        ringlet::Server server = ringlet::start_server(shout_back, any_local_port());
        // Every client connects and sends before any reads: the handlers must run side by side.
        std::vector<ringlet::Connection> conns;
        for (int i = 0; i < clients; ++i) {
            conns.push_back(co_await ringlet::open_connection(server.local_address()));
            co_await conns.back().stream.send_all("client " + std::to_string(i) + "\n");
        }
        for (auto& conn : conns)
            answers.push_back(co_await conn.reader.read_line());
        accepted = server.connections_accepted();
        conns.clear(); // the handlers see end of stream
        server.close();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
    }(answers, accepted));
    REQUIRE(answers.size() == clients);
    for (int i = 0; i < clients; ++i)
        CHECK(answers[static_cast<std::size_t>(i)] == "CLIENT " + std::to_string(i) + "\n");
    CHECK(accepted == clients);
}

namespace {

/// Handler: greets with two lines in one send, then answers as shout_back().
Task<> greet_then_shout(TcpStreamReader& reader, TcpStream& stream) {
    co_await stream.send_all("ONE\nTWO\n");
    co_await shout_back(reader, stream);
}

/// Bytes waiting in a socket's receive queue.
int unread_bytes(const TcpStream& stream) {
    int n = 0;
    if (::ioctl(stream.native_handle(), FIONREAD, &n) != 0)
        throw std::system_error(errno, std::generic_category(), "ioctl(FIONREAD)");
    return n;
}

} // namespace

TEST_CASE("a moved Connection keeps reading its stream, buffered bytes included", "[stream][tcp]") {
    std::vector<std::string> lines;
    run_real([](std::vector<std::string>& lines) -> Task<> {
        ringlet::Server server = ringlet::start_server(greet_then_shout, any_local_port());
        ringlet::Connection conn = co_await ringlet::open_connection(server.local_address());
        // Once both greeting lines wait in the socket, one receive takes them both.
        for (int i = 0; i < 1000 && unread_bytes(conn.stream) < 8; ++i)
            co_await ringlet::sleep(1ms);
        lines.push_back(co_await conn.reader.read_line());
        CHECK(conn.reader.buffered() == 4);
        ringlet::Connection moved = std::move(conn);
        lines.push_back(co_await moved.reader.read_line()); // from the buffer
        co_await moved.stream.send_all("three\n");
        lines.push_back(co_await moved.reader.read_line()); // through the moved stream
        moved.stream.shutdown_write();
        lines.push_back(co_await moved.reader.read_line());
        server.close();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
    }(lines));
    CHECK(lines == std::vector<std::string>{"ONE\n", "TWO\n", "THREE\n", ""});
}

namespace {

/// Handler: reads one line, answers it, then waits for the end of the stream, recording a
/// cancellation in `cancelled` before passing it on.
Task<> answer_once_then_wait(TcpStreamReader& reader, TcpStream& stream, int& cancelled) {
    try {
        std::string line = co_await reader.read_line();
        co_await stream.send_all(line);
        for (;;) {
            std::vector<std::byte> data = co_await reader.read_some();
            if (data.empty())
                break;
        }
    } catch (const CancelledError&) {
        ++cancelled;
        throw;
    }
}

} // namespace

TEST_CASE("Server::close refuses new connections and wait_closed waits for the open handlers",
          "[stream][tcp]") {
    struct Seen {
        std::string echoed;
        std::string refused;
        bool closed_while_client_open = true;
        bool closed_after_client_left = false;
        int cancelled = 0;
    } seen;
    run_real([](Seen& s) -> Task<> {
        ringlet::Server server = ringlet::start_server(
            [&s](TcpStreamReader& reader, TcpStream& stream) {
                return answer_once_then_wait(reader, stream, s.cancelled);
            },
            any_local_port());
        const Address address = server.local_address();
        ringlet::Connection conn = co_await ringlet::open_connection(address);
        co_await conn.stream.send_all("ping\n");
        s.echoed = co_await conn.reader.read_line();

        server.close();
        try {
            ringlet::Connection late = co_await ringlet::open_connection(address);
        } catch (const std::system_error& e) {
            s.refused = e.what();
        }
        auto closed = ringlet::spawn(server.wait_closed());
        co_await ringlet::sleep(20ms);
        s.closed_while_client_open = closed.done();
        conn.stream.close(); // the handler sees the end of the stream and returns
        co_await ringlet::wait_for(std::move(closed), 10s);
        s.closed_after_client_left = true;
    }(seen));
    CHECK(seen.echoed == "ping\n");
    CHECK_THAT(seen.refused,
               Catch::Contains("connect to 127.0.0.1:") && Catch::Contains("Connection refused"));
    CHECK_FALSE(seen.closed_while_client_open);
    CHECK(seen.closed_after_client_left);
    CHECK(seen.cancelled == 0);
}

TEST_CASE("Server::close_clients cancels the handlers and closes their streams",
          "[stream][tcp][cancel]") {
    int cancelled = 0;
    std::string client_saw = "unset";
    run_real([](int& cancelled, std::string& client_saw) -> Task<> {
        ringlet::Server server = ringlet::start_server(
            [&cancelled](TcpStreamReader& reader, TcpStream& stream) {
                return answer_once_then_wait(reader, stream, cancelled);
            },
            any_local_port());
        ringlet::Connection a = co_await ringlet::open_connection(server.local_address());
        ringlet::Connection b = co_await ringlet::open_connection(server.local_address());
        co_await a.stream.send_all("a\n");
        co_await b.stream.send_all("b\n");
        co_await a.reader.read_line();
        co_await b.reader.read_line();
        CHECK(server.active_connections() == 2);
        server.close();
        server.close_clients();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
        client_saw = co_await a.reader.read_line();
    }(cancelled, client_saw));
    CHECK(cancelled == 2);
    CHECK(client_saw.empty());
}

TEST_CASE("a failing handler is reported to the loop's exception handler with its peer and the "
          "server keeps serving",
          "[stream][tcp]") {
    std::vector<std::string> reports;
    std::string answer;
    run_real([](std::vector<std::string>& reports, std::string& answer) -> Task<> {
        EventLoop::current().set_exception_handler(
            [&reports](EventLoop&, const ringlet::ExceptionContext& context) {
                std::string what;
                try {
                    std::rethrow_exception(context.exception);
                } catch (const std::exception& e) {
                    what = e.what();
                }
                reports.push_back(context.message + " | " + what);
            });
        int calls = 0;
        ringlet::Server server = ringlet::start_server(
            [&calls](TcpStreamReader& reader, TcpStream& stream) -> Task<> {
                if (++calls == 1)
                    throw std::runtime_error("boom");
                return shout_back(reader, stream);
            },
            any_local_port());
        ringlet::Connection first = co_await ringlet::open_connection(server.local_address());
        std::string gone = co_await first.reader.read_line(); // the server closed it
        CHECK(gone.empty());
        ringlet::Connection second = co_await ringlet::open_connection(server.local_address());
        co_await second.stream.send_all("still here\n");
        answer = co_await second.reader.read_line();
        second.stream.close();
        server.close();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
    }(reports, answer));
    REQUIRE(reports.size() == 1);
    CHECK_THAT(reports[0], Catch::StartsWith("start_server: the handler of the connection from "
                                             "127.0.0.1:") &&
                               Catch::EndsWith("failed | boom"));
    CHECK(answer == "STILL HERE\n");
}

TEST_CASE("serve_forever returns once the server is closed, and cancelling it closes the server",
          "[stream][tcp][cancel]") {
    bool returned = false;
    bool cancelled = false;
    bool serving_after_cancel = true;
    run_real([](bool& returned, bool& cancelled, bool& serving) -> Task<> {
        ringlet::Server one = ringlet::start_server(shout_back, any_local_port());
        auto forever = ringlet::spawn(one.serve_forever());
        co_await ringlet::sleep(5ms);
        CHECK_FALSE(forever.done());
        one.close();
        co_await ringlet::wait_for(std::move(forever), 10s);
        returned = true;

        ringlet::Server two = ringlet::start_server(shout_back, any_local_port());
        auto again = ringlet::spawn(two.serve_forever());
        co_await ringlet::sleep(5ms);
        again.cancel();
        try {
            co_await again;
        } catch (const CancelledError&) {
            cancelled = true;
        }
        serving = two.is_serving();
        co_await ringlet::wait_for(two.wait_closed(), 10s);
    }(returned, cancelled, serving_after_cancel));
    CHECK(returned);
    CHECK(cancelled);
    CHECK_FALSE(serving_after_cancel);
}

TEST_CASE("open_connection to a port nobody listens on throws system_error naming the peer",
          "[stream][tcp]") {
    std::string message;
    int code = 0;
    run_real([](std::string& message, int& code) -> Task<> {
        Address address;
        {
            auto listener = ringlet::TcpListener::bind(any_local_port());
            address = listener.local_address();
        } // closed: the port refuses connections now
        try {
            ringlet::Connection conn = co_await ringlet::open_connection(address);
        } catch (const std::system_error& e) {
            message = e.what();
            code = e.code().value();
        }
    }(message, code));
    CHECK(code == ECONNREFUSED);
    CHECK_THAT(message, Catch::StartsWith("connect to 127.0.0.1:") &&
                            Catch::EndsWith(": Connection refused"));
}

TEST_CASE("start_server rejects an empty handler", "[stream][tcp]") {
    run_real([]() -> Task<> {
        CHECK_THROWS_AS(ringlet::start_server(nullptr, any_local_port()), std::invalid_argument);
        co_return;
    }());
}

namespace {

/// The TCP peer of the 10,000 wait_for test: writes lines until `stop`, then ends its side.
Task<> write_lines_to(TcpStream& stream, const bool& stop, int& written) {
    auto write = [&stream](const std::string& chunk) { return stream.send_all(chunk); };
    co_await write_lines(write, stop, written);
    stream.shutdown_write();
}

} // namespace

TEST_CASE("wait_for(read_line(), tiny timeout) 10,000 times on an open_connection stream loses "
          "no line: each arrives once, in order",
          "[stream][tcp][cancel][wait_for]") {
    StormResult r;
    run_real([](StormResult& r) -> Task<> {
        bool stop = false;
        ringlet::Server server = ringlet::start_server(
            [&stop, &r](TcpStreamReader&, TcpStream& stream) {
                return write_lines_to(stream, stop, r.lines_written);
            },
            any_local_port());
        ringlet::Connection conn = co_await ringlet::open_connection(server.local_address());
        co_await read_lines_under_timeouts(conn.reader, stop, r);
        server.close();
        co_await ringlet::wait_for(server.wait_closed(), 10s);
    }(r));
    INFO("timeouts " << r.timeouts << ", lines read in time " << r.lines_in_time);
    CHECK(r.attempts == 10'000);
    CHECK(r.out_of_order == 0);
    CHECK(r.lines_received == r.lines_written);
    CHECK(r.timeouts > 0);
    CHECK(r.lines_in_time > 0);
}
