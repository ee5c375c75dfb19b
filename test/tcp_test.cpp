// Tests of TcpListener and TcpStream on loopback (port 0): binding, connect/accept, recv/send,
// send_all over short writes, recv_exactly, string_view overloads, TCP_NODELAY, addresses,
// connect by host name, multishot accept with its backlog, the single-shot mode
// (LoopOptions::multishot_accept = false) and the fallback when the kernel refuses multishot
// accept (-EINVAL), closing a listener with accepts waiting, and error messages.
#include "net/accept.hpp"
#include "support.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::Task;
using ringlet::TcpListener;
using ringlet::TcpStream;

const Address any_loopback = Address::parse("127.0.0.1:0");

std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string text(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// Reads until end of stream.
Task<std::string> read_all(TcpStream& stream) {
    std::string out;
    std::array<std::byte, 4096> buffer;
    for (;;) {
        std::size_t n = co_await stream.recv(buffer);
        if (n == 0)
            co_return out;
        out += text(std::span(buffer).first(n));
    }
}

/// Deterministic test data: byte i is a function of i.
std::vector<std::byte> pattern(std::size_t size, unsigned seed = 7) {
    std::vector<std::byte> out(size);
    for (std::size_t i = 0; i < size; ++i)
        out[i] = std::byte(static_cast<unsigned char>((i * 131 + seed + i / 251) & 0xFF));
    return out;
}

int get_int_option(int fd, int level, int name) {
    int value = -1;
    socklen_t length = sizeof(value);
    REQUIRE(::getsockopt(fd, level, name, &value, &length) == 0);
    return value;
}

ringlet::LoopOptions single_shot_options() {
    ringlet::LoopOptions o = options();
    o.multishot_accept = false;
    return o;
}

} // namespace

TEST_CASE("TcpListener bound to port 0 reports the real port", "[net][tcp]") {
    TcpListener listener = TcpListener::bind(any_loopback);
    CHECK(listener.is_open());
    CHECK(listener.local_address().port() != 0);
    CHECK(listener.local_address().host() == "127.0.0.1");
    CHECK(get_int_option(listener.native_handle(), SOL_SOCKET, SO_REUSEADDR) != 0);
    CHECK(get_int_option(listener.native_handle(), SOL_SOCKET, SO_REUSEPORT) == 0);
    listener.close();
    CHECK_FALSE(listener.is_open());
    CHECK(listener.native_handle() == -1);
    CHECK(listener.local_address().port() != 0); // still known
}

TEST_CASE("TcpListener options set SO_REUSEPORT and let two sockets share a port", "[net][tcp]") {
    ringlet::ListenOptions options;
    options.reuse_port = true;
    options.backlog = 16;
    TcpListener a = TcpListener::bind(any_loopback, options);
    CHECK(get_int_option(a.native_handle(), SOL_SOCKET, SO_REUSEPORT) != 0);
    TcpListener b = TcpListener::bind(a.local_address(), options);
    CHECK(b.local_address() == a.local_address());
}

TEST_CASE("TcpListener bind to a busy port names the address", "[net][tcp]") {
    TcpListener a = TcpListener::bind(any_loopback);
    ringlet::ListenOptions no_reuse;
    no_reuse.reuse_address = false;
    try {
        (void)TcpListener::bind(a.local_address(), no_reuse);
        FAIL("second bind succeeded");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK(std::string(e.what()) ==
              "bind to " + a.local_address().to_string() + ": " + std::strerror(EADDRINUSE));
    }
    CHECK_THROWS_AS(TcpListener::bind(Address::unix_abstract("x")), std::invalid_argument);
    CHECK_THROWS_AS(TcpListener().accept(), std::logic_error);
    CHECK_THROWS_AS(TcpListener().local_address(), std::logic_error);
}

TEST_CASE("TcpStream connects, exchanges data and knows both addresses", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await listener.accept();

        CHECK(client.peer_address() == listener.local_address());
        CHECK(server.peer_address() == client.local_address());
        CHECK(server.local_address() == listener.local_address());

        std::size_t sent = co_await client.send(bytes("ping"));
        CHECK(sent == 4);
        std::array<std::byte, 16> buffer;
        std::size_t got = co_await server.recv(buffer);
        CHECK(text(std::span(buffer).first(got)) == "ping");

        co_await server.send_all(std::string_view("pong"));
        got = co_await client.recv(buffer);
        CHECK(text(std::span(buffer).first(got)) == "pong");
    }());
}

TEST_CASE("recv returns 0 at end of stream and for an empty buffer", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await listener.accept();
        std::array<std::byte, 8> buffer;
        co_await client.send_all(std::string_view("bye"));
        client.close();
        CHECK_FALSE(client.is_open());
        std::string all = co_await read_all(server);
        CHECK(all == "bye");
        std::size_t again = co_await server.recv(buffer);
        CHECK(again == 0);
        std::size_t empty = co_await server.recv(std::span(buffer).first(0));
        CHECK(empty == 0);
    }());
}

TEST_CASE("send_all delivers a large buffer across short writes", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await listener.accept();
        // A small send buffer forces short writes.
        int small = 4096;
        ::setsockopt(client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        const std::vector<std::byte> data = pattern(4 << 20);

        auto reader = [](TcpStream& s, std::size_t expected) -> Task<std::vector<std::byte>> {
            std::vector<std::byte> out(expected);
            co_await s.recv_exactly(out);
            co_return out;
        };
        auto received = ringlet::spawn(reader(server, data.size()));
        co_await client.send_all(data);
        std::vector<std::byte> got = co_await received;
        CHECK(got == data);
    }());
}

TEST_CASE("recv_exactly throws IncompleteReadError carrying the partial bytes", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await listener.accept();
        co_await client.send_all(bytes("abc"));
        co_await ringlet::sleep(10ms);
        co_await client.send_all(bytes("de"));
        client.shutdown_write();

        std::array<std::byte, 8> buffer;
        try {
            co_await server.recv_exactly(buffer);
            FAIL("recv_exactly returned");
        } catch (const ringlet::IncompleteReadError& e) {
            CHECK(e.expected == 8);
            CHECK(text(e.partial) == "abcde");
        }
    }());
}

TEST_CASE("TCP_NODELAY is on by default and set_nodelay toggles it", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        TcpStream server = co_await listener.accept();
        CHECK(get_int_option(client.native_handle(), IPPROTO_TCP, TCP_NODELAY) != 0);
        CHECK(get_int_option(server.native_handle(), IPPROTO_TCP, TCP_NODELAY) != 0);
        client.set_nodelay(false);
        CHECK(get_int_option(client.native_handle(), IPPROTO_TCP, TCP_NODELAY) == 0);
        client.set_nodelay(true);
        CHECK(get_int_option(client.native_handle(), IPPROTO_TCP, TCP_NODELAY) != 0);
        client.close();
        CHECK_THROWS_AS(client.set_nodelay(true), std::system_error);
        CHECK_THROWS_AS(client.local_address(), std::system_error);
    }());
}

TEST_CASE("TcpStream connects by host name and port", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client =
            co_await TcpStream::connect("localhost", listener.local_address().port());
        TcpStream server = co_await listener.accept();
        CHECK(client.peer_address() == listener.local_address());
        co_await client.send_all(std::string_view("hi"));
        client.shutdown_write();
        std::string all = co_await read_all(server);
        CHECK(all == "hi");
    }());
}

TEST_CASE("operations on a closed stream throw EBADF naming the peer", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpStream client = co_await TcpStream::connect(listener.local_address());
        std::string peer = client.peer_address().to_string();
        client.close();
        client.close(); // idempotent
        std::array<std::byte, 4> buffer;
        try {
            (void)co_await client.recv(buffer);
            FAIL("recv on a closed stream returned");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::bad_file_descriptor);
            CHECK(std::string(e.what()).starts_with("recv from " + peer + ": "));
        }
        try {
            (void)co_await client.send(bytes("x"));
            FAIL("send on a closed stream returned");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()).starts_with("send to " + peer + ": "));
        }
        CHECK_THROWS_AS(client.shutdown_write(), std::system_error);

        TcpStream empty;
        CHECK_FALSE(empty.is_open());
        bool threw = false;
        try {
            (void)co_await empty.recv(buffer);
        } catch (const std::system_error&) {
            threw = true;
        }
        CHECK(threw);
    }());
}

TEST_CASE("TcpStream is move-only and a moved-to stream owns the socket", "[net][tcp]") {
    static_assert(!std::is_copy_constructible_v<TcpStream>);
    static_assert(std::is_nothrow_move_constructible_v<TcpStream>);
    static_assert(!std::is_copy_constructible_v<TcpListener>);
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        TcpListener moved = std::move(listener);
        CHECK_FALSE(listener.is_open());
        TcpStream client = co_await TcpStream::connect(moved.local_address());
        TcpStream server = co_await moved.accept();
        TcpStream other = std::move(server);
        CHECK_FALSE(server.is_open());
        co_await client.send_all(std::string_view("moved"));
        client.close();
        std::string all = co_await read_all(other);
        CHECK(all == "moved");
        // Move-assigning over an open stream closes it.
        TcpStream a = co_await TcpStream::connect(moved.local_address());
        TcpStream b = co_await moved.accept();
        a = TcpStream();
        std::array<std::byte, 4> buffer;
        std::size_t n = co_await b.recv(buffer);
        CHECK(n == 0);
    }());
}

TEST_CASE("multishot accept queues connections made before accept is called", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        // The first accept arms the multishot request.
        auto first = ringlet::spawn(listener.accept());
        std::vector<TcpStream> clients;
        for (int i = 0; i < 5; ++i)
            clients.push_back(co_await TcpStream::connect(listener.local_address()));
        TcpStream s0 = co_await first;
        // Let the kernel deliver the other four into the listener's backlog.
        for (int i = 0; i < 50 && ringlet::EventLoop::current().stats().completions < 10; ++i)
            co_await ringlet::sleep(1ms);
        co_await ringlet::sleep(20ms);
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 1); // the armed request
        std::vector<Address> peers{s0.peer_address()};
        for (int i = 0; i < 4; ++i) {
            TcpStream s = co_await listener.accept();
            peers.push_back(s.peer_address());
        }
        std::vector<Address> expected;
        for (auto& c : clients)
            expected.push_back(c.local_address());
        for (const Address& p : expected)
            CHECK(std::find(peers.begin(), peers.end(), p) != peers.end());
    }());
}

TEST_CASE("single-shot accept mode accepts connections one request at a time", "[net][tcp]") {
    ringlet::run(
        []() -> Task<> {
            TcpListener listener = TcpListener::bind(any_loopback);
            for (int i = 0; i < 5; ++i) {
                auto accepting = ringlet::spawn(listener.accept());
                TcpStream client = co_await TcpStream::connect(listener.local_address());
                TcpStream server = co_await accepting;
                CHECK(server.peer_address() == client.local_address());
                // No request stays armed between accepts.
                CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
                co_await client.send_all(std::string_view("x"));
                std::array<std::byte, 1> b;
                std::size_t n = co_await server.recv(b);
                CHECK(n == 1);
            }
            // A connection made with no accept waiting stays in the kernel's queue.
            TcpStream late = co_await TcpStream::connect(listener.local_address());
            TcpStream server = co_await listener.accept();
            CHECK(server.peer_address() == late.local_address());
        }(),
        single_shot_options());
}

TEST_CASE("accept falls back to single-shot requests when multishot gets -EINVAL", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        ringlet::detail::multishot_accept_einval_for_tests = true;
        auto a = ringlet::spawn(listener.accept());
        auto b = ringlet::spawn(listener.accept());
        co_await ringlet::sleep(10ms); // both wait on the refused multishot request
        CHECK_FALSE(ringlet::detail::multishot_accept_einval_for_tests); // the hook was used
        TcpStream c1 = co_await TcpStream::connect(listener.local_address());
        TcpStream c2 = co_await TcpStream::connect(listener.local_address());
        TcpStream s1 = co_await a;
        TcpStream s2 = co_await b;
        CHECK(
            ((s1.peer_address() == c1.local_address() && s2.peer_address() == c2.local_address()) ||
             (s1.peer_address() == c2.local_address() && s2.peer_address() == c1.local_address())));
        // From now on the listener uses single-shot requests: nothing stays armed.
        auto next = ringlet::spawn(listener.accept());
        TcpStream c3 = co_await TcpStream::connect(listener.local_address());
        TcpStream s3 = co_await next;
        CHECK(s3.peer_address() == c3.local_address());
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
    }());
}

TEST_CASE("closing a listener completes waiting accepts with operation_canceled", "[net][tcp]") {
    auto scenario = []() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        std::string local = listener.local_address().to_string();
        auto a = ringlet::spawn(listener.accept());
        auto b = ringlet::spawn(listener.accept());
        co_await ringlet::sleep(5ms);
        listener.close();
        for (auto* handle : {&a, &b}) {
            try {
                (void)co_await *handle;
                FAIL("accept returned after close");
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::operation_canceled);
                CHECK(std::string(e.what()).starts_with("accept on " + local + ": "));
            }
        }
        // Accepting on the closed listener fails at once.
        try {
            (void)co_await listener.accept();
            FAIL("accept on a closed listener returned");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::bad_file_descriptor);
        }
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
    };
    SECTION("multishot") {
        run_real(scenario());
    }
    SECTION("single-shot") {
        ringlet::run(scenario(), single_shot_options());
    }
}

TEST_CASE("closing a listener closes the connections queued in its backlog", "[net][tcp]") {
    run_real([]() -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        auto first = ringlet::spawn(listener.accept());
        TcpStream c0 = co_await TcpStream::connect(listener.local_address());
        TcpStream s0 = co_await first; // the request stays armed
        std::vector<TcpStream> clients;
        for (int i = 0; i < 3; ++i)
            clients.push_back(co_await TcpStream::connect(listener.local_address()));
        co_await ringlet::sleep(20ms); // accepted into the backlog
        listener.close();
        // Each queued connection was closed by the listener: its client reads end of stream.
        for (auto& c : clients) {
            std::array<std::byte, 4> buffer;
            std::size_t n = 1;
            try {
                n = co_await c.recv(buffer);
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::connection_reset);
                n = 0;
            }
            CHECK(n == 0);
        }
    }());
}

TEST_CASE("a listener destroyed with its multishot request armed releases everything",
          "[net][tcp]") {
    run_real([]() -> Task<> {
        Address where;
        {
            TcpListener listener = TcpListener::bind(any_loopback);
            where = listener.local_address();
            auto first = ringlet::spawn(listener.accept());
            TcpStream c = co_await TcpStream::connect(where);
            TcpStream s = co_await first;
            CHECK(ringlet::EventLoop::current().stats().io_in_flight == 1);
        }
        // The cancelled request completes; its state goes with it (ASan/LSan check the rest).
        for (int i = 0; i < 100 && ringlet::EventLoop::current().stats().io_in_flight > 0; ++i)
            co_await ringlet::sleep(1ms);
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
        // The port is free again.
        TcpListener again = TcpListener::bind(where);
        CHECK(again.local_address() == where);
    }());
}

namespace {

/// Message `m` of client `c` in the load test: 16 to 200 bytes, derived from both.
std::vector<std::byte> load_message(std::uint32_t c, std::uint32_t m) {
    std::vector<std::byte> out(16 + (c * 31 + m * 17) % 185);
    for (std::size_t k = 0; k < out.size(); ++k)
        out[k] = std::byte(static_cast<unsigned char>(c * 13 + m * 7 + k));
    return out;
}

Task<> echo_connection(TcpStream stream) {
    std::array<std::byte, 4096> buffer;
    for (;;) {
        std::size_t n = co_await stream.recv(buffer);
        if (n == 0)
            co_return;
        co_await stream.send_all(std::span(buffer).first(n));
    }
}

Task<> echo_server(TcpListener& listener) {
    for (;;)
        ringlet::spawn(echo_connection(co_await listener.accept()));
}

} // namespace

TEST_CASE("1,000 concurrent connections each echo 100 messages byte for byte", "[net][tcp][load]") {
    constexpr std::uint32_t clients = 1000;
    constexpr std::uint32_t messages = 100;
    auto started = std::chrono::steady_clock::now();
    std::uint64_t verified = run_real([]() -> Task<std::uint64_t> {
        TcpListener listener = TcpListener::bind(any_loopback);
        auto server = ringlet::spawn(echo_server(listener));
        auto client = [](Address where, std::uint32_t id) -> Task<std::uint64_t> {
            TcpStream s = co_await TcpStream::connect(where);
            std::uint64_t bytes_ok = 0;
            std::vector<std::byte> echo;
            for (std::uint32_t m = 0; m < messages; ++m) {
                std::vector<std::byte> message = load_message(id, m);
                co_await s.send_all(message);
                echo.resize(message.size());
                co_await s.recv_exactly(echo);
                if (echo == message)
                    bytes_ok += message.size();
            }
            co_return bytes_ok;
        };
        std::vector<ringlet::JoinHandle<std::uint64_t>> running;
        running.reserve(clients);
        for (std::uint32_t id = 0; id < clients; ++id)
            running.push_back(ringlet::spawn(client(listener.local_address(), id)));
        std::uint64_t total = 0;
        for (auto& handle : running)
            total += co_await handle;
        server.cancel();
        co_return total;
    }());
    auto took = std::chrono::steady_clock::now() - started;
    std::uint64_t expected = 0;
    for (std::uint32_t c = 0; c < clients; ++c)
        for (std::uint32_t m = 0; m < messages; ++m)
            expected += load_message(c, m).size();
    CHECK(verified == expected);
    CHECK(took < 30s);
}

namespace {

/// A child process running `python3 -c script args...` with its stdout on a pipe.
class Python {
  public:
    /// False if python3 cannot be started (not installed).
    bool start(const std::string& script, const std::vector<std::string>& args) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        std::vector<std::string> argv_storage{"python3", "-c", script};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        int rc = ::posix_spawnp(&pid_, "python3", &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        out_ = fds[0];
        if (rc != 0) {
            ::close(out_);
            out_ = -1;
            pid_ = -1;
            return false;
        }
        return true;
    }
    ~Python() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        if (out_ >= 0)
            ::close(out_);
    }

    /// One line of the child's stdout (blocking; run it with to_thread).
    std::string read_line() {
        std::string line;
        char ch;
        while (::read(out_, &ch, 1) == 1 && ch != '\n')
            line += ch;
        return line;
    }
    /// Waits for the child (blocking; run it with to_thread); returns its exit code, or -signal.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    void terminate() { ::kill(pid_, SIGTERM); }

  private:
    pid_t pid_ = -1;
    int out_ = -1;
};

/// Sends 3 connections x 60 messages of 1..3000 bytes, checks each echo, prints "OK <bytes>".
const char* python_echo_client = R"(
import socket, sys
port = int(sys.argv[1])
total = 0
for c in range(3):
    s = socket.create_connection(('127.0.0.1', port))
    for i in range(60):
        msg = bytes((c * 7 + i * 13 + k) % 256 for k in range(1 + (i * 37) % 3000))
        s.sendall(msg)
        got = b''
        while len(got) < len(msg):
            chunk = s.recv(65536)
            if not chunk:
                sys.exit(3)
            got += chunk
        if got != msg:
            sys.exit(2)
        total += len(msg)
    s.close()
print('OK', total, flush=True)
)";

/// A socketserver echo server on a free port; prints the port, serves until killed.
const char* python_echo_server = R"(
import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
server = Server(('127.0.0.1', 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
)";

} // namespace

TEST_CASE("a python3 socket client gets every byte echoed by a ringlet server",
          "[net][tcp][interop]") {
    std::uint64_t expected = 0;
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 60; ++i)
            expected += 1 + (i * 37) % 3000;
    run_real([](std::uint64_t expected) -> Task<> {
        TcpListener listener = TcpListener::bind(any_loopback);
        auto server = ringlet::spawn(echo_server(listener));
        Python python;
        if (!python.start(python_echo_client, {std::to_string(listener.local_address().port())})) {
            WARN("python3 is not installed: skipping the interop test");
            co_return;
        }
        std::string line = co_await ringlet::to_thread([&python] { return python.read_line(); });
        int code = co_await ringlet::to_thread([&python] { return python.wait(); });
        CHECK(code == 0);
        CHECK(line == "OK " + std::to_string(expected));
        server.cancel();
    }(expected));
}

TEST_CASE("a ringlet client gets every byte echoed by a python3 socketserver",
          "[net][tcp][interop]") {
    run_real([]() -> Task<> {
        Python python;
        if (!python.start(python_echo_server, {})) {
            WARN("python3 is not installed: skipping the interop test");
            co_return;
        }
        std::string port_line =
            co_await ringlet::to_thread([&python] { return python.read_line(); });
        REQUIRE_FALSE(port_line.empty());
        Address where = Address::parse("127.0.0.1:" + port_line);
        TcpStream stream = co_await TcpStream::connect(where);

        // A large stream, sent and received concurrently.
        const std::vector<std::byte> big = pattern(2 << 20, 3);
        auto reader = [](TcpStream& s, std::size_t size) -> Task<std::vector<std::byte>> {
            std::vector<std::byte> out(size);
            co_await s.recv_exactly(out);
            co_return out;
        };
        auto receiving = ringlet::spawn(reader(stream, big.size()));
        co_await stream.send_all(big);
        std::vector<std::byte> echoed = co_await receiving;
        CHECK(echoed == big);

        // Many small request/response round trips.
        bool all_equal = true;
        for (std::uint32_t i = 0; i < 200; ++i) {
            std::vector<std::byte> message = load_message(i, i * 3);
            co_await stream.send_all(message);
            std::vector<std::byte> back(message.size());
            co_await stream.recv_exactly(back);
            all_equal = all_equal && back == message;
        }
        CHECK(all_equal);
        stream.close();
        python.terminate();
        int code = co_await ringlet::to_thread([&python] { return python.wait(); });
        CHECK(code == -SIGTERM);
    }());
}
